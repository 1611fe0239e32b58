import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { testInstance } from '../../core/fixtures.ts';
import type { InstanceKey } from '../../core/instance.ts';
import { FencedError, type RegistryStore } from '../store.ts';
import { CheckedCatalog } from './checked-catalog.ts';
import type { BackendUnderTest, ConformanceBackend } from './harness.ts';

/**
 * The one suite every store passes (memory, shared-file, redis, etcd). It
 * drives stores only through the RegistryStore interface, with real catalogs
 * as sinks, the way replicas use them. Backend-specific tests only add to it.
 */

interface Replica {
  readonly store: RegistryStore;
  readonly catalog: CheckedCatalog;
  readonly instanceId: string;
}

const keyOf = (key: InstanceKey) => `${key.service}/${key.id}`;

async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export function runStoreConformance(backend: ConformanceBackend): void {
  const ttlMs = Math.max(backend.minTtlMs, 1000);
  const leaderLeaseMs = Math.max(backend.minTtlMs, 1000);
  let replicaCount = 0;

  /** Start the backend and return a way to open replicas on it, all closed when the test ends. */
  async function setUp(t: TestContext): Promise<{ open(catalog?: CheckedCatalog): Promise<Replica>; backend: BackendUnderTest } | null> {
    const under = await backend.start(t);
    if (under === null) return null;
    const open = async (catalog = new CheckedCatalog()): Promise<Replica> => {
      const instanceId = `replica-${++replicaCount}`;
      const store = under.replica({ instanceId, leaderLeaseMs, leaderRenewMs: Math.floor(leaderLeaseMs / 4), renewFlushMs: 50 });
      await store.open(catalog, catalog);
      t.after(() => store.close());
      return { store, catalog, instanceId };
    };
    return { open, backend: under };
  }

  /** What the registry does on its expiry tick: the leader expires, fenced by its token. */
  function runExpiry(t: TestContext, replicas: readonly Replica[]): void {
    const timer = setInterval(() => {
      for (const { store } of replicas) {
        const leadership = store.leadership();
        if (leadership.isLeader) store.expire(Date.now(), leadership.fencingToken).catch(() => {});
      }
    }, 100);
    t.after(() => clearInterval(timer));
  }

  async function leaderOf(replicas: readonly Replica[], what = 'a leader'): Promise<Replica> {
    let leader: Replica | undefined;
    await waitFor(() => {
      const leaders = replicas.filter((replica) => replica.store.leadership().isLeader);
      leader = leaders.length === 1 ? leaders[0] : undefined;
      return leader !== undefined;
    }, what, leaderLeaseMs * 3 + 5000);
    return leader!;
  }

  /**
   * The current leader and a fencing token that is no longer current: on a
   * shared backend the token of a leader that closed, so a new term began.
   */
  async function leaderAfterStaleTerm(replicas: readonly Replica[]): Promise<{ leader: Replica; stale: number; token: number }> {
    let leader = await leaderOf(replicas);
    let stale = leader.store.leadership().fencingToken - 1;
    if (backend.shared) {
      stale = leader.store.leadership().fencingToken;
      await leader.store.close();
      leader = await leaderOf(replicas.filter((r) => r !== leader), 'a new leader');
    }
    const token = leader.store.leadership().fencingToken;
    assert.ok(token > stale);
    return { leader, stale, token };
  }

  /** The type of the catalog event at `revision`. */
  function eventAt(catalog: CheckedCatalog, revision: number): string | undefined {
    const since = catalog.eventsSince(revision - 1);
    assert.equal(since.kind, 'events');
    return since.kind === 'events' ? since.events.find((e) => e.revision === revision)?.type : undefined;
  }

  const suite = `store conformance (${backend.name})`;

  test(`${suite}: upsert stamps revisions and resolves once the change is in the catalog`, async (t) => {
    const env = await setUp(t);
    if (env === null) return;
    const { store, catalog } = await env.open();
    const first = await store.upsert(testInstance('api', 'a'), Date.now());
    assert.ok(first.createRevision > 0 && first.modifyRevision === first.createRevision);
    assert.ok(Object.isFrozen(first) && Object.isFrozen(first.tags) && Object.isFrozen(first.metadata));
    assert.deepEqual(catalog.get(first), first, 'the catalog has the stored instance when upsert resolves');
    assert.equal(catalog.revision, first.modifyRevision);

    const second = await store.upsert({ ...first, port: 9090, metadata: JSON.parse('{"__proto__":"x"}') as Record<string, string> }, Date.now());
    assert.equal(second.createRevision, first.createRevision, 'createRevision is kept across updates');
    assert.ok(second.modifyRevision > first.modifyRevision);
    assert.equal(catalog.get(second)?.port, 9090);
    assert.ok(Object.hasOwn(catalog.get(second)!.metadata, '__proto__'), 'a "__proto__" metadata key survives as data');
  });

  test(`${suite}: removals and kv writes are visible changes; unknown removals resolve null`, async (t) => {
    const env = await setUp(t);
    if (env === null) return;
    const { store, catalog } = await env.open();
    const stored = await store.upsert(testInstance('api', 'a'), Date.now());
    const removed = await store.remove(stored, 'deregistered');
    assert.ok(removed !== null && removed > stored.modifyRevision);
    assert.equal(catalog.get(stored), undefined);
    assert.deepEqual(catalog.removals.map((r) => r.reason), ['service_deregistered']);
    assert.equal(await store.remove(stored, 'deregistered'), null, 'removing it again');
    assert.equal(await store.remove({ service: 'nope', id: 'x' }, 'deregistered'), null);

    const set = await store.putKv('config/k', 'v1');
    assert.ok(set > removed);
    assert.equal(catalog.kvGet('config/k'), 'v1');
    const cleared = await store.putKv('config/k', null);
    assert.ok(cleared > set);
    assert.equal(catalog.kvGet('config/k'), undefined);
    assert.equal(catalog.revision, cleared);
  });

  test(`${suite}: concurrent writers on every replica leave all replicas with the same state`, async (t) => {
    const env = await setUp(t);
    if (env === null) return;
    const replicas = backend.shared ? await Promise.all([env.open(), env.open(), env.open()]) : [await env.open()];
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 60; i++) {
      const { store } = replicas[i % replicas.length]!;
      const instance = testInstance(`svc-${i % 4}`, `i-${i}`, { port: 1000 + i });
      writes.push(
        (async () => {
          const stored = await store.upsert(instance, Date.now());
          if (i % 5 === 0) await store.remove(stored, 'deregistered');
        })(),
      );
      if (i % 10 === 0) writes.push(store.putKv(`k${i}`, String(i)));
    }
    await Promise.all(writes);
    const writerRevision = Math.max(...replicas.map((r) => r.catalog.revision));
    await waitFor(() => replicas.every((r) => r.catalog.revision === writerRevision), 'every replica at the same revision');
    const expected = replicas[0]!.catalog.picture();
    assert.equal(expected.instances.length, 48);
    assert.equal(expected.kv.length, 6);
    for (const replica of replicas) assert.deepEqual(replica.catalog.picture(), expected);
  });

  test(`${suite}: a replica opened later starts from a snapshot and then follows the feed`, async (t) => {
    const env = await setUp(t);
    if (env === null) return;
    const first = await env.open();
    for (let i = 0; i < 20; i++) await first.store.upsert(testInstance('api', `i-${i}`), Date.now());
    await first.store.putKv('mode', 'x');
    if (!backend.shared) await first.store.close();
    const late = await env.open();
    assert.equal(late.catalog.resets, 1);
    assert.deepEqual(late.catalog.picture(), first.catalog.picture());
    const writer = backend.shared ? first.store : late.store;
    const next = await writer.upsert(testInstance('api', 'after'), Date.now());
    await waitFor(() => late.catalog.revision === next.modifyRevision, 'the late replica to follow the feed');
    assert.ok(late.catalog.get(next));
  });

  // A single-process store always restores from its own disk; resuming is for replicas.
  if (backend.shared) test(`${suite}: a replica re-opened with its catalog resumes, or resyncs once history is gone`, async (t) => {
    const env = await setUp(t);
    if (env === null) return;
    const writer = await env.open();
    const follower = await env.open();
    await writer.store.upsert(testInstance('api', 'a'), Date.now());
    await waitFor(() => follower.catalog.revision === writer.catalog.revision, 'the follower to catch up');
    await follower.store.close();

    await writer.store.upsert(testInstance('api', 'b'), Date.now());
    const resumed = await env.open(follower.catalog);
    assert.equal(follower.catalog.resets, 1, 'history was still there: no reset');
    await waitFor(() => follower.catalog.revision === writer.catalog.revision, 'the resumed replica to catch up');
    assert.deepEqual(follower.catalog.picture(), writer.catalog.picture());
    await resumed.store.close();

    await writer.store.upsert(testInstance('api', 'c'), Date.now());
    await writer.store.remove({ service: 'api', id: 'a' }, 'deregistered');
    await env.backend.dropHistory();
    await env.open(follower.catalog);
    await waitFor(() => follower.catalog.revision === writer.catalog.revision, 'the resynced replica to catch up');
    assert.equal(follower.catalog.resets, 2, 'history was gone: a resync');
    assert.deepEqual(follower.catalog.picture(), writer.catalog.picture());
  });

  test(`${suite}: renewals keep an instance alive; a lapsed lease expires within 1 s of its deadline`, async (t) => {
    const env = await setUp(t);
    if (env === null) return;
    const replicas = backend.shared ? [await env.open(), await env.open()] : [await env.open()];
    const [owner, renewer] = [replicas[0]!, replicas.at(-1)!];
    runExpiry(t, replicas);
    const kept = await owner.store.upsert(testInstance('api', 'kept', { ttlMs }), Date.now());
    await waitFor(() => renewer.catalog.get(kept) !== undefined, 'the renewing replica to see the instance');
    const renewedAt = Date.now();
    const lapsing = await owner.store.upsert(testInstance('api', 'lapsing', { ttlMs }), renewedAt);
    const deadline = renewedAt + ttlMs;

    // Renew on the other replica (where there is one) for three lease lengths.
    const until = Date.now() + 3 * ttlMs;
    while (Date.now() < until) {
      const current = renewer.catalog.get(kept);
      assert.ok(current, 'a renewed instance never expires');
      // As the registry does on a heartbeat: its own catalog first, then the store.
      const now = Date.now();
      renewer.catalog.renew(current, now);
      renewer.store.renew(current, now);
      await new Promise((resolve) => setTimeout(resolve, ttlMs / 5));
    }
    const expired = owner.catalog.removals.find((r) => r.key === keyOf(lapsing));
    assert.ok(expired, 'the instance nobody renewed has expired');
    assert.equal(expired.reason, 'service_expired');
    assert.ok(expired.at >= deadline - 20, `expired ${deadline - expired.at} ms before its deadline`);
    assert.ok(expired.at - deadline <= 1000, `expired ${expired.at - deadline} ms after its deadline`);
    for (const replica of replicas) assert.ok(replica.catalog.get(kept), 'the renewed instance is still registered');
    for (const replica of replicas) {
      await waitFor(() => replica.catalog.get(lapsing) === undefined, 'every replica to drop the expired instance');
    }
  });

  test(`${suite}: one leader, agreed by every replica, and a new term with a larger token after it closes`, async (t) => {
    const env = await setUp(t);
    if (env === null) return;
    if (!backend.shared) {
      const { store, instanceId } = await env.open();
      const leadership = store.leadership();
      assert.deepEqual([leadership.isLeader, leadership.leaderId], [true, instanceId]);
      assert.ok(leadership.fencingToken > 0);
      return;
    }
    const replicas = await Promise.all([env.open(), env.open(), env.open()]);
    const leader = await leaderOf(replicas);
    const { fencingToken, leaderId } = leader.store.leadership();
    assert.equal(leaderId, leader.instanceId);
    assert.ok(fencingToken > 0);
    await waitFor(
      () => replicas.every((r) => r.store.leadership().leaderId === leaderId && r.store.leadership().fencingToken === fencingToken),
      'every replica to agree on the leader',
    );

    const closedAt = Date.now();
    await leader.store.close();
    const rest = replicas.filter((r) => r !== leader);
    const next = await leaderOf(rest, 'a new leader');
    const took = Date.now() - closedAt;
    assert.notEqual(next.instanceId, leader.instanceId);
    assert.ok(next.store.leadership().fencingToken > fencingToken, 'a new term has a larger fencing token');
    assert.ok(took <= leaderLeaseMs + 2000, `the new leader took over after ${took} ms`);
  });

  test(`${suite}: leader-only writes with a stale fencing token are refused and change nothing`, async (t) => {
    const env = await setUp(t);
    if (env === null) return;
    const replicas = backend.shared ? await Promise.all([env.open(), env.open()]) : [await env.open()];
    const { leader, stale, token } = await leaderAfterStaleTerm(replicas);
    const { store, catalog } = leader;
    // Long enough that the backend cannot have expired it before the checks below.
    const target = await store.upsert(testInstance('api', 'target', { ttlMs: 60_000 }), Date.now());
    const lapsed = await store.upsert(testInstance('api', 'lapsed', { ttlMs }), Date.now() - 2 * ttlMs);

    await assert.rejects(store.evict(target, stale), FencedError);
    if (!backend.backendExpires) await assert.rejects(store.expire(Date.now(), stale), FencedError);
    await assert.rejects(store.evict(target, token + 1), FencedError, 'a token from the future is not current either');
    assert.ok(catalog.get(target), 'a fenced evict removed nothing');
    if (!backend.backendExpires) assert.ok(catalog.get(lapsed), 'a fenced expire removed nothing');

    const evicted = await store.evict(target, token);
    assert.ok(evicted !== null && evicted > target.modifyRevision);
    assert.equal(catalog.get(target), undefined);
    assert.equal(await store.evict(target, token), null, 'evicting an absent instance');
    if (!backend.backendExpires) {
      assert.ok((await store.expire(Date.now(), token)) >= 1);
      assert.equal(catalog.get(lapsed), undefined, 'the current leader expires what the stale token could not');
    }
    await waitFor(() => catalog.get(lapsed) === undefined, 'the lapsed instance to expire');
    const reasons = new Map(catalog.removals.map((r) => [r.key, r.reason]));
    assert.equal(reasons.get(keyOf(target)), 'service_evicted');
    assert.equal(reasons.get(keyOf(lapsed)), 'service_expired');
  });

  test(`${suite}: update replaces the instance while its modifyRevision holds, and every replica applies it`, async (t) => {
    const env = await setUp(t);
    if (env === null) return;
    const replicas = backend.shared ? await Promise.all([env.open(), env.open()]) : [await env.open()];
    const [writer, other] = [replicas[0]!, replicas.at(-1)!];
    const renewedAt = Date.now();
    const stored = await writer.store.upsert(testInstance('api', 'a', { ttlMs: 60_000 }), renewedAt);
    await waitFor(() => other.catalog.get(stored) !== undefined, 'the other replica to see the instance');

    // As a health checker does: change the health of the version it read, keep the lease it saw.
    const critical = await other.store.update({ ...stored, health: 'critical', healthReason: 'probe failed', healthChangedAt: renewedAt + 1 }, renewedAt, null);
    assert.ok(critical !== null, 'an update of the current version succeeds');
    assert.ok(Object.isFrozen(critical));
    assert.equal(critical.createRevision, stored.createRevision, 'createRevision is kept');
    assert.ok(critical.modifyRevision > stored.modifyRevision, 'a new modifyRevision');
    assert.deepEqual(other.catalog.get(stored), critical, 'the updating replica has the update when update resolves');
    const drained = await writer.store.update({ ...critical, status: 'draining', statusReason: 'deploy', statusChangedAt: renewedAt + 2 }, renewedAt, null);
    assert.ok(drained !== null && drained.modifyRevision > critical.modifyRevision);
    assert.equal(drained.createRevision, stored.createRevision);
    assert.deepEqual([drained.health, drained.healthReason, drained.status, drained.statusReason], ['critical', 'probe failed', 'draining', 'deploy']);

    for (const { catalog } of replicas) {
      await waitFor(() => catalog.revision >= drained.modifyRevision, 'every replica to apply the updates');
      assert.deepEqual(catalog.get(stored), drained);
      assert.equal(eventAt(catalog, critical.modifyRevision), 'health_changed', 'a health-only change is a health event');
      assert.equal(eventAt(catalog, drained.modifyRevision), 'service_updated');
      assert.equal(catalog.entry(stored)?.renewedAt, renewedAt, 'the lease was not renewed');
    }
  });

  test(`${suite}: update of a changed or absent instance resolves null and changes nothing`, async (t) => {
    const env = await setUp(t);
    if (env === null) return;
    const replicas = backend.shared ? await Promise.all([env.open(), env.open()]) : [await env.open()];
    const [writer, other] = [replicas[0]!, replicas.at(-1)!];
    const renewedAt = Date.now();
    const read = await writer.store.upsert(testInstance('api', 'a', { ttlMs: 60_000 }), renewedAt);
    const changed = await other.store.upsert({ ...read, port: 9090 }, renewedAt);
    await waitFor(() => writer.catalog.revision >= changed.modifyRevision, 'the writer to see the other change');
    const before = writer.catalog.picture();

    const critical = { ...read, health: 'critical' as const, healthReason: 'probe failed', healthChangedAt: renewedAt + 1 };
    assert.equal(await writer.store.update(critical, renewedAt, null), null, 'the version read was changed since');
    assert.equal(await writer.store.update({ ...critical, service: 'nope' }, renewedAt, null), null, 'an instance never registered');
    assert.deepEqual(writer.catalog.picture(), before, 'the refused updates changed nothing');
    const removedAt = await writer.store.remove(changed, 'deregistered');
    assert.equal(await writer.store.update({ ...changed, health: 'critical' }, renewedAt, null), null, 'an instance removed since');
    assert.equal(writer.catalog.get(changed), undefined, 'an update does not bring a removed instance back');

    const next = await writer.store.upsert(testInstance('api', 'b'), renewedAt);
    const delivered = writer.catalog.applied.filter((revision) => revision > before.revision);
    assert.deepEqual(delivered, [removedAt, next.modifyRevision], 'the refused updates delivered no change');
  });

  test(`${suite}: putKvIf writes only while the entry holds the value expected, and of two replicas deciding at once one wins`, async (t) => {
    const env = await setUp(t);
    if (env === null) return;
    const replicas = backend.shared ? await Promise.all([env.open(), env.open()]) : [await env.open()];
    const [a, b] = [replicas[0]!, replicas.at(-1)!];
    const created = await a.store.putKvIf('session/x', null, 'v1');
    assert.ok(created !== null, 'expected absent, and it was');
    assert.equal(a.catalog.kvGet('session/x'), 'v1', 'the writer has the value when the write resolves');
    const before = a.catalog.picture();
    assert.equal(await a.store.putKvIf('session/x', null, 'v2'), null, 'expected absent, but it is set');
    assert.equal(await a.store.putKvIf('session/x', 'v0', 'v2'), null, 'expected another value');
    assert.equal(await a.store.putKvIf('session/x', 'v1 ', null), null, 'a near match is no match');
    assert.equal(await a.store.putKvIf('session/none', 'v1', 'v2'), null, 'expected a value, but the entry is absent');
    assert.deepEqual(a.catalog.picture(), before, 'the refused writes changed nothing');
    // Two at once on one replica (one batch, where a store batches): one creates the entry, the other finds it there.
    const [first, second] = await Promise.all([a.store.putKvIf('session/y', null, '1'), a.store.putKvIf('session/y', null, '2')]);
    assert.ok((first === null) !== (second === null), `one of two creations wins (${first}, ${second})`);
    assert.equal(a.catalog.kvGet('session/y'), first !== null ? '1' : '2');
    const settled = a.catalog.picture();

    // Both replicas read v1 and act on it at once (a refresh here, a sign-out there): exactly one of them is recorded.
    await waitFor(() => b.catalog.kvGet('session/x') === 'v1', 'the other replica to see v1');
    const [fromA, fromB] = await Promise.all([a.store.putKvIf('session/x', 'v1', 'v2'), b.store.putKvIf('session/x', 'v1', null)]);
    assert.equal([fromA, fromB].filter((revision) => revision !== null).length, 1, `one write wins (${fromA}, ${fromB})`);
    const won = (fromA ?? fromB)!;
    const expected = fromA !== null ? 'v2' : undefined;
    for (const { catalog } of replicas) {
      await waitFor(() => catalog.revision >= won, 'every replica to apply the winning write');
      assert.equal(catalog.kvGet('session/x'), expected);
    }
    assert.deepEqual(
      a.catalog.applied.filter((revision) => revision > settled.revision),
      [won],
      'refused writes delivered no change',
    );

    if (expected !== undefined) {
      const deleted = await b.store.putKvIf('session/x', 'v2', null);
      assert.ok(deleted !== null && deleted > won, 'a delete of the value expected');
      await waitFor(() => a.catalog.revision >= deleted, 'the writer to see the delete');
    }
    assert.equal(a.catalog.kvGet('session/x'), undefined);
    assert.equal(await a.store.putKvIf('session/x', 'v2', 'v3'), null, 'a deleted entry is not brought back');
    assert.equal(a.catalog.kvGet('session/x'), undefined);
  });

  test(`${suite}: update does not renew the lease: an instance updated before its deadline expires on time`, async (t) => {
    const env = await setUp(t);
    if (env === null) return;
    const replicas = backend.shared ? [await env.open(), await env.open()] : [await env.open()];
    const [owner, updater] = [replicas[0]!, replicas.at(-1)!];
    runExpiry(t, replicas);
    const renewedAt = Date.now();
    const stored = await owner.store.upsert(testInstance('api', 'lapsing', { ttlMs }), renewedAt);
    const deadline = renewedAt + ttlMs;

    await new Promise((resolve) => setTimeout(resolve, deadline - ttlMs / 4 - Date.now()));
    const seen = updater.catalog.entry(stored);
    assert.ok(seen, 'the updating replica has the instance');
    const updated = await updater.store.update({ ...seen.instance, health: 'warning', healthChangedAt: Date.now() }, seen.renewedAt, null);
    assert.ok(updated !== null, 'updated before its deadline');
    assert.equal(updater.catalog.entry(stored)?.renewedAt, renewedAt, 'the update kept the renewal time');

    await waitFor(() => owner.catalog.removalOf(keyOf(stored)) !== undefined, 'the updated instance to expire', ttlMs + 5000);
    const expired = owner.catalog.removals.find((r) => r.key === keyOf(stored))!;
    assert.equal(expired.reason, 'service_expired');
    assert.ok(expired.at >= deadline - 20, `expired ${deadline - expired.at} ms before its deadline`);
    // Had the update renewed the lease, it would have expired 3/4 of a TTL after this deadline.
    assert.ok(expired.at - deadline <= ttlMs / 2, `expired ${expired.at - deadline} ms after its original deadline: the update renewed the lease`);
    for (const replica of replicas) {
      await waitFor(() => replica.catalog.get(stored) === undefined, 'every replica to drop the expired instance');
    }
  });

  test(`${suite}: a fenced update with a stale or future token is refused; the current token updates`, async (t) => {
    const env = await setUp(t);
    if (env === null) return;
    const replicas = backend.shared ? await Promise.all([env.open(), env.open()]) : [await env.open()];
    const { leader, stale, token } = await leaderAfterStaleTerm(replicas);
    const { store, catalog } = leader;
    const renewedAt = Date.now();
    const target = await store.upsert(testInstance('api', 'target', { ttlMs: 60_000 }), renewedAt);
    const critical = { ...target, health: 'critical' as const, healthReason: 'probe failed', healthChangedAt: renewedAt + 1 };

    await assert.rejects(store.update(critical, renewedAt, stale), FencedError);
    await assert.rejects(store.update(critical, renewedAt, token + 1), FencedError, 'a token from the future is not current either');
    assert.deepEqual(catalog.get(target), target, 'a fenced update changed nothing');
    assert.equal(catalog.revision, target.modifyRevision);

    const updated = await store.update(critical, renewedAt, token);
    assert.ok(updated !== null && updated.modifyRevision > target.modifyRevision);
    assert.equal(updated.createRevision, target.createRevision);
    assert.equal(catalog.get(target)?.health, 'critical');
    assert.equal(await store.update(critical, renewedAt, token), null, 'the current token does not skip the compare');
    assert.equal(eventAt(catalog, updated.modifyRevision), 'health_changed');
  });

  test(`${suite}: an open store reports its backend reachable`, async (t) => {
    const env = await setUp(t);
    if (env === null) return;
    const { store } = await env.open();
    assert.equal(store.kind.length > 0, true);
    assert.deepEqual(store.health(), { reachable: true, error: null });
  });
}
