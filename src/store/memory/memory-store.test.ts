import assert from 'node:assert/strict';
import { appendFileSync, closeSync, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { MemoryStore } from './memory-store.ts';
import { crashImage, logBytes, logFiles, makeInstance, openStore, tempDir, waitFor } from './testing.ts';

const INSTANCE_FIELDS = Object.keys(makeInstance('s', 'i')).sort();

test('upserts, removes and kv writes take consecutive revisions and are stamped', async (t) => {
  const { store, catalog } = await openStore(tempDir(t));
  t.after(() => store.close());

  const first = await store.upsert(makeInstance('api', 'a'), 100);
  assert.equal(first.createRevision, 1);
  assert.equal(first.modifyRevision, 1);
  assert.ok(Object.isFrozen(first) && Object.isFrozen(first.tags) && Object.isFrozen(first.metadata));
  assert.deepEqual(Object.keys(first).sort(), INSTANCE_FIELDS);
  assert.equal(catalog.get(first), first, 'the sink has the stored object');

  const second = await store.upsert({ ...first, port: 9090 }, 200);
  assert.deepEqual([second.createRevision, second.modifyRevision, second.port], [1, 2, 9090]);
  assert.equal(await store.remove({ service: 'api', id: 'a' }, 'deregistered'), 3);
  assert.equal(await store.putKv('config', 'x'), 4);
  assert.equal(await store.putKv('config', null), 5);
  assert.deepEqual(catalog.applied, [1, 2, 3, 4, 5]);
  assert.equal(store.stats().revision, 5);
});

test('removing an absent instance resolves null without a revision', async (t) => {
  const { store, catalog } = await openStore(tempDir(t));
  t.after(() => store.close());
  await store.upsert(makeInstance('api', 'a'), 1);
  assert.equal(await store.remove({ service: 'api', id: 'nope' }, 'deregistered'), null);
  assert.equal(store.stats().revision, 1);
  assert.deepEqual(catalog.applied, [1]);
});

test('an instance the store could not restore is refused before it takes a revision', async (t) => {
  const { store } = await openStore(tempDir(t));
  t.after(() => store.close());
  await assert.rejects(store.upsert(makeInstance('api', 'a', { port: Number.NaN }), 1), /invalid instance: "port"/);
  await assert.rejects(store.upsert(makeInstance('api', 'a'), Number.POSITIVE_INFINITY), /renewedAt/);
  assert.equal(store.stats().revision, 0);
});

test('a restart restores instances, kv and the revision', async (t) => {
  const dir = tempDir(t);
  const { store, catalog } = await openStore(dir);
  await store.upsert(makeInstance('api', 'a'), 1000);
  await store.upsert(makeInstance('api', 'b', { metadata: JSON.parse('{"__proto__":"x","k":"v"}') as Record<string, string> }), 1000);
  await store.upsert(makeInstance('web', 'c'), 1000);
  await store.remove({ service: 'web', id: 'c' }, 'deregistered');
  await store.putKv('kept', '1');
  await store.putKv('dropped', '2');
  await store.putKv('dropped', null);
  const before = catalog.state();
  await store.close();

  const reopened = await openStore(dir, { clock: () => 2000 });
  t.after(() => reopened.store.close());
  assert.equal(reopened.catalog.resets, 1);
  assert.deepEqual(reopened.catalog.state(), before);
  assert.equal(reopened.store.stats().revision, 7);
  assert.deepEqual(reopened.catalog.kv, new Map([['kept', '1']]));

  const b = reopened.catalog.get({ service: 'api', id: 'b' });
  assert.ok(b && Object.isFrozen(b) && Object.isFrozen(b.tags) && Object.isFrozen(b.metadata));
  assert.deepEqual(Object.keys(b).sort(), INSTANCE_FIELDS);
  assert.ok(Object.hasOwn(b.metadata, '__proto__'), '"__proto__" is an own key');
  assert.equal(Object.getPrototypeOf(b.metadata), Object.prototype);

  assert.equal((await reopened.store.upsert(makeInstance('api', 'd'), 2000)).modifyRevision, 8);
});

test('leases that lapsed while the store was down are dropped at open', async (t) => {
  const dir = tempDir(t);
  const { store } = await openStore(dir, { clock: () => 10_000 });
  await store.upsert(makeInstance('api', 'short', { ttlMs: 1000 }), 10_000);
  await store.upsert(makeInstance('api', 'long', { ttlMs: 60_000 }), 10_000);
  await store.close();

  const reopened = await openStore(dir, { clock: () => 15_000 });
  t.after(() => reopened.store.close());
  assert.deepEqual([...reopened.catalog.instances.values()].map((e) => e.instance.id), ['long']);
});

test('lease checkpoints keep a heartbeating instance alive across a crash', async (t) => {
  const dir = tempDir(t);
  let now = 1_000_000;
  const { store, catalog } = await openStore(dir, { clock: () => now, leaseCheckpointMs: 10 });
  t.after(() => store.close());
  await store.upsert(makeInstance('api', 'beating', { ttlMs: 1000 }), now);
  await store.upsert(makeInstance('api', 'silent', { ttlMs: 1000 }), now);
  now += 900;
  catalog.renewVia(store, { service: 'api', id: 'beating' }, now);
  await waitFor(() => logFiles(dir).some((f) => readFileSync(f, 'utf8').includes('"op":"lease"')), 'a lease checkpoint');
  const image = crashImage(t, dir);

  now += 600; // 1500 ms after registering, 600 ms after the heartbeat
  const reopened = await openStore(image, { clock: () => now });
  t.after(() => reopened.store.close());
  const beating = [...reopened.catalog.instances.values()];
  assert.deepEqual(
    beating.map((e) => [e.instance.id, e.renewedAt]),
    [['beating', 1_000_900]],
  );
});

test('heartbeats never write to the disk', async (t) => {
  const dir = tempDir(t);
  const { store, catalog } = await openStore(dir);
  t.after(() => store.close());
  for (let i = 0; i < 10; i++) await store.upsert(makeInstance('api', `i${i}`), 1);
  const bytes = logBytes(dir);
  const writes = store.stats().logWrites;
  for (let n = 0; n < 10_000; n++) catalog.renewVia(store, { service: 'api', id: `i${n % 10}` }, 2 + n);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(logBytes(dir), bytes);
  assert.equal(store.stats().logWrites, writes);
});

test('group commit: 1000 concurrent upserts take few writes and reach the sink in order', async (t) => {
  const { store, catalog } = await openStore(tempDir(t), { fsync: 'always' });
  t.after(() => store.close());
  const stored = await Promise.all(Array.from({ length: 1000 }, (_, i) => store.upsert(makeInstance('api', `i${i}`), 1)));
  const revisions = stored.map((i) => i.modifyRevision);
  assert.equal(new Set(revisions).size, 1000);
  assert.deepEqual(catalog.applied, Array.from({ length: 1000 }, (_, i) => i + 1));
  assert.ok(store.stats().logWrites <= 5, `${store.stats().logWrites} writes`);

  // Writes issued while a batch is in flight join the next batch.
  const before = store.stats().logWrites;
  const waves = [];
  for (let w = 0; w < 10; w++) {
    waves.push(...Array.from({ length: 100 }, (_, i) => store.putKv(`k${w}-${i}`, 'v')));
    await new Promise((resolve) => setImmediate(resolve));
  }
  await Promise.all(waves);
  assert.ok(store.stats().logWrites - before < 1000 / 10, `${store.stats().logWrites - before} writes for 1000 records`);
});

test("fsync 'always' acknowledges durable writes that survive a crash", async (t) => {
  const dir = tempDir(t);
  const { store, catalog } = await openStore(dir, { fsync: 'always' });
  t.after(() => store.close());
  await Promise.all(Array.from({ length: 50 }, (_, i) => store.upsert(makeInstance('api', `i${i}`), 1)));
  await store.evict({ service: 'api', id: 'i7' }, store.leadership().fencingToken);
  const reopened = await openStore(crashImage(t, dir), { clock: () => 1 });
  t.after(() => reopened.store.close());
  assert.deepEqual(reopened.catalog.state(), catalog.state());
});

test("fsync 'never' works too", async (t) => {
  const dir = tempDir(t);
  const { store, catalog } = await openStore(dir, { fsync: 'never' });
  await store.upsert(makeInstance('api', 'a'), 1);
  const before = catalog.state();
  await store.close();
  const reopened = await openStore(dir, { clock: () => 1 });
  t.after(() => reopened.store.close());
  assert.deepEqual(reopened.catalog.state(), before);
});

test('snapshots rotate the log; a restart after a crash gives the same state', async (t) => {
  const dir = tempDir(t);
  const { store, catalog } = await openStore(dir, { snapshotEveryRecords: 20 });
  t.after(() => store.close());
  for (let i = 0; i < 100; i++) {
    await store.upsert(makeInstance('api', `i${i % 30}`, { port: 1000 + i }), 1);
    if (i % 7 === 0) await store.putKv(`k${i % 5}`, String(i));
  }
  await store.snapshotNow(); // joins a snapshot in progress, if any
  await store.snapshotNow(); // captures every write: fewer than 20 records follow, so no snapshot races the copy
  assert.equal(store.stats().lastSnapshotRevision, store.stats().revision);
  assert.ok(existsSync(join(dir, 'snapshot.json')) && existsSync(join(dir, 'snapshot.prev.json')));
  // Segments older than what the fallback snapshot needs are gone.
  assert.ok(logFiles(dir).length <= 3, `${logFiles(dir).length} segments left`);
  for (let i = 0; i < 10; i++) await store.remove({ service: 'api', id: `i${i}` }, 'deregistered');

  const reopened = await openStore(crashImage(t, dir), { clock: () => 1 });
  t.after(() => reopened.store.close());
  assert.deepEqual(reopened.catalog.state(), catalog.state());
});

test('writes made while a snapshot is being written survive', async (t) => {
  const dir = tempDir(t);
  const { store, catalog } = await openStore(dir);
  t.after(() => store.close());
  await Promise.all(Array.from({ length: 5000 }, (_, i) => store.upsert(makeInstance('api', `i${i}`), 1)));

  let settled = false;
  const snapshot = store.snapshotNow().finally(() => {
    settled = true;
  });
  let during = 0;
  while (!settled) {
    await store.upsert(makeInstance('late', `l${during}`), 2);
    await store.evict({ service: 'api', id: `i${during}` }, store.leadership().fencingToken);
    during++;
  }
  await snapshot;
  assert.ok(during > 1, `${during} writes during the snapshot`);
  assert.ok(store.stats().lastSnapshotRevision < store.stats().revision, 'some writes came after the capture');

  const crashed = await openStore(crashImage(t, dir), { clock: () => 1 });
  t.after(() => crashed.store.close());
  assert.deepEqual(crashed.catalog.state(), catalog.state());
});

test('a torn last log line is ignored with a warning', async (t) => {
  const dir = tempDir(t);
  const { store, catalog } = await openStore(dir);
  t.after(() => store.close());
  for (let i = 0; i < 5; i++) await store.upsert(makeInstance('api', `i${i}`), 1);
  const image = crashImage(t, dir);
  appendFileSync(logFiles(image).at(-1)!, '{"op":"upsert","rev":6,"renewedAt":1,"inst');

  const reopened = await openStore(image, { clock: () => 1 });
  t.after(() => reopened.store.close());
  assert.deepEqual(reopened.catalog.state(), catalog.state());
  assert.match(reopened.warnings.join('\n'), /incomplete last record/);
  // The torn segment is never appended to again; the next start still reads it fine.
  await reopened.store.upsert(makeInstance('api', 'after'), 1);
  const again = await openStore(crashImage(t, image), { clock: () => 1 });
  t.after(() => again.store.close());
  assert.deepEqual(again.catalog.state(), reopened.catalog.state());
});

test('a damaged line followed by records stops the start with a clear error', async (t) => {
  const dir = tempDir(t);
  const { store } = await openStore(dir);
  t.after(() => store.close());
  for (let i = 0; i < 5; i++) await store.upsert(makeInstance('api', `i${i}`), 1);
  const image = crashImage(t, dir);
  const file = logFiles(image).at(-1)!;
  const lines = readFileSync(file, 'utf8').split('\n');
  lines[2] = '{"op":"upsert","rev":3,"garbage';
  writeFileSync(file, lines.join('\n'));
  await assert.rejects(openStore(image), /line 3 is damaged .*refusing to start/);
});

test('a damaged snapshot falls back to the previous one and the log; two refuse to start', async (t) => {
  const dir = tempDir(t);
  let opened = await openStore(dir);
  await opened.store.upsert(makeInstance('api', 'a'), 1);
  await opened.store.close(); // snapshot 1
  opened = await openStore(dir, { clock: () => 1 });
  await opened.store.upsert(makeInstance('api', 'b'), 1);
  await opened.store.putKv('k', 'v');
  const before = opened.catalog.state();
  await opened.store.close(); // snapshot 2, snapshot 1 becomes the fallback

  writeFileSync(join(dir, 'snapshot.json'), '{"format":1,"revision":3,"segm');
  opened = await openStore(dir, { clock: () => 1 });
  assert.deepEqual(opened.catalog.state(), before);
  assert.match(opened.warnings.join('\n'), /snapshot\.json is damaged.*restored from snapshot\.prev\.json/);
  assert.ok(existsSync(join(dir, 'snapshot.json.corrupt')));
  await opened.store.close();

  writeFileSync(join(dir, 'snapshot.json'), 'garbage');
  writeFileSync(join(dir, 'snapshot.prev.json'), 'garbage');
  await assert.rejects(openStore(dir), /refusing to start rather than lose data/);
});

test('a failed snapshot is not fatal: writes go on and the next snapshot succeeds', async (t) => {
  const dir = tempDir(t);
  const { store, catalog } = await openStore(dir);
  t.after(() => store.close());
  await store.upsert(makeInstance('api', 'a'), 1);
  mkdirSync(join(dir, 'snapshot.json.tmp')); // opening the temporary file fails
  await assert.rejects(store.snapshotNow(), /snapshot failed/);
  await store.upsert(makeInstance('api', 'b'), 1);
  rmdirSync(join(dir, 'snapshot.json.tmp'));
  await store.snapshotNow();
  await store.upsert(makeInstance('api', 'c'), 1);
  const reopened = await openStore(crashImage(t, dir), { clock: () => 1 });
  t.after(() => reopened.store.close());
  assert.deepEqual(reopened.catalog.state(), catalog.state());
});

test('a failed log write rejects, refuses writes until a snapshot repairs the log, and loses nothing', async (t) => {
  if (!existsSync('/proc/self/fd')) return t.skip('needs /proc/self/fd');
  const dir = tempDir(t);
  const { store, catalog, warnings } = await openStore(dir, { fsync: 'always', recoveryRetryMs: 20 });
  t.after(() => store.close());
  await store.upsert(makeInstance('api', 'a'), 1);

  // A real I/O failure without touching the store's code: close its log
  // descriptor behind its back, so the next write gets EBADF.
  const fds = readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith(join(dir, 'log-'));
    } catch {
      return false;
    }
  });
  assert.equal(fds.length, 1);
  closeSync(Number(fds[0]));

  await assert.rejects(store.upsert(makeInstance('api', 'b'), 1), /appending to .*log-\d+\.jsonl failed: EBADF/);
  assert.ok(catalog.get({ service: 'api', id: 'b' }), 'the change stays visible; the client was told it failed');
  assert.match(store.stats().writeError ?? '', /EBADF/);
  await assert.rejects(store.putKv('k', 'v'), /writes are refused until a snapshot repairs the log/);

  await waitFor(() => store.stats().writeError === null, 'the repairing snapshot');
  await store.snapshotNow(); // lets the repairing snapshot finish its clean-up before the copy
  await store.upsert(makeInstance('api', 'c'), 1);
  assert.match(warnings.join('\n'), /EBADF/);

  const reopened = await openStore(crashImage(t, dir), { clock: () => 1 });
  t.after(() => reopened.store.close());
  assert.deepEqual(reopened.catalog.state(), catalog.state());
});

test('close is idempotent; writes after it reject clearly and renewals are ignored', async (t) => {
  const dir = tempDir(t);
  const { store } = await openStore(dir);
  const instance = await store.upsert(makeInstance('api', 'a'), 1);
  await Promise.all([store.close(), store.close()]);
  await store.close();
  await assert.rejects(store.upsert(makeInstance('api', 'b'), 1), /memory store: closed/);
  await assert.rejects(store.remove({ service: 'api', id: 'a' }, 'deregistered'), /memory store: closed/);
  await assert.rejects(store.putKv('k', 'v'), /memory store: closed/);
  store.renew(instance, 2);
  assert.equal(readdirSync(dir).filter((n) => n.endsWith('.tmp')).length, 0);

  assert.throws(() => new MemoryStore({ dataDir: dir, fsync: 'sometimes' as 'never' }), /fsync must be one of always, interval, never/);
  assert.throws(() => new MemoryStore({ dataDir: dir, snapshotIntervalMs: 0 }), /snapshotIntervalMs must be a positive number/);
  const unopened = new MemoryStore({ dataDir: dir });
  await assert.rejects(unopened.upsert(makeInstance('api', 'b'), 1), /memory store: not open/);
  await unopened.close();
});

test('close writes a final snapshot, so the next start replays nothing', async (t) => {
  const dir = tempDir(t);
  const { store } = await openStore(dir);
  for (let i = 0; i < 10; i++) await store.upsert(makeInstance('api', `i${i}`), 1);
  await store.close();
  const reopened = await openStore(dir, { clock: () => 1 });
  t.after(() => reopened.store.close());
  assert.deepEqual(reopened.store.stats().logRecords, 0);
  assert.equal(reopened.store.stats().lastSnapshotRevision, 10);
  assert.equal(reopened.catalog.instances.size, 10);
});

test('a second store on the same data directory is refused while the first is open', async () => {
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { createMemoryStore } = await import('./memory-store.ts');
  const { Catalog } = await import('../../core/catalog.ts');
  const dir = mkdtempSync(join(tmpdir(), 'maxine-lock-'));
  try {
    const first = createMemoryStore({ dataDir: dir });
    const catalog = new Catalog(10);
    await first.open(catalog, catalog);
    const second = createMemoryStore({ dataDir: dir });
    const other = new Catalog(10);
    await assert.rejects(second.open(other, other), /already open in this process/);
    await first.close();
    // A lock left by a process that no longer exists is taken over.
    writeFileSync(join(dir, 'maxine.lock'), '999999999\n');
    const third = createMemoryStore({ dataDir: dir });
    await third.open(other, other);
    await third.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
