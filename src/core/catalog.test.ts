import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Catalog } from './catalog.ts';
import type { RegistryEvent } from './events.ts';
import { NO_FILTER } from './filter.ts';
import type { Instance } from './instance.ts';
import { testInstance } from './fixtures.ts';
import { ZERO_LOAD } from './selection/index.ts';

function instance(service: string, id: string, revision: number, extra: Partial<Instance> = {}): Instance {
  return testInstance(service, id, { ttlMs: 1000, createRevision: revision, modifyRevision: revision, ...extra });
}

const ctx = { key: 'k', random: Math.random, load: ZERO_LOAD };

test('applies upserts and removes in revision order, with events', () => {
  const catalog = new Catalog(100, () => 42);
  const events: RegistryEvent[] = [];
  catalog.subscribe({ event: (e) => events.push(e), reset: () => undefined });
  catalog.apply({ kind: 'upsert', revision: 1, instance: instance('a', 'x', 1), renewedAt: 0 });
  catalog.apply({ kind: 'upsert', revision: 2, instance: instance('a', 'x', 2, { port: 9 }), renewedAt: 0 });
  catalog.apply({ kind: 'upsert', revision: 3, instance: instance('a', 'y', 3), renewedAt: 0 });
  catalog.apply({ kind: 'remove', revision: 4, key: { service: 'a', id: 'x' }, reason: 'expired' });
  assert.equal(catalog.revision, 4);
  assert.equal(catalog.instanceCount, 1);
  assert.deepEqual(
    events.map((e) => [e.type, e.revision]),
    [
      ['service_registered', 1],
      ['service_updated', 2],
      ['service_registered', 3],
      ['service_expired', 4],
    ],
  );
  assert.equal(events[0]!.timestamp, 42);
  const replay = catalog.eventsSince(2);
  assert.deepEqual(replay.kind === 'events' && replay.events.map((e) => e.revision), [3, 4]);
});

test('a redelivered revision is ignored', () => {
  const catalog = new Catalog(10);
  catalog.apply({ kind: 'upsert', revision: 5, instance: instance('a', 'x', 5), renewedAt: 0 });
  catalog.apply({ kind: 'remove', revision: 5, key: { service: 'a', id: 'x' }, reason: 'deregistered' });
  assert.equal(catalog.instanceCount, 1);
});

test('the eligible set excludes non-up and critical instances and is ordered by id', () => {
  const catalog = new Catalog(10);
  catalog.apply({ kind: 'upsert', revision: 1, instance: instance('s', 'c', 1), renewedAt: 0 });
  catalog.apply({ kind: 'upsert', revision: 2, instance: instance('s', 'a', 2), renewedAt: 0 });
  catalog.apply({ kind: 'upsert', revision: 3, instance: instance('s', 'b', 3, { status: 'draining' }), renewedAt: 0 });
  catalog.apply({ kind: 'upsert', revision: 4, instance: instance('s', 'd', 4, { health: 'critical' }), renewedAt: 0 });
  assert.deepEqual(catalog.service('s')!.eligible().map((i) => i.id), ['a', 'c']);
  const picks = new Set(Array.from({ length: 10 }, () => catalog.pick('s', NO_FILTER, 'round-robin', ctx)!.id));
  assert.deepEqual([...picks].sort(), ['a', 'c']);
  assert.equal(catalog.pick('nothing', NO_FILTER, 'round-robin', ctx), undefined);
});

test('filters narrow picks and are cached per service until it changes', () => {
  const catalog = new Catalog(10);
  catalog.apply({ kind: 'upsert', revision: 1, instance: instance('s', 'a', 1, { tags: ['x'], zone: 'z1' }), renewedAt: 0 });
  catalog.apply({ kind: 'upsert', revision: 2, instance: instance('s', 'b', 2, { version: '2', metadata: { env: 'prod' } }), renewedAt: 0 });
  const filter = (f: object) => ({ ...NO_FILTER, ...f });
  assert.equal(catalog.pick('s', filter({ tags: ['x'] }), 'random', ctx)!.id, 'a');
  assert.equal(catalog.pick('s', filter({ zone: 'z1' }), 'random', ctx)!.id, 'a');
  assert.equal(catalog.pick('s', filter({ version: '2' }), 'random', ctx)!.id, 'b');
  assert.equal(catalog.pick('s', filter({ metadata: [['env', 'prod']] }), 'random', ctx)!.id, 'b');
  assert.equal(catalog.pick('s', filter({ metadata: [['env', 'dev']] }), 'random', ctx), undefined);
  catalog.apply({ kind: 'upsert', revision: 3, instance: instance('s', 'c', 3, { tags: ['x'] }), renewedAt: 0 });
  const ids = new Set(Array.from({ length: 8 }, () => catalog.pick('s', filter({ tags: ['x'] }), 'round-robin', ctx)!.id));
  assert.deepEqual([...ids].sort(), ['a', 'c'], 'the cached view was rebuilt after the change');
});

test('renewal moves the lease without a revision; expiry takes only lapsed leases', () => {
  const catalog = new Catalog(10);
  catalog.apply({ kind: 'upsert', revision: 1, instance: instance('s', 'a', 1), renewedAt: 0 });
  catalog.apply({ kind: 'upsert', revision: 2, instance: instance('s', 'b', 2), renewedAt: 0 });
  catalog.renew({ service: 's', id: 'a' }, 900);
  assert.equal(catalog.revision, 2);
  assert.deepEqual(catalog.takeExpired(1000).map((e) => e.instance.id), ['b']);
  assert.deepEqual(catalog.takeExpired(1899).map((e) => e.instance.id), []);
  assert.deepEqual(catalog.takeExpired(1900).map((e) => e.instance.id), ['a']);
});

test('a removed instance never expires; a failed expiry can be retried', () => {
  const catalog = new Catalog(10);
  catalog.apply({ kind: 'upsert', revision: 1, instance: instance('s', 'a', 1), renewedAt: 0 });
  catalog.apply({ kind: 'upsert', revision: 2, instance: instance('s', 'b', 2), renewedAt: 0 });
  catalog.apply({ kind: 'remove', revision: 3, key: { service: 's', id: 'a' }, reason: 'deregistered' });
  const [b] = catalog.takeExpired(5000);
  assert.equal(b?.instance.id, 'b');
  assert.deepEqual(catalog.takeExpired(5000), []);
  catalog.retryExpiry(b!);
  assert.deepEqual(catalog.takeExpired(5000).map((e) => e.instance.id), ['b']);
});

test('reset replaces everything, notifies listeners and snapshot round-trips', () => {
  const source = new Catalog(10);
  source.apply({ kind: 'upsert', revision: 1, instance: instance('s', 'a', 1), renewedAt: 10 });
  source.apply({ kind: 'kv', revision: 2, key: 'config/x', value: '1' });
  const snap = source.snapshot();
  const target = new Catalog(10);
  target.apply({ kind: 'upsert', revision: 1, instance: instance('old', 'z', 1), renewedAt: 0 });
  let resetTo = -1;
  target.subscribe({ event: () => undefined, reset: (r) => (resetTo = r) });
  target.reset(snap);
  assert.equal(resetTo, 2);
  assert.deepEqual(target.snapshot(), snap);
  assert.equal(target.service('old'), undefined);
  assert.equal(target.kvGet('config/x'), '1');
  assert.equal(target.eventsSince(0).kind, 'resync');
});

test('health-only changes are reported as health_changed', () => {
  const catalog = new Catalog(10);
  const types: string[] = [];
  catalog.subscribe({ event: (e) => types.push(e.type), reset: () => undefined });
  catalog.apply({ kind: 'upsert', revision: 1, instance: instance('s', 'a', 1), renewedAt: 0 });
  catalog.apply({ kind: 'upsert', revision: 2, instance: instance('s', 'a', 2, { health: 'critical' }), renewedAt: 0 });
  assert.deepEqual(types, ['service_registered', 'health_changed']);
});

test('changes of private KV keys reach listeners but not the event ring, and take none of its room', () => {
  const catalog = new Catalog(2, Date.now, true, (key) => key.startsWith('secret/'));
  const seen: string[] = [];
  catalog.subscribe({ event: (event) => seen.push(`${event.type}@${event.revision}`), reset: () => undefined });
  catalog.apply({ kind: 'upsert', revision: 1, instance: testInstance('api', 'a'), renewedAt: Date.now() });
  for (let revision = 2; revision <= 5; revision++) catalog.apply({ kind: 'kv', revision, key: `secret/session-${revision}`, value: 'x' });
  catalog.apply({ kind: 'kv', revision: 6, key: 'config/mode', value: 'on' });
  assert.deepEqual(seen, ['service_registered@1', 'config_changed@2', 'config_changed@3', 'config_changed@4', 'config_changed@5', 'config_changed@6']);
  assert.equal(catalog.kvGet('secret/session-5'), 'x');
  const replay = catalog.eventsSince(0);
  assert.equal(replay.kind, 'events', 'four private changes did not evict the registration from a ring of two');
  assert.deepEqual(
    replay.kind === 'events' ? replay.events.map((event) => `${event.type}@${event.revision}`) : [],
    ['service_registered@1', 'config_changed@6'],
  );
});
