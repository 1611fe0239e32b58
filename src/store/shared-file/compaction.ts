import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Catalog } from '../../core/catalog.ts';
import { isTempName, Layout } from './layout.ts';
import { LogFeed } from './feed.ts';
import { writeSnapshot, type PositionedSnapshot } from './snapshot-file.ts';

/** A temporary file this old belongs to a writer that crashed (a live one links or gives up within seconds). */
const STALE_TEMP_MS = 10 * 60_000;

/**
 * Installs a snapshot and deletes what it makes unnecessary: older
 * snapshots, the records more than `retainRecords` positions before it (the
 * margin lets a replica that is briefly behind keep reading instead of
 * resyncing; the record at the snapshot's own position always stays, so a
 * replica starting from the snapshot can check the record after it), and
 * temporary files left by crashed writers.
 *
 * Records are deleted in ascending order: append.ts relies on it to detect
 * a reused position.
 */
export async function installSnapshot(
  layout: Layout,
  snapshot: PositionedSnapshot,
  retainRecords: number,
  now: number,
): Promise<void> {
  await writeSnapshot(layout, snapshot);
  for (const position of await layout.snapshots()) {
    if (position < snapshot.position) await rm(layout.snapshotPath(position), { force: true });
  }
  const floor = snapshot.position - retainRecords;
  for (const position of await layout.records()) {
    if (position >= floor) break;
    await rm(layout.recordPath(position), { force: true });
  }
  await removeStaleTemps(layout.root, now);
  await removeStaleTemps(layout.logDir, now);
}

async function removeStaleTemps(dir: string, now: number): Promise<void> {
  for (const name of await readdir(dir)) {
    if (!isTempName(name)) continue;
    const path = join(dir, name);
    const info = await stat(path).catch(() => null);
    if (info !== null && now - info.mtimeMs > STALE_TEMP_MS) await rm(path, { force: true });
  }
}

/**
 * Compacts a shared directory from outside any replica (an operator's
 * maintenance job, or a test): reads the whole log into a scratch catalog,
 * snapshots the head and deletes the history before it as the leader would.
 * Safe while replicas run: records appended meanwhile are after the
 * snapshot, and replicas that needed deleted records resync. Resolves to
 * the snapshot's position.
 */
export async function compactDirectory(
  dir: string,
  options: { readonly retainRecords?: number; readonly clock?: () => number; readonly onWarning?: (message: string) => void } = {},
): Promise<number> {
  const layout = new Layout(dir);
  const clock = options.clock ?? Date.now;
  const catalog = new Catalog(1, clock);
  const feed = new LogFeed(layout, catalog, clock, options.onWarning ?? ((message) => process.emitWarning(message, { code: 'MAXINE_STORE' })));
  await feed.start(0);
  if (feed.rid === null) throw new Error(`shared-file store: ${dir} holds no log to compact`);
  await installSnapshot(layout, { ...catalog.snapshot(), position: feed.position, rid: feed.rid, lead: feed.lead }, options.retainRecords ?? 0, clock());
  return feed.position;
}
