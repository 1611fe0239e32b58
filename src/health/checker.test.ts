import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { Catalog } from '../core/catalog.ts';
import type { InstanceEvent, RegistryEvent } from '../core/events.ts';
import { testSpec } from '../core/fixtures.ts';
import type { HealthCheck, Instance, InstanceSpec } from '../core/instance.ts';
import { ZERO_LOAD } from '../core/selection/index.ts';
import { Registry, type Registration } from '../registry/registry.ts';
import { createMemoryStore } from '../store/memory/index.ts';
import { FencedError, type LeadershipState } from '../store/store.ts';
import { resolveCheck, type CheckDefaults, type CheckInput } from './check-spec.ts';
import { HealthChecker, NO_CHECK_REASON, nextHealth, type HealthWriter } from './checker.ts';
import { closedPort, sleep, startTcpListener, startUpstream, waitFor, type Behaviour, type Upstream } from './test-upstreams.ts';

const DEFAULTS: CheckDefaults = {
  enabled: false,
  path: '/health',
  intervalMs: 150,
  timeoutMs: 150,
  fall: 3,
  rise: 2,
  jitterMs: 0,
  concurrency: 64,
};

function check(input: Partial<CheckInput> = {}, healthCheckPath = ''): HealthCheck {
  const resolved = resolveCheck({ type: 'http', intervalMs: 150, timeoutMs: 150, jitterMs: 0, ...input }, healthCheckPath, DEFAULTS);
  if ('problems' in resolved) throw new Error(JSON.stringify(resolved.problems));
  return resolved.check;
}

/** A real Registry over a real MemoryStore (fresh temp dir) and Catalog, and a HealthChecker over them. */
class Harness {
  readonly dir = mkdtempSync(join(tmpdir(), 'maxine-health-'));
  readonly catalog = new Catalog(10_000);
  readonly registry: Registry;
  readonly events: RegistryEvent[] = [];
  readonly errors: unknown[] = [];
  readonly upstreams: Upstream[] = [];
  checker: HealthChecker | undefined;
  private readonly closers: (() => Promise<void>)[] = [];

  constructor() {
    this.registry = new Registry({
      store: createMemoryStore({ dataDir: this.dir }),
      catalog: this.catalog,
      clock: Date.now,
      maxInstancesPerService: 1000,
      load: ZERO_LOAD,
      onExpiryError: (error) => this.errors.push(error),
    });
    this.catalog.subscribe({ event: (e) => this.events.push(e), reset: () => undefined });
  }

  async start(defaults: Partial<CheckDefaults> = {}, writer?: HealthWriter): Promise<HealthChecker> {
    await this.registry.start();
    this.checker = new HealthChecker({
      catalog: this.catalog,
      registry: writer ?? this.registry,
      defaults: { ...DEFAULTS, ...defaults },
      allowLinkLocal: false,
      onError: (error) => this.errors.push(error),
    });
    this.checker.start();
    return this.checker;
  }

  async upstream(behaviour: Behaviour): Promise<Upstream> {
    const upstream = await startUpstream(behaviour);
    this.upstreams.push(upstream);
    return upstream;
  }

  onClose(closer: () => Promise<void>): void {
    this.closers.push(closer);
  }

  register(id: string, port: number, extra: Partial<InstanceSpec> = {}, status?: Registration['status']): Promise<Instance> {
    const { status: _ignored, ...spec } = testSpec('svc', id, { port, ttlMs: 60_000, ...extra });
    return this.registry.register({ ...spec, status }).then((r) => r.instance);
  }

  get(id: string): Instance | undefined {
    return this.catalog.get({ service: 'svc', id });
  }

  eligibleIds(): string[] {
    return (this.catalog.service('svc')?.eligible() ?? []).map((i) => i.id);
  }

  instanceEvents(id: string, type?: InstanceEvent['type']): InstanceEvent[] {
    return this.events.filter((e): e is InstanceEvent => e.type !== 'config_changed' && e.id === id && (type === undefined || e.type === type));
  }

  /** Waits for the instance's health to become `health`; returns `measure()` (default: the upstream's hits) at that moment. */
  healthBecomes(id: string, health: Instance['health'], upstream: Upstream, measure = () => upstream.total()): Promise<number> {
    return this.when(id, (i) => i.health === health, measure, `${id} to become ${health}`);
  }

  /** Waits for an event of the instance that satisfies `condition`; returns `measure()` taken when it was applied. */
  async when(id: string, condition: (instance: Instance) => boolean, measure: () => number, what: string): Promise<number> {
    let measured = -1;
    const unsubscribe = this.catalog.subscribe({
      event: (e) => {
        if (e.type !== 'config_changed' && e.id === id && condition(e.instance) && measured < 0) measured = measure();
      },
      reset: () => undefined,
    });
    try {
      const current = this.get(id);
      if (current !== undefined && condition(current)) return measure();
      await waitFor(() => measured >= 0, 5000, what);
      return measured;
    } finally {
      unsubscribe();
    }
  }

  async close(): Promise<void> {
    await this.checker?.stop();
    await this.registry.stop();
    for (const closer of this.closers) await closer();
    for (const upstream of this.upstreams) await upstream.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

describe('HealthChecker with a real registry, memory store and upstreams', () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
    assert.deepEqual(h.errors, []);
  });

  test('critical after exactly `fall` failures; heartbeats and re-registration do not bring it back; `rise` passes do', async () => {
    h = new Harness();
    await h.start();
    const upstream = await h.upstream({ kind: 'status', status: 500 });
    await h.register('a', upstream.port, { check: check({ fall: 3, rise: 2 }) });
    assert.deepEqual(h.eligibleIds(), ['a']);

    assert.equal(await h.healthBecomes('a', 'critical', upstream), 3);
    assert.equal(h.get('a')?.healthReason, 'HTTP 500');
    assert.deepEqual(h.eligibleIds(), []);
    assert.equal(h.instanceEvents('a', 'health_changed').length, 1);

    // Neither heartbeats nor re-registrations (same spec, or changed) clear the checks' verdict.
    assert.ok(h.registry.heartbeat({ service: 'svc', id: 'a' }));
    await h.register('a', upstream.port, { check: check({ fall: 3, rise: 2 }) });
    await h.register('a', upstream.port, { check: check({ fall: 3, rise: 2 }), weight: 5 });
    assert.equal(h.get('a')?.health, 'critical');
    assert.equal(h.get('a')?.weight, 5);

    // Identical failures write nothing more.
    const revision = h.catalog.revision;
    await sleep(350);
    assert.equal(h.catalog.revision, revision);

    // A new reason is written once `fall` results in a row agree on it, and only once.
    upstream.behaviour = { kind: 'status', status: 503 };
    const answered503 = () => upstream.answered.get(503) ?? 0;
    assert.equal(await h.when('a', (i) => i.healthReason === 'HTTP 503', answered503, 'the new reason'), 3);
    assert.equal(h.get('a')?.health, 'critical');
    const afterReason = h.catalog.revision;
    await sleep(350);
    assert.equal(h.catalog.revision, afterReason);

    upstream.behaviour = { kind: 'status', status: 200 };
    const passes = await h.healthBecomes('a', 'passing', upstream, () => upstream.answered.get(200) ?? 0);
    assert.equal(passes, 2, 'back after exactly `rise` passes');
    assert.deepEqual(h.eligibleIds(), ['a']);
    assert.equal(h.get('a')?.healthReason, 'HTTP 200');
    const view = h.checker!.view('svc');
    assert.equal(view.length, 1);
    assert.equal(view[0]!.target, `http://127.0.0.1:${upstream.port}/health`);
    assert.equal(view[0]!.lastResult, 'pass');
  });

  test('a flapping upstream never changes health', async () => {
    h = new Harness();
    await h.start();
    const upstream = await h.upstream({ kind: 'flap' });
    await h.register('f', upstream.port, { check: check({ fall: 2, rise: 2 }) });
    await waitFor(() => upstream.total() >= 10, 5000, '10 probes');
    assert.equal(h.get('f')?.health, 'passing');
    assert.deepEqual(h.instanceEvents('f', 'health_changed'), []);
    assert.equal(h.instanceEvents('f').length, 1, 'only its registration');
    assert.ok(h.checker!.stats().writes === 0);
  });

  test('a starting instance is not eligible until its first passing probe makes it up', async () => {
    h = new Harness();
    await h.start();
    const upstream = await h.upstream({ kind: 'status', status: 503 });
    await h.register('s', upstream.port, { check: check({ rise: 3, fall: 5 }) }, 'starting');
    assert.deepEqual(h.eligibleIds(), []);
    await waitFor(() => upstream.total() >= 2, 5000, 'two failing probes');
    assert.equal(h.get('s')?.status, 'starting', 'failing probes (below fall) do not promote');
    upstream.behaviour = { kind: 'status', status: 200 };
    const passes = await h.when('s', (i) => i.status === 'up', () => upstream.answered.get(200) ?? 0, 'promotion');
    assert.equal(passes, 1, 'the first pass promotes, no `rise` needed');
    assert.equal(h.get('s')?.health, 'passing');
    assert.equal(h.get('s')?.statusReason, 'passed its first health check');
    assert.deepEqual(h.eligibleIds(), ['s']);
  });

  test('HTTP 429 makes an instance warning (still eligible) after `fall` of them', async () => {
    h = new Harness();
    await h.start();
    const upstream = await h.upstream({ kind: 'status', status: 429 });
    await h.register('w', upstream.port, { check: check({ fall: 2 }) });
    assert.equal(await h.healthBecomes('w', 'warning', upstream), 2);
    assert.equal(h.get('w')?.healthReason, 'HTTP 429');
    assert.deepEqual(h.eligibleIds(), ['w']);
  });

  test('timeouts are honoured: a hanging upstream fails as timed out', async () => {
    h = new Harness();
    await h.start();
    const upstream = await h.upstream({ kind: 'hang' });
    await h.register('t', upstream.port, { check: check({ intervalMs: 300, timeoutMs: 150, fall: 2 }) });
    assert.equal(await h.healthBecomes('t', 'critical', upstream), 2);
    assert.equal(h.get('t')?.healthReason, 'timed out after 150 ms');
    const [state] = h.checker!.view();
    assert.ok(state!.lastDurationMs! >= 140, `probe took ${state!.lastDurationMs} ms`);
    await waitFor(() => upstream.inFlight === 0, 2000, 'the hung requests to be abandoned');
  });

  test('at most `concurrency` probes are in flight; the rest wait and all get probed', async () => {
    h = new Harness();
    const checker = await h.start({ concurrency: 5 });
    const upstream = await h.upstream({ kind: 'slow', delayMs: 200 });
    const slow = check({ intervalMs: 1000, timeoutMs: 900, path: '/slow' });
    await Promise.all(Array.from({ length: 50 }, (_, i) => h.register(`c${i}`, upstream.port, { check: slow })));
    await waitFor(() => upstream.total() >= 50, 10_000, '50 probes');
    assert.equal(upstream.maxInFlight, 5);
    assert.equal(checker.stats().maxInFlight, 5);
    assert.equal(checker.stats().targets, 50);
    const probed = new Set(checker.view('svc').filter((s) => s.lastProbeAt !== null).map((s) => s.id));
    await waitFor(() => checker.view('svc').every((s) => s.lastProbeAt !== null || s.inFlight), 5000, 'every instance probed');
    assert.ok(probed.size >= 40);
    assert.deepEqual(
      h.events.filter((e) => e.type === 'health_changed'),
      [],
      'waiting for a slot is not part of the timeout: nothing failed',
    );
  });

  test('an instance critical longer than deregisterCriticalAfterMs is evicted', async () => {
    h = new Harness();
    await h.start();
    const port = await closedPort();
    await h.register('d', port, { check: check({ fall: 1, deregisterCriticalAfterMs: 1000 }) });
    await waitFor(() => h.get('d')?.health === 'critical', 5000, 'critical');
    assert.equal(h.get('d')?.healthReason, 'connection refused');
    const criticalAt = h.get('d')!.healthChangedAt;
    await waitFor(() => h.instanceEvents('d', 'service_evicted').length === 1, 5000, 'eviction');
    const evicted = h.instanceEvents('d', 'service_evicted')[0]!;
    assert.ok(evicted.timestamp - criticalAt >= 1000);
    assert.equal(h.get('d'), undefined);
    assert.equal(h.checker!.stats().targets, 0);
  });

  test('a follower does not probe; it starts when it leads and stops when it no longer does', async () => {
    h = new Harness();
    let leader = false;
    const writer: HealthWriter = {
      leadership: (): LeadershipState => {
        const real = h.registry.leadership();
        return leader ? real : { ...real, isLeader: false, leaderId: 'someone-else' };
      },
      setHealth: (seen, change, token) => h.registry.setHealth(seen, change, token),
      evict: (key, token) => h.registry.evict(key, token),
    };
    const checker = await h.start({}, writer);
    const upstream = await h.upstream({ kind: 'status', status: 500 });
    await h.register('x', upstream.port, { check: check({ fall: 2 }) });
    await sleep(1200);
    assert.equal(upstream.total(), 0);
    assert.equal(checker.stats().leading, false);
    assert.deepEqual(checker.view(), []);

    leader = true;
    assert.equal(await h.healthBecomes('x', 'critical', upstream), 2);
    assert.equal(checker.stats().leading, true);

    leader = false;
    upstream.behaviour = { kind: 'status', status: 200 };
    await waitFor(() => !checker.stats().leading, 3000, 'leadership loss noticed');
    const hits = upstream.total();
    await sleep(500);
    assert.equal(upstream.total(), hits, 'no probes after leadership is lost');
    assert.equal(h.get('x')?.health, 'critical', 'and no writes');
  });

  test('a write refused as fenced stops the checker: it does not probe or write again under that token', async () => {
    h = new Harness();
    let refused = 0;
    const writer: HealthWriter = {
      leadership: () => h.registry.leadership(),
      setHealth: async () => {
        refused++;
        throw new FencedError('a newer leader exists');
      },
      evict: (key, token) => h.registry.evict(key, token),
    };
    const checker = await h.start({}, writer);
    const upstream = await h.upstream({ kind: 'status', status: 500 });
    await h.register('z', upstream.port, { check: check({ fall: 1 }) });
    await waitFor(() => refused === 1, 5000, 'the fenced write');
    assert.equal(checker.stats().leading, false);
    const hits = upstream.total();
    await sleep(1300);
    assert.equal(upstream.total(), hits);
    assert.equal(refused, 1);
    assert.equal(h.get('z')?.health, 'passing');
  });

  test('a changed check starts over: counters reset, `rise` passes of the new check bring it back', async () => {
    h = new Harness();
    await h.start();
    const upstream = await h.upstream({ kind: 'status', status: 200 });
    const dead = await closedPort();
    await h.register('c', dead, { check: check({ fall: 2, rise: 3 }) });
    await waitFor(() => h.get('c')?.health === 'critical', 5000, 'critical');
    await h.register('c', upstream.port, { check: check({ fall: 2, rise: 3, path: '/ready' }) });
    assert.equal(h.get('c')?.health, 'critical');
    assert.equal(await h.healthBecomes('c', 'passing', upstream), 3);
    assert.deepEqual([...upstream.hits.keys()], ['/ready']);
  });

  test('TCP checks, maintenance instances and the global check (enabled) are probed too', async () => {
    h = new Harness();
    const checker = await h.start({ enabled: true });
    const tcp = await startTcpListener();
    h.onClose(() => tcp.close());
    const upstream = await h.upstream({ kind: 'status', status: 500 });
    await h.register('tcp', tcp.port, { check: check({ type: 'tcp', path: undefined }) });
    await h.register('global', upstream.port, { healthCheckPath: '/hc' });
    await h.registry.setStatus({ service: 'svc', id: 'global' }, 'maintenance', 'testing');
    await waitFor(() => h.get('global')?.health === 'critical', 5000, 'the global check to fail');
    assert.deepEqual([...upstream.hits.keys()], ['/hc']);
    assert.ok(tcp.connections >= 1);
    assert.equal(h.get('tcp')?.health, 'passing');
    const views = checker.view();
    assert.deepEqual(
      views.map((v) => [v.id, v.type, v.target]),
      [
        ['global', 'http', `http://127.0.0.1:${upstream.port}/hc`],
        ['tcp', 'tcp', `tcp://127.0.0.1:${tcp.port}`],
      ],
    );
  });

  test('an instance whose check went away loses its verdict; a removed instance is no longer probed', async () => {
    h = new Harness();
    const checker = await h.start();
    const upstream = await h.upstream({ kind: 'status', status: 500 });
    await h.register('n', upstream.port, { check: check({ fall: 1 }) });
    await waitFor(() => h.get('n')?.health === 'critical', 5000, 'critical');
    await h.register('n', upstream.port, { check: null });
    await waitFor(() => h.get('n')?.health === 'passing', 5000, 'verdict cleared');
    assert.equal(h.get('n')?.healthReason, NO_CHECK_REASON);
    assert.equal(checker.stats().targets, 0);

    await h.register('r', upstream.port, { check: check({ fall: 5, path: '/r' }) });
    await waitFor(() => (upstream.hits.get('/r') ?? 0) >= 2, 5000, 'probes of r');
    await h.registry.deregister({ service: 'svc', id: 'r' });
    await sleep(50);
    const hits = upstream.hits.get('/r');
    await sleep(400);
    assert.equal(upstream.hits.get('/r'), hits);
  });
});

test('nextHealth follows the documented rules', () => {
  const s = (passes: number, warns: number, fails: number) => ({ passes, warns, fails });
  assert.equal(nextHealth('passing', s(0, 0, 2), 2, 3), 'passing');
  assert.equal(nextHealth('passing', s(0, 0, 3), 2, 3), 'critical');
  assert.equal(nextHealth('passing', s(0, 3, 0), 2, 3), 'warning');
  assert.equal(nextHealth('warning', s(0, 0, 3), 2, 3), 'critical');
  assert.equal(nextHealth('warning', s(2, 0, 0), 2, 3), 'passing');
  assert.equal(nextHealth('warning', s(1, 0, 0), 2, 3), 'warning');
  assert.equal(nextHealth('critical', s(1, 0, 0), 2, 3), 'critical');
  assert.equal(nextHealth('critical', s(2, 0, 0), 2, 3), 'passing');
  assert.equal(nextHealth('critical', s(0, 2, 0), 2, 3), 'warning');
  assert.equal(nextHealth('critical', s(0, 1, 0), 2, 3), 'critical');
});
