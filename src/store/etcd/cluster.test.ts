import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startEtcd } from '../../../test/helpers/backends.ts';
import { testInstance } from '../../core/fixtures.ts';
import { openReplica, untilAccepted, waitFor } from './testing.ts';

/** A three-member etcd cluster: the client fails over between members. */

test('writes, the watch and renewals fail over between members as each member is stopped in turn', async (t) => {
  const cluster = await startEtcd(t, 3);
  if (cluster === null) return;
  const a = await openReplica(t, cluster.endpoints);
  const b = await openReplica(t, cluster.endpoints);
  const kept = await a.store.upsert(testInstance('api', 'kept', { ttlMs: 4000 }), Date.now());
  await waitFor(() => b.catalog.get(kept) !== undefined, 'the renewing replica to see the instance');
  const renewing = setInterval(() => {
    const current = b.catalog.get(kept);
    if (current) b.store.renew(current, Date.now());
  }, 300);
  t.after(() => clearInterval(renewing));

  for (const [index, member] of cluster.members.entries()) {
    await member.stop();
    for (const [n, replica] of [a, b].entries()) {
      const written = await untilAccepted(() => replica.store.upsert(testInstance('api', `m${index}-r${n}`), Date.now()));
      await waitFor(() => a.catalog.get(written) !== undefined && b.catalog.get(written) !== undefined, `both replicas to see m${index}-r${n}`);
    }
    await member.start();
  }

  await waitFor(() => a.catalog.revision === b.catalog.revision, 'both replicas at the same revision');
  assert.deepEqual(b.catalog.snapshot().instances.map((e) => e.instance), a.catalog.snapshot().instances.map((e) => e.instance));
  assert.equal(a.catalog.instanceCount, 7);
  assert.deepEqual(a.catalog.removals, [], 'the renewed instance outlived every failover');
  await waitFor(() => a.store.leadership().isLeader !== b.store.leadership().isLeader, 'one leader');
});
