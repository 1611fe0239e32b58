import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Catalog } from '../core/catalog.ts';
import type { RegistryEvent } from '../core/events.ts';
import type { InstanceSpec } from '../core/instance.ts';
import { ZERO_LOAD } from '../core/selection/index.ts';
import { testSpec } from '../core/fixtures.ts';
import { createMemoryStore } from '../store/memory/index.ts';
import { Registry, RegistryError } from './registry.ts';

const spec = (id: string, ttlMs: number, extra: Partial<InstanceSpec> = {}): InstanceSpec =>
  testSpec(extra.service ?? 'svc', id, { ttlMs, ...extra });

describe('Registry with the memory store and real timers', () => {
  let dir: string;
  let registry: Registry;
  let catalog: Catalog;
  const events: RegistryEvent[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maxine-registry-'));
    catalog = new Catalog(1000);
    catalog.subscribe({ event: (e) => events.push(e), reset: () => undefined });
    registry = new Registry({
      store: createMemoryStore({ dataDir: dir }),
      catalog,
      clock: Date.now,
      maxInstancesPerService: 3,
      load: ZERO_LOAD,
      onExpiryError: (error) => assert.fail(String(error)),
    });
    await registry.start();
  });
  after(async () => {
    await registry.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a lease expires within 1 s of its deadline with an expired event', async () => {
    const registeredAt = Date.now();
    await registry.register(spec('short', 600));
    const deadline = registeredAt + 600;
    while (catalog.get({ service: 'svc', id: 'short' }) !== undefined) {
      assert.ok(Date.now() < deadline + 3000, 'never expired');
      await new Promise((r) => setTimeout(r, 10));
    }
    const lateBy = Date.now() - deadline;
    assert.ok(lateBy < 1000, `expired ${lateBy} ms after its deadline`);
    const expired = events.find((e) => e.type === 'service_expired');
    assert.ok(expired && expired.type !== 'config_changed' && expired.id === 'short');
  });

  test('heartbeats keep a lease alive past its TTL without new revisions', async () => {
    await registry.register(spec('beating', 400));
    const revision = catalog.revision;
    for (let i = 0; i < 8; i++) {
      await new Promise((r) => setTimeout(r, 150));
      assert.ok(registry.heartbeat({ service: 'svc', id: 'beating' }), `lost after ${(i + 1) * 150} ms`);
    }
    assert.equal(catalog.revision, revision);
    await registry.deregister({ service: 'svc', id: 'beating' });
  });

  test('a re-registration that changes nothing is only a renewal', async () => {
    const first = await registry.register(spec('same', 60_000));
    const again = await registry.register(spec('same', 60_000));
    assert.equal(first.changed, true);
    assert.equal(again.changed, false);
    assert.equal(again.instance, first.instance);
    const changed = await registry.register(spec('same', 60_000, { weight: 3 }));
    assert.equal(changed.changed, true);
    assert.equal(changed.instance.createRevision, first.instance.createRevision);
    assert.ok(changed.instance.modifyRevision > first.instance.modifyRevision);
  });

  test('a service cannot grow past maxInstancesPerService', async () => {
    await registry.register(spec('l1', 60_000, { service: 'limited' }));
    await registry.register(spec('l2', 60_000, { service: 'limited' }));
    await registry.register(spec('l3', 60_000, { service: 'limited' }));
    await assert.rejects(registry.register(spec('l4', 60_000, { service: 'limited' })), (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.status, 409);
      return true;
    });
    // Updating an existing instance is still allowed at the limit.
    await registry.register(spec('l3', 60_000, { service: 'limited', weight: 2 }));
  });
});

test('a store that cannot take writes makes registrations fail with 503, changing nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'maxine-registry-down-'));
  const store = createMemoryStore({ dataDir: dir });
  const catalog = new Catalog(10);
  const registry = new Registry({
    store,
    catalog,
    clock: Date.now,
    maxInstancesPerService: 10,
    load: ZERO_LOAD,
    onExpiryError: () => undefined,
  });
  try {
    await registry.start();
    await store.close();
    await assert.rejects(registry.register(spec('late', 60_000)), (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.status, 503);
      assert.equal(error.code, 'STORE_UNAVAILABLE');
      assert.match(error.message, /could not save the change/);
      return true;
    });
    assert.equal(catalog.instanceCount, 0);
  } finally {
    await registry.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
