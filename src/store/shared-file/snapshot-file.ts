import { open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Snapshot } from '../../core/changes.ts';
import { syncDir, writeAll } from '../file-io.ts';
import { DataError, fields, parseJson, snapshotState } from '../instance-record.ts';
import { tempName, type Layout } from './layout.ts';
import { parseLead, type Lead } from './record.ts';

/** The state after one log position: what a replica needs to start reading at the next one. */
export interface PositionedSnapshot extends Snapshot {
  readonly position: number;
  /** rid of the record at `position`, which the next record names as its `prev`. */
  readonly rid: string;
  readonly lead: Lead | null;
}

const FORMAT = 1;
/** Entries serialised per write, so a large registry does not hold the event loop for long. */
const ENTRIES_PER_CHUNK = 1000;

/**
 * Streams the snapshot to a temporary file, fsyncs it and renames it into
 * place, then fsyncs the directory: the snapshot appears complete or not at
 * all, and is durable before any record it replaces is deleted.
 */
export async function writeSnapshot(layout: Layout, snapshot: PositionedSnapshot): Promise<void> {
  const tmp = join(layout.root, tempName('snapshot'));
  try {
    const handle = await open(tmp, 'wx', 0o600);
    try {
      const header = { format: FORMAT, position: snapshot.position, rid: snapshot.rid, revision: snapshot.revision, lead: snapshot.lead };
      await writeAll(handle, `${JSON.stringify(header).slice(0, -1)},"instances":[`);
      const { instances } = snapshot;
      for (let start = 0; start < instances.length; start += ENTRIES_PER_CHUNK) {
        let chunk = '';
        const end = Math.min(start + ENTRIES_PER_CHUNK, instances.length);
        for (let i = start; i < end; i++) {
          const { instance, renewedAt } = instances[i]!;
          chunk += `${i === 0 ? '' : ','}\n{"instance":${JSON.stringify(instance)},"renewedAt":${renewedAt}}`;
        }
        await writeAll(handle, chunk);
      }
      await writeAll(handle, `\n],"kv":${JSON.stringify(snapshot.kv)}}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, layout.snapshotPath(snapshot.position));
    await syncDir(layout.root);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {});
    throw err;
  }
}

/** Reads and validates the snapshot at `position`; a DataError says what is wrong with it. */
export async function readSnapshot(layout: Layout, position: number): Promise<PositionedSnapshot> {
  const o = fields(parseJson(await readFile(layout.snapshotPath(position), 'utf8')), 'snapshot');
  if (o['format'] !== FORMAT) throw new DataError(`unsupported snapshot format ${JSON.stringify(o['format'])}`);
  if (o['position'] !== position) throw new DataError(`"position" ${JSON.stringify(o['position'])} does not match the file name`);
  const revision = o['revision'];
  if (!Number.isSafeInteger(revision) || (revision as number) < 0) throw new DataError('"revision" must be an integer >= 0');
  const rid = o['rid'];
  if (typeof rid !== 'string') throw new DataError('"rid" must be a string');
  const { instances, kv } = snapshotState(o);
  return { position, rid, revision: revision as number, lead: parseLead(o['lead']), instances, kv };
}
