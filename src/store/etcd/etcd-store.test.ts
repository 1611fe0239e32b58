import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { startEtcd } from '../../../test/helpers/backends.ts';
import { testInstance } from '../../core/fixtures.ts';
import { FencedError } from '../store.ts';
import { CuttableProxy, compactHistory, openReplica, waitFor } from './testing.ts';

/**
 * What the conformance suite cannot see: how the etcd store uses etcd
 * (tombstones, leases, prefixes, compaction). Real etcd, one per test.
 */

/** The etcd lease an instance key is bound to, read straight from etcd. */
async function leaseOfKey(endpoints: readonly string[], key: string): Promise<string | undefined> {
  const client = new Etcd3({ hosts: [...endpoints] });
  try {
    return (await client.kv.range({ key: Buffer.from(key) })).kvs[0]?.lease;
  } finally {
    client.close();
  }
}

/** The TTL a lease was granted with, -1 once it is revoked or lapsed. */
async function leaseTtl(endpoints: readonly string[], lease: string): Promise<number> {
  const client = new Etcd3({ hosts: [...endpoints] });
  try {
    const answer = await client.leaseClient.leaseTimeToLive({ ID: lease });
    return answer.TTL === '-1' ? -1 : Number(answer.grantedTTL);
  } finally {
    client.close();
  }
}

test('every replica learns why an instance went: deregistered, evicted or expired', async (t) => {
  const etcd = await startEtcd(t);
  if (etcd === null) return;
  const a = await openReplica(t, etcd.endpoints);
  const b = await openReplica(t, etcd.endpoints);
  const leader = await (async () => {
    await waitFor(() => a.store.leadership().isLeader || b.store.leadership().isLeader, 'a leader');
    return a.store.leadership().isLeader ? a : b;
  })();

  const gone = await a.store.upsert(testInstance('api', 'gone'), Date.now());
  const evicted = await a.store.upsert(testInstance('api', 'evicted'), Date.now());
  const lapsing = await a.store.upsert(testInstance('api', 'lapsing', { ttlMs: 2000 }), Date.now());
  await waitFor(() => b.catalog.get(lapsing) !== undefined, 'the other replica to see the instances');

  assert.ok((await b.store.remove(gone, 'deregistered')) !== null);
  assert.ok((await leader.store.evict(evicted, leader.store.leadership().fencingToken)) !== null);
  await waitFor(() => a.catalog.get(lapsing) === undefined && b.catalog.get(lapsing) === undefined, 'etcd to expire the lease');

  for (const replica of [a, b]) {
    await waitFor(() => replica.catalog.removals.length === 3, 'all three removals');
    assert.equal(replica.catalog.removalOf('api/gone'), 'service_deregistered');
    assert.equal(replica.catalog.removalOf('api/evicted'), 'service_evicted');
    assert.equal(replica.catalog.removalOf('api/lapsing'), 'service_expired');
  }
});

test('renewals on a replica that did not register the instance keep it alive; without them etcd expires it', async (t) => {
  const etcd = await startEtcd(t);
  if (etcd === null) return;
  const owner = await openReplica(t, etcd.endpoints);
  const renewer = await openReplica(t, etcd.endpoints);
  const registered = await owner.store.upsert(testInstance('api', 'a', { ttlMs: 2000 }), Date.now());
  await waitFor(() => renewer.catalog.get(registered) !== undefined, 'the renewer to see the instance');

  const until = Date.now() + 5000;
  while (Date.now() < until) {
    const current = renewer.catalog.get(registered);
    assert.ok(current, 'a renewed instance stays registered');
    renewer.store.renew(current, Date.now());
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  assert.ok(owner.catalog.get(registered), 'still registered on the owner');

  const stoppedAt = Date.now();
  await waitFor(() => owner.catalog.get(registered) === undefined, 'the unrenewed instance to expire', 5000);
  assert.ok(Date.now() - stoppedAt >= 1500, 'it lived out its TTL after the last renewal');
  await waitFor(() => renewer.catalog.get(registered) === undefined, 'the renewer to drop it too');
  assert.equal(renewer.catalog.removalOf('api/a'), 'service_expired');
});

test('re-registering keeps the lease while the TTL is unchanged, and moves to a new one (revoking the old) when it changes', async (t) => {
  const etcd = await startEtcd(t);
  if (etcd === null) return;
  const { store, catalog } = await openReplica(t, etcd.endpoints);
  const key = 'maxine/i/api/a';
  const first = await store.upsert(testInstance('api', 'a', { ttlMs: 5000 }), Date.now());
  const firstLease = await leaseOfKey(etcd.endpoints, key);
  assert.ok(firstLease !== undefined && firstLease !== '0');

  const sameTtl = await store.upsert({ ...first, port: 9001 }, Date.now());
  assert.equal(await leaseOfKey(etcd.endpoints, key), firstLease, 'same TTL: same lease');

  await store.upsert({ ...sameTtl, ttlMs: 9000 }, Date.now());
  const secondLease = await leaseOfKey(etcd.endpoints, key);
  assert.ok(secondLease !== undefined && secondLease !== firstLease, 'new TTL: new lease');
  assert.equal(await leaseTtl(etcd.endpoints, secondLease), 9);
  await waitFor(() => catalog.get(first)?.ttlMs === 9000, 'the catalog to have the new TTL');
  // The old lease is revoked in the background, after the put.
  const deadline = Date.now() + 3000;
  let oldTtl = await leaseTtl(etcd.endpoints, firstLease);
  while (oldTtl !== -1 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    oldTtl = await leaseTtl(etcd.endpoints, firstLease);
  }
  assert.equal(oldTtl, -1, 'the old lease was revoked');
  assert.deepEqual(catalog.removals, [], 'moving to a new lease removed nothing');
});

test('expire and evict check the fencing token against the leader key and refuse a stale one', async (t) => {
  const etcd = await startEtcd(t);
  if (etcd === null) return;
  const first = await openReplica(t, etcd.endpoints);
  const second = await openReplica(t, etcd.endpoints);
  await waitFor(() => first.store.leadership().isLeader, 'the first replica to lead');
  const stale = first.store.leadership().fencingToken;
  assert.equal(await first.store.expire(Date.now(), stale), 0, 'etcd expires leases itself: nothing to remove');
  await first.store.close();
  await waitFor(() => second.store.leadership().isLeader, 'the second replica to take over');
  const token = second.store.leadership().fencingToken;
  assert.ok(token > stale);

  const target = await second.store.upsert(testInstance('api', 'target'), Date.now());
  await assert.rejects(second.store.expire(Date.now(), stale), FencedError);
  await assert.rejects(second.store.expire(Date.now(), 0), FencedError, 'no leader ever holds token 0');
  await assert.rejects(second.store.evict(target, stale), FencedError);
  await assert.rejects(second.store.evict(target, Number.NaN), FencedError);
  assert.ok(second.catalog.get(target), 'nothing was evicted');
  assert.equal(await second.store.expire(Date.now(), token), 0);
});

test('keys are per prefix and percent-encoded: other prefixes and look-alike names do not collide', async (t) => {
  const etcd = await startEtcd(t);
  if (etcd === null) return;
  const blue = await openReplica(t, etcd.endpoints, { keyPrefix: 'blue/' });
  const green = await openReplica(t, etcd.endpoints, { keyPrefix: 'green/' });
  const slashInService = await blue.store.upsert(testInstance('a/b', 'c'), Date.now());
  const slashInId = await blue.store.upsert(testInstance('a', 'b/c'), Date.now());
  await blue.store.putKv('k', 'blue');
  await green.store.putKv('k', 'green');

  assert.equal(blue.catalog.get(slashInService)?.service, 'a/b');
  assert.equal(blue.catalog.get(slashInId)?.id, 'b/c');
  assert.equal(blue.catalog.instanceCount, 2);
  assert.equal(blue.catalog.kvGet('k'), 'blue');
  assert.equal(green.catalog.instanceCount, 0);
  assert.equal(green.catalog.kvGet('k'), 'green');
  assert.equal(await blue.store.remove({ service: 'a', id: 'b/c' }, 'deregistered') !== null, true);
  assert.ok(blue.catalog.get(slashInService), 'removing one look-alike left the other');
});

test('a record that is not a valid instance is skipped with a warning, and the feed carries on', async (t) => {
  const etcd = await startEtcd(t);
  if (etcd === null) return;
  const { store, catalog, warnings } = await openReplica(t, etcd.endpoints);
  const client = new Etcd3({ hosts: [...etcd.endpoints] });
  t.after(() => client.close());
  await client.kv.put({ key: Buffer.from('maxine/i/api/broken'), value: Buffer.from('{"not":"an instance"}') });
  const after = await store.upsert(testInstance('api', 'fine'), Date.now());
  assert.equal(catalog.revision, after.modifyRevision);
  assert.equal(catalog.get({ service: 'api', id: 'broken' }), undefined);
  assert.ok(warnings.some((w) => w.includes('maxine/i/api/broken')), warnings.join('\n'));
});

test('a replica cut off while etcd compacts its history resyncs from a snapshot when it reconnects', async (t) => {
  const etcd = await startEtcd(t);
  if (etcd === null) return;
  const proxy = await CuttableProxy.start(t, etcd.endpoints[0]!);
  const writer = await openReplica(t, etcd.endpoints);
  const cutOff = await openReplica(t, [proxy.endpoint]);
  const early = await writer.store.upsert(testInstance('api', 'early'), Date.now());
  await waitFor(() => cutOff.catalog.revision === writer.catalog.revision, 'the replica to follow');
  const resetsBefore = cutOff.catalog.resets;

  proxy.cut();
  await waitFor(() => !cutOff.store.health().reachable, 'the cut-off replica to notice');
  await writer.store.upsert(testInstance('api', 'late'), Date.now());
  await writer.store.remove(early, 'deregistered');
  await writer.store.putKv('mode', 'x');
  await compactHistory(etcd.endpoints);
  proxy.reconnect();

  await waitFor(() => cutOff.catalog.revision >= writer.catalog.revision, 'the replica to catch up after reconnecting');
  assert.equal(cutOff.catalog.resets, resetsBefore + 1, 'history was gone: a resync');
  assert.ok(cutOff.warnings.some((w) => w.includes('compacted')), cutOff.warnings.join('\n'));
  assert.deepEqual(cutOff.catalog.snapshot().instances.map((e) => e.instance), [writer.catalog.get({ service: 'api', id: 'late' })]);
  assert.equal(cutOff.catalog.kvGet('mode'), 'x');
  assert.deepEqual(cutOff.store.health(), { reachable: true, error: null });

  const next = await writer.store.upsert(testInstance('api', 'next'), Date.now());
  await waitFor(() => cutOff.catalog.get(next) !== undefined, 'the resynced replica to follow the feed again');
});

test('a replica whose etcd went back to an older revision (restored, replaced) resyncs instead of waiting for its revision', async (t) => {
  const [original, replacement] = await Promise.all([startEtcd(t), startEtcd(t)]);
  if (original === null || replacement === null) return;
  const proxy = await CuttableProxy.start(t, original.endpoints[0]!);
  const writer = await openReplica(t, original.endpoints);
  const follower = await openReplica(t, [proxy.endpoint]);
  for (let i = 0; i < 20; i++) await writer.store.upsert(testInstance('api', `old-${i}`), Date.now());
  await waitFor(() => follower.catalog.revision === writer.catalog.revision, 'the follower to follow');
  const survivor = await openReplica(t, replacement.endpoints);
  const kept = await survivor.store.upsert(testInstance('api', 'new'), Date.now());
  assert.ok(survivor.catalog.revision < follower.catalog.revision, 'the replacement is at an older revision');

  proxy.cut();
  proxy.reconnect(replacement.endpoints[0]!);
  await waitFor(() => follower.catalog.get(kept) !== undefined, 'the follower to reload from the replacement');
  assert.deepEqual(follower.catalog.snapshot().instances.map((e) => e.instance), [kept]);
  assert.equal(follower.catalog.revision, survivor.catalog.revision);
  assert.ok(follower.warnings.some((w) => w.includes('behind')), follower.warnings.join('\n'));
  const next = await survivor.store.upsert(testInstance('api', 'next'), Date.now());
  await waitFor(() => follower.catalog.get(next) !== undefined, 'the follower to follow the replacement');

  // A catalog ahead of etcd when it opens: reset, not resumed.
  await writer.store.close();
  const resets = writer.catalog.resets;
  await openReplica(t, replacement.endpoints, {}, writer.catalog);
  assert.equal(writer.catalog.resets, resets + 1);
  assert.deepEqual(writer.catalog.snapshot().instances.map((e) => e.instance.id).sort(), ['new', 'next']);
});
