import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { syncDir, writeAll } from '../file-io.ts';
import { segmentName } from './files.ts';
import { StoreUnavailableError } from '../store.ts';

export type FsyncPolicy = 'always' | 'interval' | 'never';

export interface Segment {
  readonly seq: number;
  readonly path: string;
  readonly handle: FileHandle;
  /** Written since the last fdatasync. */
  dirty: boolean;
  /** A write or sync on it failed: never sync it again, only close it. */
  broken: boolean;
  closed: boolean;
}

/** Creates an empty segment; the directory entry is made durable unless fsync is 'never'. */
export async function createSegment(dir: string, seq: number, policy: FsyncPolicy): Promise<Segment> {
  const path = join(dir, segmentName(seq));
  const handle = await open(path, 'ax', 0o600);
  try {
    if (policy !== 'never') await syncDir(dir);
  } catch (err) {
    await handle.close();
    throw err;
  }
  return { seq, path, handle, dirty: false, broken: false, closed: false };
}

/** Records that go to disk in one write, and the promise their writers await. */
class Batch {
  text = '';
  records = 0;
  readonly done: Promise<void>;
  resolve!: () => void;
  reject!: (err: Error) => void;

  constructor() {
    this.done = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // Nobody awaits a batch that holds only a lease checkpoint; its failure
    // is reported through the writer's failure, not as an unhandled rejection.
    this.done.catch(() => {});
  }
}

/**
 * Group commit for the log. Appends join the pending batch; one pump writes
 * batches one at a time with a single write each (fdatasync too under
 * 'always'), so records produced while a write is in flight join the next
 * batch, and batches complete in append order. The pump also owns every other
 * operation on segment files (interval syncs, closing segments rotated away),
 * so no two of them ever race on one descriptor.
 *
 * A failed write or sync puts the writer in a failed state: the batch and the
 * one pending behind it are rejected, and the store refuses writes until a
 * snapshot has made the durable state whole again (after a torn write, the
 * segment cannot be appended to and its records cannot be trusted).
 */
export class LogWriter {
  failure: Error | null = null;
  /** Batches written: with group commit, far fewer than records. */
  writes = 0;
  private segment: Segment;
  private readonly retired: Segment[] = [];
  private pending = new Batch();
  private syncDue = false;
  private running: Promise<void> | null = null;

  constructor(
    segment: Segment,
    private readonly policy: FsyncPolicy,
    private readonly onFailure: (failure: Error) => void,
    private readonly warn: (message: string) => void,
  ) {
    this.segment = segment;
  }

  /** `line` must end with '\n'. Resolves when it is durable under the fsync policy. */
  append(line: string): Promise<void> {
    this.pending.text += line;
    this.pending.records++;
    this.schedule();
    return this.pending.done;
  }

  /**
   * Directs every record not yet written to `next`. The current segment is
   * closed once its in-flight write (if any) has finished.
   */
  rotate(next: Segment): void {
    this.retired.push(this.segment);
    this.segment = next;
    this.schedule();
  }

  /** For the 'interval' policy: fdatasync the current segment if it was written to. */
  requestSync(): void {
    if (!this.segment.dirty) return;
    this.syncDue = true;
    this.schedule();
  }

  /** Called once a snapshot taken after the failure has been installed. */
  recovered(): void {
    this.failure = null;
  }

  /** Writes what is pending, fdatasyncs (whatever the policy) and closes every segment. */
  async close(): Promise<void> {
    while (this.running) await this.running;
    await this.retire(this.segment, true);
  }

  private schedule(): void {
    this.running ??= this.pump();
  }

  private async pump(): Promise<void> {
    // Let the rest of the current synchronous burst of appends join the first batch.
    await Promise.resolve();
    try {
      for (;;) {
        const old = this.retired.shift();
        if (old) await this.retire(old, false);
        else if (this.pending.records > 0) await this.writeBatch();
        else if (this.syncDue) {
          this.syncDue = false;
          await this.sync(this.segment);
        } else break;
      }
    } finally {
      this.running = null;
    }
  }

  private async writeBatch(): Promise<void> {
    const batch = this.pending;
    this.pending = new Batch();
    const segment = this.segment;
    try {
      await writeAll(segment.handle, batch.text);
      this.writes++;
      if (this.policy === 'always') await segment.handle.datasync();
      else segment.dirty = true;
      batch.resolve();
    } catch (err) {
      batch.reject(this.fail(segment, `appending to ${segment.path}`, err));
    }
  }

  private async sync(segment: Segment): Promise<void> {
    if (segment.broken || !segment.dirty) return;
    try {
      await segment.handle.datasync();
      segment.dirty = false;
    } catch (err) {
      this.fail(segment, `fdatasync of ${segment.path}`, err);
    }
  }

  private async retire(segment: Segment, alwaysSync: boolean): Promise<void> {
    if (segment.closed) return;
    if (alwaysSync || this.policy !== 'never') await this.sync(segment);
    segment.closed = true;
    try {
      await segment.handle.close();
    } catch (err) {
      // Only reached for a segment that is broken already or fully synced.
      this.warn(`memory store: closing ${segment.path} failed: ${(err as Error).message}`);
    }
  }

  private fail(segment: Segment, what: string, err: unknown): Error {
    const failure = new StoreUnavailableError(`memory store: ${what} failed: ${(err as Error).message}`, { cause: err });
    segment.broken = true;
    this.failure = failure;
    // Records waiting behind the failed batch would follow a torn write.
    const pending = this.pending;
    this.pending = new Batch();
    if (pending.records > 0) pending.reject(failure);
    // Close it now: its descriptor must not outlive the failure (the number
    // could be reused by the next file opened).
    if (segment === this.segment) this.retired.push(segment);
    this.onFailure(failure);
    return failure;
  }
}
