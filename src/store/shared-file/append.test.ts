import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { appendRecord, newRid, PositionReusedError, readRid } from './append.ts';
import { Layout } from './layout.ts';
import { encodeRecord } from './record.ts';

async function emptyLog(t: TestContext): Promise<Layout> {
  const dir = await mkdtemp(join(tmpdir(), 'maxine-shared-file-append-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const layout = new Layout(dir);
  await mkdir(layout.logDir);
  return layout;
}

function record(rid: string, prev: string | null): string {
  return encodeRecord({ rid, prev, base: 0, lead: null, writer: 'test', at: 0, entries: [] });
}

/** Appends records 0..count-1, chained; returns their ids. */
async function chain(layout: Layout, count: number): Promise<string[]> {
  const rids: string[] = [];
  for (let position = 0; position < count; position++) {
    const rid = newRid();
    const predecessor = position === 0 ? null : { position: position - 1, rid: rids[position - 1]! };
    assert.equal(await appendRecord(layout, position, record(rid, predecessor?.rid ?? null), predecessor), 'appended');
    rids.push(rid);
  }
  return rids;
}

test('a position can be taken once; the loser leaves no temporary file behind', async (t) => {
  const layout = await emptyLog(t);
  const rids = await chain(layout, 3);
  const again = await appendRecord(layout, 2, record(newRid(), rids[1]!), { position: 1, rid: rids[1]! });
  assert.equal(again, 'taken');
  assert.equal(await readRid(layout.recordPath(2)), rids[2]);
  assert.deepEqual((await readdir(layout.logDir)).sort(), ['000000000000.json', '000000000001.json', '000000000002.json']);
});

test('racing writers: exactly one wins each position', async (t) => {
  const layout = await emptyLog(t);
  const [genesis] = await chain(layout, 1);
  const results = await Promise.all(
    Array.from({ length: 20 }, () => appendRecord(layout, 1, record(newRid(), genesis!), { position: 0, rid: genesis! })),
  );
  assert.equal(results.filter((r) => r === 'appended').length, 1);
});

test('appending at a position that compaction deleted is detected and the record withdrawn', async (t) => {
  const layout = await emptyLog(t);
  const rids = await chain(layout, 4);
  // Compaction with a snapshot at 3 deletes 0..2, in ascending order.
  for (const position of [0, 1, 2]) await rm(layout.recordPath(position));
  // A writer that had read up to position 1 and was paused since: its link at 2 succeeds...
  await assert.rejects(appendRecord(layout, 2, record(newRid(), rids[1]!), { position: 1, rid: rids[1]! }), PositionReusedError);
  // ...but it notices and takes the record back.
  assert.equal(await readRid(layout.recordPath(2)), null);

  // The same when another paused writer had already put a different record at its predecessor's position.
  await appendRecord(layout, 1, record(newRid(), rids[0]!), null);
  await assert.rejects(appendRecord(layout, 2, record(newRid(), rids[1]!), { position: 1, rid: rids[1]! }), PositionReusedError);
});
