import { open, readFile } from 'node:fs/promises';
import type { Snapshot } from '../../core/changes.ts';
import { writeAll } from '../file-io.ts';
import { DataError, fields, parseJson, snapshotState } from '../instance-record.ts';

/**
 * Files in the data directory:
 *   snapshot.json          the newest complete snapshot
 *   snapshot.prev.json     the one before it, the fallback if snapshot.json is damaged
 *   snapshot.json.tmp      a snapshot being written (deleted at open)
 *   snapshot.json.corrupt  a damaged snapshot.json set aside at open, for inspection
 *   log-NNNNNNNN.jsonl     log segments, one JSON record per line, in sequence order
 */
export const SNAPSHOT_FILE = 'snapshot.json';
export const PREVIOUS_SNAPSHOT_FILE = 'snapshot.prev.json';
export const TMP_SNAPSHOT_FILE = 'snapshot.json.tmp';
export const CORRUPT_SNAPSHOT_FILE = 'snapshot.json.corrupt';

const SNAPSHOT_FORMAT = 1;

export function segmentName(seq: number): string {
  return `log-${String(seq).padStart(8, '0')}.jsonl`;
}

export function segmentSeq(name: string): number | null {
  const m = /^log-(\d+)\.jsonl$/.exec(name);
  return m ? Number(m[1]) : null;
}

/**
 * Instances per write while streaming a snapshot: each chunk is serialised
 * synchronously (about 1-3 ms for 1000 instances), then the event loop gets
 * control back while the chunk is written.
 */
const ENTRIES_PER_CHUNK = 1000;

/**
 * Writes `view` as JSON with one instance entry per line, then fsyncs. The
 * `segment` field names the first log segment that may hold records newer
 * than the snapshot: replay starts there.
 */
export async function writeSnapshotFile(path: string, view: Snapshot, segment: number): Promise<void> {
  const handle = await open(path, 'w', 0o600);
  try {
    await writeAll(handle, `{"format":${SNAPSHOT_FORMAT},"revision":${view.revision},"segment":${segment},"instances":[`);
    for (let start = 0; start < view.instances.length; start += ENTRIES_PER_CHUNK) {
      let chunk = '';
      for (const { instance, renewedAt } of view.instances.slice(start, start + ENTRIES_PER_CHUNK)) {
        chunk += `${chunk === '' && start === 0 ? '' : ','}\n{"instance":${JSON.stringify(instance)},"renewedAt":${renewedAt}}`;
      }
      await writeAll(handle, chunk);
    }
    await writeAll(handle, `\n],"kv":${JSON.stringify(view.kv)}}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export interface SnapshotFile {
  readonly revision: number;
  readonly segment: number;
  readonly instances: Snapshot['instances'];
  readonly kv: Snapshot['kv'];
}

/** Reads and validates a snapshot; a DataError says what is wrong with it. */
export async function readSnapshotFile(path: string): Promise<SnapshotFile> {
  const o = fields(parseJson(await readFile(path, 'utf8')), 'snapshot');
  if (o['format'] !== SNAPSHOT_FORMAT) throw new DataError(`unsupported snapshot format ${JSON.stringify(o['format'])}`);
  const revision = o['revision'];
  const segment = o['segment'];
  if (!Number.isSafeInteger(revision) || (revision as number) < 0) throw new DataError('"revision" must be an integer >= 0');
  if (!Number.isSafeInteger(segment) || (segment as number) < 0) throw new DataError('"segment" must be an integer >= 0');
  const { instances, kv } = snapshotState(o);
  return { revision: revision as number, segment: segment as number, instances, kv };
}
