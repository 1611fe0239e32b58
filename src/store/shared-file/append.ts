import { randomBytes } from 'node:crypto';
import { link, open, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { syncDir, writeAll } from '../file-io.ts';
import { tempName, type Layout } from './layout.ts';

/**
 * The append is the store's only synchronisation: a compare-and-set on a
 * log position, done by the filesystem. The record is written to a private
 * temporary file, fsynced, then hard-linked to its position's name; link()
 * fails with EEXIST when the name exists, so exactly one writer gets each
 * position and the record appears complete or not at all. The directory is
 * fsynced after the link, so an acknowledged write survives a power loss
 * (about 0.6 ms per append for both fsyncs on the test machine's disk;
 * more on a network filesystem). There is no lock
 * file anyone could hold: a writer that crashes or hangs before the link has
 * taken nothing (its temporary file is ignored and later deleted by the
 * leader's compaction); one that dies after it has appended a whole record.
 *
 * Positions must never be reused, or a writer far behind could append at a
 * position compaction already deleted and believe it extended a history the
 * others have long passed. Compaction deletes records in ascending order, so
 * if our position had been deleted, its predecessor would have been deleted
 * first: after the link, the writer re-reads the predecessor's id, and a
 * predecessor that is gone or changed means the position was reused. The
 * record is then withdrawn and the write reported as of unknown outcome.
 */
export type AppendResult = 'appended' | 'taken';

/** The link succeeded at a position compaction had already deleted (the writer was far behind). */
export class PositionReusedError extends Error {
  override readonly name = 'PositionReusedError';
}

/** Record ids are 16 hex digits: the first bytes of every record file are `{"format":1,"rid":"<id>"`. */
export function newRid(): string {
  return randomBytes(8).toString('hex');
}

const RID_PREFIX = /^\{"format":\d+,"rid":"([0-9a-f]{16})"/;
const RID_PREFIX_BYTES = 48;

export async function appendRecord(
  layout: Layout,
  position: number,
  content: string,
  predecessor: { readonly position: number; readonly rid: string } | null,
): Promise<AppendResult> {
  const tmp = join(layout.logDir, tempName('append'));
  try {
    const handle = await open(tmp, 'wx', 0o600);
    try {
      await writeAll(handle, content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (!(await linkExclusively(tmp, layout.recordPath(position)))) return 'taken';
  } finally {
    await rm(tmp, { force: true }).catch(() => {});
  }
  await syncDir(layout.logDir);
  if (predecessor !== null && (await readRid(layout.recordPath(predecessor.position))) !== predecessor.rid) {
    await rm(layout.recordPath(position), { force: true }).catch(() => {});
    throw new PositionReusedError(
      `log position ${position} had already been used and compacted away (this replica was far behind); the record was withdrawn`,
    );
  }
  return 'appended';
}

async function linkExclusively(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Over NFS a retransmitted LINK can answer EEXIST for a link that did
    // happen; then the temporary file has a second name.
    return (await stat(from)).nlink >= 2;
  }
}

/** The id of the record at `path`, from its first bytes; null when it is gone or not a record. */
export async function readRid(path: string): Promise<string | null> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const buffer = Buffer.alloc(RID_PREFIX_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, RID_PREFIX_BYTES, 0);
    return RID_PREFIX.exec(buffer.toString('utf8', 0, bytesRead))?.[1] ?? null;
  } finally {
    await handle.close();
  }
}
