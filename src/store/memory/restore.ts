import { readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Snapshot } from '../../core/changes.ts';
import type { Instance } from '../../core/instance.ts';
import {
  CORRUPT_SNAPSHOT_FILE,
  PREVIOUS_SNAPSHOT_FILE,
  SNAPSHOT_FILE,
  TMP_SNAPSHOT_FILE,
  readSnapshotFile,
  segmentName,
  segmentSeq,
} from './files.ts';
import type { SnapshotFile } from './files.ts';
import { DataError } from '../instance-record.ts';
import { parseRecord } from './format.ts';
import type { LogRecord } from './format.ts';

/** What open() needs to know about the data directory after loading it. */
export interface Restored {
  /** The state for the sink, leases that lapsed during the downtime already dropped. */
  readonly snapshot: Snapshot;
  /** Records replayed from the log (not yet covered by a snapshot). */
  readonly logRecords: number;
  /** Existing segment numbers, ascending. */
  readonly segments: readonly number[];
  /** Sequence number for the next segment. */
  readonly nextSeq: number;
  /** Whether snapshot.json exists (and is valid). */
  readonly hasSnapshotFile: boolean;
  /** First segment the snapshot restored from needs; kept while it is the fallback. */
  readonly fallbackFloor: number;
  readonly lastSnapshot: { readonly revision: number; readonly at: number } | null;
}

interface Entry {
  instance: Instance;
  renewedAt: number;
}

const keyOf = (service: string, id: string): string => `${service}\u0000${id}`;

/**
 * Loads the newest valid snapshot and replays the log segments after it.
 *
 * A damaged snapshot.json falls back to snapshot.prev.json plus the log, which
 * is kept from that snapshot on; with no usable fallback the store refuses to
 * start rather than come up with less than it had. In the log, an unreadable
 * last line of a segment is a write torn by a crash and is skipped with a
 * warning (it was never acknowledged under fsync 'always'); an unreadable line
 * followed by others, or a gap in the revisions, is damage and stops the start.
 */
export async function restore(dir: string, now: number, warn: (message: string) => void): Promise<Restored> {
  const names = await readdir(dir);
  if (names.includes(TMP_SNAPSHOT_FILE)) await rm(join(dir, TMP_SNAPSHOT_FILE), { force: true });
  const segments = names
    .map(segmentSeq)
    .filter((seq): seq is number => seq !== null)
    .sort((a, b) => a - b);

  const base = await loadBaseSnapshot(dir, names, warn);
  const instances = new Map<string, Entry>();
  const kv = new Map<string, string>();
  for (const { instance, renewedAt } of base?.file.instances ?? []) {
    instances.set(keyOf(instance.service, instance.id), { instance, renewedAt });
  }
  for (const [key, value] of base?.file.kv ?? []) kv.set(key, value);

  const snapshotRevision = base?.file.revision ?? 0;
  const firstSegment = base?.file.segment ?? 0;
  let revision = snapshotRevision;
  let logRecords = 0;

  const replay = (record: LogRecord): void => {
    switch (record.op) {
      case 'upsert':
        instances.set(keyOf(record.instance.service, record.instance.id), { instance: record.instance, renewedAt: record.renewedAt });
        break;
      case 'remove':
        instances.delete(keyOf(record.service, record.id));
        break;
      case 'kv':
        if (record.value === null) kv.delete(record.key);
        else kv.set(record.key, record.value);
        break;
      case 'lease':
        // Renewals only extend a lease; an older checkpoint never shortens one
        // set by a later registration.
        for (const [service, id, renewedAt] of record.renewals) {
          const entry = instances.get(keyOf(service, id));
          if (entry && renewedAt > entry.renewedAt) entry.renewedAt = renewedAt;
        }
        break;
    }
  };

  for (const seq of segments) {
    if (seq < firstSegment) continue;
    const file = join(dir, segmentName(seq));
    const lines = (await readFile(file, 'utf8')).split('\n');
    let last = lines.length - 1;
    while (last >= 0 && lines[last] === '') last--;
    for (let i = 0; i <= last; i++) {
      let record: LogRecord;
      try {
        record = parseRecord(lines[i] ?? '');
      } catch (err) {
        if (!(err instanceof DataError)) throw err;
        if (i === last) {
          warn(`memory store: ignored the incomplete last record of ${file} (line ${i + 1}, probably torn by a crash): ${err.message}`);
          break;
        }
        throw new Error(
          `memory store: ${file} line ${i + 1} is damaged (${err.message}) and records follow it; ` +
            `refusing to start rather than skip changes. Repair or remove that line, or move ${dir} aside to start empty.`,
        );
      }
      if (record.op !== 'lease') {
        // Records a snapshot already holds: the batch pending when it was captured.
        if (record.rev <= snapshotRevision) continue;
        if (record.rev !== revision + 1) {
          throw new Error(
            `memory store: ${file} line ${i + 1} has revision ${record.rev} where ${revision + 1} was expected; ` +
              `the log has a gap, refusing to start rather than skip changes. Move ${dir} aside to start empty.`,
          );
        }
        revision = record.rev;
      }
      replay(record);
      logRecords++;
    }
  }

  const alive: Entry[] = [];
  for (const entry of instances.values()) {
    if (!(entry.renewedAt + entry.instance.ttlMs < now)) alive.push(entry);
  }
  return {
    snapshot: { revision, instances: alive, kv: [...kv] },
    logRecords,
    segments,
    nextSeq: Math.max(segments.at(-1) ?? 0, firstSegment) + 1,
    hasSnapshotFile: base?.name === SNAPSHOT_FILE,
    fallbackFloor: firstSegment,
    lastSnapshot: base ? { revision: snapshotRevision, at: base.mtimeMs } : null,
  };
}

async function loadBaseSnapshot(
  dir: string,
  names: readonly string[],
  warn: (message: string) => void,
): Promise<{ file: SnapshotFile; name: string; mtimeMs: number } | null> {
  const load = async (name: string) => {
    const path = join(dir, name);
    try {
      return { file: await readSnapshotFile(path), name, mtimeMs: (await stat(path)).mtimeMs };
    } catch (err) {
      if (err instanceof DataError) throw new DataError(`${path} is damaged: ${err.message}`);
      throw err;
    }
  };
  const hasPrevious = names.includes(PREVIOUS_SNAPSHOT_FILE);
  const loadPrevious = async (why: string) => {
    try {
      return await load(PREVIOUS_SNAPSHOT_FILE);
    } catch (err) {
      if (!(err instanceof DataError)) throw err;
      throw new Error(`memory store: ${why}, and ${err.message}; refusing to start rather than lose data. Move ${dir} aside to start empty.`);
    }
  };

  if (names.includes(SNAPSHOT_FILE)) {
    try {
      return await load(SNAPSHOT_FILE);
    } catch (err) {
      if (!(err instanceof DataError)) throw err;
      if (!hasPrevious) {
        throw new Error(
          `memory store: ${err.message}, and there is no ${PREVIOUS_SNAPSHOT_FILE} to fall back to; ` +
            `refusing to start rather than lose data. Move ${dir} aside to start empty.`,
        );
      }
      const previous = await loadPrevious(err.message);
      // Set aside, so that the next snapshot does not rotate it into the fallback slot.
      await rename(join(dir, SNAPSHOT_FILE), join(dir, CORRUPT_SNAPSHOT_FILE));
      warn(`memory store: ${err.message}; restored from ${PREVIOUS_SNAPSHOT_FILE} and the log instead, kept the damaged file as ${CORRUPT_SNAPSHOT_FILE}`);
      return previous;
    }
  }
  if (hasPrevious) {
    const previous = await loadPrevious(`${SNAPSHOT_FILE} is missing`);
    warn(`memory store: ${SNAPSHOT_FILE} is missing (a crash while a snapshot was installed); restored from ${PREVIOUS_SNAPSHOT_FILE} and the log`);
    return previous;
  }
  return null;
}
