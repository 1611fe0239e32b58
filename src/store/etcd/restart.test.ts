import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startEtcd } from '../../../test/helpers/backends.ts';
import { freePort } from '../../../test/helpers/process.ts';
import { testInstance } from '../../core/fixtures.ts';
import { StoreUnavailableError } from '../store.ts';
import { createEtcdStore } from './etcd-store.ts';
import { CheckedCatalog } from '../conformance/checked-catalog.ts';
import { openReplica, untilAccepted, waitFor } from './testing.ts';

/** etcd going away and coming back (the same member, data directory kept). */

test('while etcd is down writes fail fast and health says so, the leader steps down; after a restart every replica converges', async (t) => {
  const etcd = await startEtcd(t);
  if (etcd === null) return;
  const a = await openReplica(t, etcd.endpoints);
  const b = await openReplica(t, etcd.endpoints);
  const kept = await a.store.upsert(testInstance('api', 'kept', { ttlMs: 30_000 }), Date.now());
  await waitFor(() => b.catalog.get(kept) !== undefined, 'the other replica to see the instance');
  await waitFor(() => a.store.leadership().isLeader !== b.store.leadership().isLeader, 'one leader');
  const leader = a.store.leadership().isLeader ? a : b;
  const { fencingToken } = leader.store.leadership();

  await etcd.members[0]!.stop();
  const writes: Array<[string, () => Promise<unknown>]> = [
    ['register', () => a.store.upsert(testInstance('api', 'during'), Date.now())],
    ['deregister', () => b.store.remove(kept, 'deregistered')],
    ['kv', () => a.store.putKv('mode', 'x')],
    ['evict', () => leader.store.evict(kept, fencingToken)],
  ];
  for (const [what, write] of writes) {
    const startedAt = Date.now();
    await assert.rejects(write(), StoreUnavailableError, what);
    const took = Date.now() - startedAt;
    assert.ok(took <= 2000, `${what} failed after ${took} ms`);
  }
  await waitFor(() => !a.store.health().reachable && !b.store.health().reachable, 'both replicas to report etcd unreachable', 3000);
  assert.match(a.store.health().error ?? '', /\S/);
  await waitFor(() => !leader.store.leadership().isLeader, 'the leader to step down once it cannot renew its lease', 3000);

  await etcd.members[0]!.start();
  const after = await untilAccepted(() => a.store.upsert(testInstance('api', 'after'), Date.now()));
  await waitFor(() => b.catalog.get(after) !== undefined, 'the other replica to follow the feed again');
  await waitFor(() => a.store.health().reachable && b.store.health().reachable, 'both replicas to report etcd reachable');
  await waitFor(() => a.store.leadership().isLeader !== b.store.leadership().isLeader, 'one leader again');
  assert.deepEqual(b.catalog.picture(), a.catalog.picture());
  assert.deepEqual(a.catalog.picture().instances.map((i) => i.id), ['after', 'kept'], 'none of the refused writes was applied');
  assert.deepEqual(a.catalog.picture().kv, []);
});

test('open() on an unreachable cluster rejects with a StoreUnavailableError naming it', async () => {
  const endpoint = `http://127.0.0.1:${await freePort()}`;
  const store = createEtcdStore({ endpoints: [endpoint], instanceId: 'lonely', leaderLeaseMs: 2000, leaderRenewMs: 500 });
  const catalog = new CheckedCatalog();
  const startedAt = Date.now();
  await assert.rejects(store.open(catalog, catalog), (err: unknown) => err instanceof StoreUnavailableError && err.message.includes(endpoint));
  assert.ok(Date.now() - startedAt <= 10_000);
  assert.equal(store.health().reachable, false);
  await assert.rejects(store.putKv('k', 'v'), StoreUnavailableError);
  await store.close();
});
