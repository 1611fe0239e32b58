import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { testInstance } from '../../core/fixtures.ts';
import { FencedError, StoreUnavailableError } from '../store.ts';
import { compactDirectory } from './compaction.ts';
import { parseRecord } from './record.ts';
import { createSharedFileStore } from './shared-file-store.ts';
import { CheckedCatalog } from '../conformance/checked-catalog.ts';
import { LEASE, recordFiles, sharedDir, waitFor } from './testing.ts';

describe('shared-file store', () => {
  test('a write adds one small record file; nothing rewrites the registry', async (t) => {
    const { dir, open } = await sharedDir(t);
    // A term long enough that no leadership renewal joins the records below.
    const { store } = await open('a', { leaderLeaseMs: 60_000, leaderRenewMs: 20_000 });
    await waitFor(() => store.leadership().isLeader, 'the initial claim');
    for (let i = 0; i < 50; i++) await store.upsert(testInstance('api', `i-${i}`), Date.now());
    const before = new Set(await recordFiles(dir));
    await store.upsert(testInstance('api', 'one-more'), Date.now());
    const added = (await recordFiles(dir)).filter((name) => !before.has(name));
    assert.equal(added.length, 1);
    const { size } = await stat(join(dir, 'log', added[0]!));
    assert.ok(size < 2000, `the record of one upsert is ${size} bytes`);
    const record = parseRecord(await readFile(join(dir, 'log', added[0]!), 'utf8'));
    assert.deepEqual(
      record.entries.map((e) => e.op),
      ['upsert'],
    );
  });

  test('writes issued together share one record (group commit)', async (t) => {
    const { dir, open } = await sharedDir(t);
    const { store, catalog } = await open('a');
    const before = (await recordFiles(dir)).length;
    const stored = await Promise.all(Array.from({ length: 200 }, (_, i) => store.upsert(testInstance('api', `i-${i}`), Date.now())));
    const records = (await recordFiles(dir)).length - before;
    assert.ok(records <= 3, `200 concurrent upserts took ${records} records`);
    assert.deepEqual(
      stored.map((i) => i.modifyRevision).sort((a, b) => a - b),
      Array.from({ length: 200 }, (_, i) => i + 1),
    );
    assert.equal(catalog.revision, 200);
  });

  test('a write issued the moment the previous one resolves is written at once, not left for the next write to pick up', async (t) => {
    const { open } = await sharedDir(t);
    // No leadership renewal or lease flush comes along to start the log writer again.
    const { store } = await open('a', { leaderLeaseMs: 60_000, leaderRenewMs: 20_000 });
    await waitFor(() => store.leadership().isLeader, 'the initial claim');
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('the second write was still waiting after 1 s')), 1000)));
    t.after(() => clearTimeout(timer));
    for (let i = 0; i < 20; i++) {
      // `then` runs as the first write's commit answers it, before the log writer has finished its round.
      const second = store.putKv('first', String(i)).then(() => store.putKv('second', String(i)));
      await Promise.race([second, stalled]);
    }
  });

  test('three replicas writing 300 changes each, interleaved, lose and duplicate nothing', async (t) => {
    const { open } = await sharedDir(t);
    const replicas = await Promise.all(['a', 'b', 'c'].map((id) => open(id)));
    const perReplica = 300;
    await Promise.all(
      replicas.map(async ({ store }, r) => {
        // Four writes in flight per replica: many small records, racing for every position.
        const lanes = Array.from({ length: 4 }, async (_, lane) => {
          for (let i = lane; i < perReplica; i += 4) {
            if (i % 50 === 49) await store.putKv(`k-${r}-${i}`, String(i));
            else await store.upsert(testInstance(`svc-${i % 7}`, `r${r}-${i}`), Date.now());
          }
        });
        await Promise.all(lanes);
      }),
    );
    const total = perReplica * replicas.length;
    await waitFor(() => replicas.every(({ catalog }) => catalog.revision === total), `every replica at revision ${total}`);
    const expected = replicas[0]!.catalog.picture();
    assert.equal(expected.instances.length + expected.kv.length, total);
    for (const { catalog } of replicas) {
      assert.deepEqual(catalog.picture(), expected);
      // Each replica saw every revision exactly once, in order.
      assert.deepEqual(catalog.applied, Array.from({ length: total }, (_, i) => i + 1));
    }
  });

  test('a temporary file left by a writer that crashed mid-append breaks nothing and is cleaned up', async (t) => {
    const { dir, open } = await sharedDir(t);
    const first = await open('a', { compaction: { everyRecords: 5, retainRecords: 2 } });
    await first.store.upsert(testInstance('api', 'before'), Date.now());
    const leftover = join(dir, 'log', '.append-0123456789abcdef.tmp');
    await writeFile(leftover, '{"format":1,"rid":"0123456789abcdef","prev":');
    const old = new Date(Date.now() - 3600_000);
    await utimes(leftover, old, old);

    const second = await open('b');
    const stored = await Promise.all(Array.from({ length: 10 }, (_, i) => second.store.upsert(testInstance('api', `i-${i}`), Date.now())));
    await waitFor(() => first.catalog.revision === second.catalog.revision, 'the replicas to agree');
    assert.deepEqual(first.catalog.picture(), second.catalog.picture());
    assert.equal(stored.length, 10);
    for (let i = 0; i < 10; i++) await first.store.upsert(testInstance('api', `j-${i}`), Date.now());
    await waitFor(async () => !(await exists(leftover)), 'compaction to delete the stale temporary file');
  });

  test('the leader compacts the log; a replica behind the snapshot resyncs, one within the margin resumes', async (t) => {
    const { dir, open } = await sharedDir(t);
    const compaction = { compaction: { everyRecords: 20, retainRecords: 10 } };
    const leader = await open('leader', compaction);
    await waitFor(() => leader.store.leadership().isLeader, 'a leader');
    const follower = await open('follower', compaction);
    await leader.store.upsert(testInstance('api', 'first'), Date.now());
    await waitFor(() => follower.catalog.revision === leader.catalog.revision, 'the follower');

    // Behind by a few records: resumes from the retained margin without a reset.
    await follower.store.close();
    for (let i = 0; i < 3; i++) await leader.store.upsert(testInstance('api', `near-${i}`), Date.now());
    const near = await open('follower-2', compaction, follower.catalog);
    assert.equal(follower.catalog.resets, 1);
    assert.deepEqual(follower.catalog.picture(), leader.catalog.picture());
    await near.store.close();

    // Behind by far more than the margin: the records it needs are gone.
    for (let i = 0; i < 60; i++) await leader.store.upsert(testInstance('api', `far-${i}`), Date.now());
    // Compaction deletes after the snapshot lands: wait for both.
    const trimmed = async () => {
      const snapshots = await snapshotPositions(dir);
      const oldest = Number((await recordFiles(dir))[0]!.slice(0, -'.json'.length));
      return snapshots.length === 1 && snapshots[0]! >= 60 && oldest === snapshots[0]! - compaction.compaction.retainRecords;
    };
    await waitFor(trimmed, 'one snapshot past position 60, and only the retained records before it');
    const far = await open('follower-3', compaction, follower.catalog);
    assert.equal(follower.catalog.resets, 2);
    await waitFor(() => follower.catalog.revision === leader.catalog.revision, 'the resynced follower');
    assert.deepEqual(follower.catalog.picture(), leader.catalog.picture());
    await far.store.upsert(testInstance('api', 'after'), Date.now());
    await waitFor(() => leader.catalog.revision === follower.catalog.revision, 'the leader to see the resynced replica write');
  });

  test('a leader whose lease lapsed cannot make leader-only writes; a current one can', async (t) => {
    const { open } = await sharedDir(t);
    let skew = 0;
    const leader = await open('leader', { clock: () => Date.now() + skew });
    await waitFor(() => leader.store.leadership().isLeader, 'a leader');
    const { fencingToken } = leader.store.leadership();
    const target = await leader.store.upsert(testInstance('api', 'target', { ttlMs: 60_000 }), Date.now());
    await leader.store.upsert(testInstance('api', 'lapsed', { ttlMs: 1000 }), Date.now() - 5000);

    // Its clock says the lease ran out (as if it had been paused past its term).
    skew = LEASE.leaderLeaseMs + 1;
    assert.equal(leader.store.leadership().isLeader, false);
    await assert.rejects(leader.store.evict(target, fencingToken), FencedError);
    await assert.rejects(leader.store.expire(Date.now(), fencingToken), FencedError);
    assert.ok(leader.catalog.get(target));
    assert.ok(leader.catalog.get({ service: 'api', id: 'lapsed' }));

    // Its next claim is a new term with a larger token, which works.
    await waitFor(() => leader.store.leadership().isLeader, 'the lease to be claimed again');
    const next = leader.store.leadership().fencingToken;
    assert.ok(next > fencingToken);
    assert.equal(await leader.store.expire(Date.now() + skew, next), 1);
    assert.ok((await leader.store.evict(target, next)) !== null);
  });

  test('a follower cannot use the leader token', async (t) => {
    const { open } = await sharedDir(t);
    const leader = await open('leader');
    await waitFor(() => leader.store.leadership().isLeader, 'a leader');
    const follower = await open('follower');
    const target = await follower.store.upsert(testInstance('api', 'target'), Date.now());
    const { fencingToken, leaderId } = follower.store.leadership();
    assert.equal(leaderId, 'leader');
    await assert.rejects(follower.store.evict(target, fencingToken), FencedError);
    assert.ok(follower.catalog.get(target));
  });

  test('renewals cost no I/O each; they travel in one record per flush and keep the lease alive elsewhere', async (t) => {
    const { dir, open } = await sharedDir(t);
    const a = await open('a', { renewFlushMs: 100 });
    const b = await open('b');
    const stored = await a.store.upsert(testInstance('api', 'x', { ttlMs: 5000 }), Date.now());
    await waitFor(() => b.catalog.get(stored) !== undefined, 'b to see the instance');
    const before = (await recordFiles(dir)).length;
    const renewedAt = Date.now() + 1000;
    for (let i = 0; i <= 1000; i++) a.store.renew(stored, renewedAt - 1000 + i);
    await waitFor(() => b.catalog.entry(stored)?.renewedAt === renewedAt, 'the renewal to reach b');
    const renewRecords = [];
    for (const name of (await recordFiles(dir)).slice(before)) {
      const record = parseRecord(await readFile(join(dir, 'log', name), 'utf8'));
      if (record.entries.some((e) => e.op === 'renew')) renewRecords.push(record);
    }
    assert.equal(renewRecords.length, 1, 'a thousand renewals, one record');
    assert.equal(b.catalog.revision, stored.modifyRevision, 'renewals are not visible changes');
  });

  test('an unreachable directory: writes fail fast, health says so, and the replicas converge once it is back', async (t) => {
    const { dir, open } = await sharedDir(t);
    const a = await open('a');
    const b = await open('b');
    await a.store.upsert(testInstance('api', 'before'), Date.now());
    const away = `${dir}-away`;
    await rename(dir, away);
    try {
      const started = Date.now();
      await assert.rejects(a.store.upsert(testInstance('api', 'lost'), Date.now()), (err: unknown) => {
        assert.ok(err instanceof StoreUnavailableError);
        assert.match(err.message, /shared-file store: .* cannot be used: ENOENT/);
        return true;
      });
      assert.ok(Date.now() - started < 2000);
      await waitFor(() => !a.store.health().reachable && !b.store.health().reachable, 'both replicas to report the directory unreachable', 3000);
      assert.match(a.store.health().error ?? '', /ENOENT/);
    } finally {
      await rename(away, dir);
    }
    await waitFor(() => a.store.health().reachable && b.store.health().reachable, 'both replicas to recover', 3000);
    const after = await b.store.upsert(testInstance('api', 'after'), Date.now());
    await waitFor(() => a.catalog.revision === after.modifyRevision, 'a to follow again');
    assert.deepEqual(a.catalog.picture(), b.catalog.picture());
    assert.equal(a.catalog.get({ service: 'api', id: 'lost' }), undefined);
  });

  test('open() refuses a regular file (the original Maxine state file) with a clear message', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'maxine-shared-file-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'registry.json');
    await writeFile(file, '{}');
    const store = createSharedFileStore({ ...LEASE, instanceId: 'a', dir: file });
    const catalog = new CheckedCatalog();
    await assert.rejects(store.open(catalog, catalog), /registry\.json is a regular file.*MAXINE_REGISTRY_STATE_FILE must name a directory/);
  });

  test('open() on a directory it cannot use rejects with StoreUnavailableError', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'maxine-shared-file-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'file'), '');
    const store = createSharedFileStore({ ...LEASE, instanceId: 'a', dir: join(dir, 'file', 'beneath-a-file') });
    const catalog = new CheckedCatalog();
    await assert.rejects(store.open(catalog, catalog), (err: unknown) => {
      assert.ok(err instanceof StoreUnavailableError);
      assert.match(err.message, /beneath-a-file cannot be used: ENOTDIR/);
      return true;
    });
    assert.equal(store.health().reachable, false);
    await store.close();
  });

  test('offline compaction keeps the state and lets a fresh replica start from the snapshot', async (t) => {
    const { dir, open } = await sharedDir(t);
    const a = await open('a');
    for (let i = 0; i < 30; i++) await a.store.upsert(testInstance('api', `i-${i}`), Date.now());
    await a.store.putKv('mode', 'on');
    const position = await compactDirectory(dir);
    assert.deepEqual(await snapshotPositions(dir), [position]);
    const records = await recordFiles(dir);
    assert.ok(Number(records[0]!.slice(0, -5)) === position, 'only the record at the snapshot and later ones remain');
    const fresh = await open('fresh');
    assert.equal(fresh.catalog.resets, 1);
    assert.deepEqual(fresh.catalog.picture(), a.catalog.picture());
  });
});

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function snapshotPositions(dir: string): Promise<number[]> {
  return (await readdir(dir))
    .filter((name) => /^snapshot-\d+\.json$/.test(name))
    .map((name) => Number(name.slice('snapshot-'.length, -'.json'.length)))
    .sort((a, b) => a - b);
}
