import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { test } from 'node:test';
import { makeInstance, openStore, tempDir } from './testing.ts';

/**
 * Not a benchmark (nothing is asserted about time): makes sure 100,000
 * instances go through a snapshot and a restart, and prints how long the
 * restore took and how long the snapshot blocked the event loop at most.
 */
test('100,000 instances survive a snapshot and a restart', async (t) => {
  const dir = tempDir(t);
  const { store, catalog } = await openStore(dir, { fsync: 'never', snapshotEveryRecords: 1_000_000 });
  const total = 100_000;
  for (let start = 0; start < total; start += 10_000) {
    await Promise.all(
      Array.from({ length: 10_000 }, (_, i) =>
        store.upsert(makeInstance(`service-${(start + i) % 500}`, `instance-${start + i}`, { metadata: { team: 'core', n: String(i) } }), 1),
      ),
    );
  }

  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  let started = performance.now();
  await store.snapshotNow();
  const snapshotMs = performance.now() - started;
  delay.disable();
  const size = statSync(join(dir, 'snapshot.json')).size;
  const before = catalog.state();
  await store.close();

  started = performance.now();
  const reopened = await openStore(dir, { clock: () => 1 });
  const restoreMs = performance.now() - started;
  t.after(() => reopened.store.close());

  console.log(
    `100k instances: snapshot ${(size / 1e6).toFixed(1)} MB written in ${snapshotMs.toFixed(0)} ms ` +
      `(longest event-loop block ${(delay.max / 1e6).toFixed(1)} ms), restored in ${restoreMs.toFixed(0)} ms`,
  );
  assert.equal(reopened.catalog.instances.size, total);
  assert.deepEqual(reopened.catalog.state(), before);
});
