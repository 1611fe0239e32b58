import assert from 'node:assert/strict';
import { test } from 'node:test';
import { testInstance } from '../../core/fixtures.ts';
import { startRedis } from '../../../test/helpers/backends.ts';
import { FencedError, StoreUnavailableError } from '../store.ts';
import { SCRIPTS, keysFor } from './scripts.ts';
import { TEST_PREFIX, eventually, openReplica, waitFor, withRedis } from './testing.ts';

const keys = keysFor(TEST_PREFIX);

test('redis restart: writes fail fast while it is down, resume once it is back, and every replica converges', async (t) => {
  const server = await startRedis(t);
  if (server === null) return;
  const a = await openReplica(t, server.url);
  const b = await openReplica(t, server.url);
  for (let i = 0; i < 5; i++) await a.store.upsert(testInstance('api', `before-${i}`), Date.now());
  await b.store.putKv('mode', 'before');

  await server.process.stop();
  const started = Date.now();
  await assert.rejects(a.store.upsert(testInstance('api', 'down'), Date.now()), StoreUnavailableError);
  assert.ok(Date.now() - started <= 2000, `the write was refused after ${Date.now() - started} ms`);
  await waitFor(() => !a.store.health().reachable && !b.store.health().reachable, 'both replicas to report redis unreachable');
  assert.match(a.store.health().error ?? '', /unreachable/);

  await server.process.start();
  await eventually(() => b.store.upsert(testInstance('api', 'after-b'), Date.now()), 'a write through b after the restart');
  await eventually(() => a.store.putKv('mode', 'after'), 'a write through a after the restart');
  await waitFor(() => a.catalog.revision === b.catalog.revision, 'both replicas to reach the same revision');
  assert.deepEqual(a.catalog.picture(), b.catalog.picture());
  const names = a.catalog.picture().instances.map((instance) => instance.id);
  for (const id of ['before-0', 'before-4', 'after-b']) assert.ok(names.includes(id), `${id} survived the restart`);
  assert.equal(a.catalog.kvGet('mode'), 'after');
  await waitFor(() => a.store.health().reachable && b.store.health().reachable, 'both replicas to report redis reachable again');
});

test('a frozen redis (SIGSTOP): writes are refused within 2 s, the leader stops claiming its term, and all converge after SIGCONT', async (t) => {
  const server = await startRedis(t);
  if (server === null) return;
  const a = await openReplica(t, server.url);
  const b = await openReplica(t, server.url);
  await waitFor(() => a.store.leadership().isLeader !== b.store.leadership().isLeader, 'one leader');
  const leader = a.store.leadership().isLeader ? a : b;
  await a.store.upsert(testInstance('api', 'x'), Date.now());

  server.process.pause();
  const started = Date.now();
  await assert.rejects(b.store.putKv('k', 'frozen'), StoreUnavailableError);
  assert.ok(Date.now() - started <= 2000, `the write was refused after ${Date.now() - started} ms`);
  await waitFor(() => !leader.store.leadership().isLeader, 'the leader to give up its unrenewed term', 1500);
  assert.equal(b.store.health().reachable, false);

  server.process.resume();
  await eventually(() => b.store.putKv('k', 'thawed'), 'a write after SIGCONT');
  await waitFor(() => a.catalog.kvGet('k') === 'thawed' && a.catalog.revision === b.catalog.revision, 'a to follow the feed again');
  assert.deepEqual(a.catalog.picture(), b.catalog.picture());
  await waitFor(() => a.store.leadership().isLeader !== b.store.leadership().isLeader, 'a leader again');
});

test('the Lua scripts refuse expire and evict from a deposed leader, changing nothing', async (t) => {
  const server = await startRedis(t);
  if (server === null) return;
  const a = await openReplica(t, server.url);
  const { isLeader, fencingToken } = a.store.leadership();
  assert.ok(isLeader && fencingToken > 0, 'the only replica leads');
  const lapsed = await a.store.upsert(testInstance('api', 'lapsed', { ttlMs: 1000 }), Date.now() - 5000);
  const target = await a.store.upsert(testInstance('api', 'target'), Date.now());

  // Another replica took the term while this one was not looking (paused, partitioned).
  await withRedis(server.url, (client) => client.sendCommand(['SET', keys.leader, `${fencingToken + 1}:intruder`, 'PX', '60000']));
  await assert.rejects(a.store.expire(Date.now(), fencingToken), FencedError);
  await assert.rejects(a.store.evict(target, fencingToken), FencedError);
  await assert.rejects(a.store.evict(target, 0), FencedError, 'no token is never current');
  const stored = await withRedis(server.url, (client) => client.sendCommand(['HLEN', keys.instances]));
  assert.equal(stored, 2, 'both records are still in redis');
  assert.ok(a.catalog.get(lapsed) && a.catalog.get(target), 'and in the catalog');
  await waitFor(() => a.store.leadership().leaderId === 'intruder', 'the replica to learn the new leader');
  assert.equal(a.store.leadership().isLeader, false);

  await withRedis(server.url, (client) => client.sendCommand(['DEL', keys.leader]));
  await waitFor(() => a.store.leadership().isLeader, 'the replica to take a new term');
  const next = a.store.leadership().fencingToken;
  assert.ok(next > fencingToken, 'the new term has a larger token');
  assert.equal(await a.store.expire(Date.now(), next), 1);
  assert.equal(a.catalog.get(lapsed), undefined);
  assert.ok(a.catalog.get(target));
});

test('a replica behind a trimmed feed resyncs from a snapshot, at open and while running', async (t) => {
  const server = await startRedis(t);
  if (server === null) return;
  const writer = await openReplica(t, server.url, { feedMaxLen: 10 });
  const follower = await openReplica(t, server.url);
  await writer.store.upsert(testInstance('api', 'a'), Date.now());
  await waitFor(() => follower.catalog.revision === writer.catalog.revision, 'the follower to catch up');
  await follower.store.close();

  // MAXLEN ~ trims whole stream nodes (100 entries each), so write well past one.
  for (let i = 0; i < 300; i++) await writer.store.putKv(`k${i % 7}`, String(i));
  const length = await withRedis(server.url, (client) => client.sendCommand(['XLEN', keys.feed]));
  assert.ok(Number(length) < 300, `the feed was trimmed to ${String(length)} entries`);
  const resets = { count: 0 };
  follower.catalog.subscribe({ event: () => {}, reset: () => resets.count++ });
  const reopened = await openReplica(t, server.url, {}, follower.catalog);
  assert.equal(resets.count, 1, 'reopening behind the trimmed feed was a resync');
  assert.deepEqual(follower.catalog.picture(), writer.catalog.picture());

  // While it runs: its feed connection drops, and before it is back a change is made and the history trimmed.
  const feedClient = await withRedis(server.url, async (client) => {
    const list = String(await client.sendCommand(['CLIENT', 'LIST']));
    const line = list.split('\n').find((entry) => entry.includes(` name=maxine:${reopened.instanceId}:feed `));
    assert.ok(line, 'the feed connection is named after its replica');
    return /\bid=(\d+)/.exec(line)![1]!;
  });
  await withRedis(server.url, (client) =>
    client
      .multi()
      .addCommand(['CLIENT', 'KILL', 'ID', feedClient])
      .addCommand(['EVAL', SCRIPTS.putKv.SCRIPT.toString(), '3', keys.rev, keys.kv, keys.feed, '10', 'missed', 'any', '', 'set', 'yes'])
      .addCommand(['XTRIM', keys.feed, 'MAXLEN', '0'])
      .exec(),
  );
  await waitFor(() => follower.catalog.kvGet('missed') === 'yes', 'the follower to resync after the gap');
  assert.equal(resets.count, 2);
  assert.ok(reopened.warnings.some((warning) => /resync/.test(warning)), 'the resync was reported');
  await writer.store.putKv('later', '1');
  await waitFor(() => follower.catalog.revision === writer.catalog.revision, 'the follower to follow the feed again');
  assert.deepEqual(follower.catalog.picture(), writer.catalog.picture());
});

test('renewals go to redis as one ZADD per flush, never revive a removed instance, and are sent on close', async (t) => {
  const server = await startRedis(t);
  if (server === null) return;
  const a = await openReplica(t, server.url, { renewFlushMs: 200 });
  const b = await openReplica(t, server.url, { renewFlushMs: 200 });
  const now = Date.now();
  const instances = [];
  for (let i = 0; i < 50; i++) instances.push(await a.store.upsert(testInstance('api', `i-${i}`, { ttlMs: 10_000 }), now));
  const score = (id: string) => withRedis(server.url, (client) => client.sendCommand(['ZSCORE', keys.leases, `api\n${id}`]));

  await withRedis(server.url, (client) => client.sendCommand(['CONFIG', 'RESETSTAT']));
  for (const instance of instances) b.store.renew(instance, now + 5000);
  await eventually(async () => assert.equal(Number(await score('i-49')), now + 15_000), 'the renewals to reach redis', 2000);
  const stats = String(await withRedis(server.url, (client) => client.sendCommand(['INFO', 'commandstats'])));
  assert.match(stats, /cmdstat_zadd:calls=1,/, 'fifty renewals, one ZADD');

  b.store.renew(instances[0]!, now + 1000);
  await new Promise((resolve) => setTimeout(resolve, 400));
  assert.equal(Number(await score('i-0')), now + 15_000, 'an older renewal never moves the deadline back');

  await a.store.remove(instances[1]!, 'deregistered');
  b.store.renew(instances[1]!, now + 6000);
  await new Promise((resolve) => setTimeout(resolve, 400));
  assert.equal(await score('i-1'), null, 'a renewal does not bring back a removed instance');

  b.store.renew(instances[2]!, now + 7000);
  await b.store.close();
  assert.equal(Number(await score('i-2')), now + 17_000, 'close sent the last renewals');
});
