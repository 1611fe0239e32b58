import { readFile } from 'node:fs/promises';
import { DataError } from '../instance-record.ts';
import type { FeedSink } from '../store.ts';
import type { Layout } from './layout.ts';
import { parseRecord, type Lead, type LogRecord } from './record.ts';
import { readSnapshot } from './snapshot-file.ts';

/** A missing next record is usually just "nothing new"; whether compaction deleted it is checked at most this often. */
const GAP_PROBE_MS = 1000;

/**
 * Follows the log into one sink: reads the record after the current
 * position, checks that it continues the history this replica holds, applies
 * it, and repeats until the next position is empty. Also where a replica
 * starts (resuming a catalog it already has, or from a snapshot) and resyncs
 * when the records it needs were compacted away. Not reentrant: the store
 * runs every call on one queue.
 */
export class LogFeed {
  /** Position of the last record applied; -1 before the genesis record. */
  position = -1;
  /** rid of that record (null before genesis). */
  rid: string | null = null;
  /** Revision after that record. */
  revision = 0;
  lead: Lead | null = null;
  /** Newest snapshot position seen (-1: none); the leader compacts when the log grows past it. */
  snapshotPosition = -1;

  /** The sink's revision: a resumed catalog already holds the changes up to here. */
  private delivered = 0;
  private lastGapProbe = 0;

  constructor(
    private readonly layout: Layout,
    private readonly sink: FeedSink,
    private readonly clock: () => number,
    private readonly warn: (message: string) => void,
  ) {}

  /**
   * Brings the sink to the head of the log: resumes after `sourceRevision`
   * when a record still starts at or before it, otherwise resets the sink
   * from the newest snapshot.
   */
  async start(sourceRevision: number): Promise<void> {
    if (sourceRevision > 0 && (await this.resumeAt(sourceRevision))) {
      await this.catchUp();
      if (this.revision >= sourceRevision) return;
      this.warn(
        `shared-file store: the catalog is at revision ${sourceRevision} but the log in ${this.layout.root} only reaches ${this.revision}; resetting from the log`,
      );
    }
    await this.resync();
    await this.catchUp();
  }

  /**
   * Applies every record after the current position. Throws when the log
   * cannot be read. `verify` checks the directory even if it was checked
   * less than GAP_PROBE_MS ago (after a failure, to notice recovery or not).
   */
  async catchUp(verify = false): Promise<void> {
    for (;;) {
      const next = this.position + 1;
      const record = await this.read(next);
      if (record === null) {
        if (await this.compactedPast(next, verify)) {
          await this.resync();
          continue;
        }
        return;
      }
      const problem = typeof record === 'string' ? record : this.mismatch(record);
      if (problem === null && typeof record !== 'string') {
        this.advance(record, false);
      } else if (await this.compactedPast(next, true)) {
        await this.resync();
      } else {
        throw new DataError(`shared-file store: log record ${this.layout.recordPath(next)} ${problem}`);
      }
    }
  }

  /** Applies a record this replica just appended at the next position (its renewals are already in the catalog). */
  applyOwn(record: LogRecord): void {
    this.advance(record, true);
  }

  /** Resets the sink from the newest snapshot (the empty state before genesis when there is none). */
  async resync(): Promise<void> {
    for (;;) {
      const newest = (await this.layout.snapshots()).at(-1);
      if (newest === undefined) {
        this.sink.reset({ revision: 0, instances: [], kv: [] });
        this.moveTo(-1, null, 0, null);
        return;
      }
      let snapshot;
      try {
        snapshot = await readSnapshot(this.layout, newest);
      } catch (err) {
        // Replaced by a newer one between listing and reading.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        if (err instanceof DataError) throw new DataError(`shared-file store: snapshot ${this.layout.snapshotPath(newest)}: ${err.message}`);
        throw err;
      }
      this.sink.reset(snapshot);
      this.moveTo(snapshot.position, snapshot.rid, snapshot.revision, snapshot.lead);
      this.snapshotPosition = Math.max(this.snapshotPosition, newest);
      return;
    }
  }

  /** The record at `position`; null when absent; a string saying why when it cannot be used. */
  private async read(position: number): Promise<LogRecord | string | null> {
    let text: string;
    try {
      text = await readFile(this.layout.recordPath(position), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    try {
      return parseRecord(text);
    } catch (err) {
      if (err instanceof DataError) return `is not a valid record: ${err.message}`;
      throw err;
    }
  }

  /** Why `record` cannot follow the history held here, or null when it does. */
  private mismatch(record: LogRecord): string | null {
    if (record.prev !== this.rid) return `follows record ${record.prev}, not ${this.rid}`;
    if (record.base !== this.revision) return `starts at revision ${record.base}, not ${this.revision}`;
    if (!sameLead(record.lead, this.lead)) return `starts with leadership ${JSON.stringify(record.lead)}, not ${JSON.stringify(this.lead)}`;
    let revision = record.base;
    for (const entry of record.entries) {
      if (entry.op === 'upsert' || entry.op === 'remove' || entry.op === 'kv') {
        if (entry.rev !== ++revision) return `has revision ${entry.rev} where ${revision} was due`;
      }
    }
    return null;
  }

  /**
   * True when a snapshot at or after `position` exists, i.e. the record
   * there was compacted away (or replaced): the caller must resync. A
   * missing record is normal at the head, so that case probes the
   * directory at most every GAP_PROBE_MS; the probe also detects a shared
   * directory that is gone, which a missing record alone cannot.
   */
  private async compactedPast(position: number, always: boolean): Promise<boolean> {
    const now = this.clock();
    if (!always && now - this.lastGapProbe < GAP_PROBE_MS) return false;
    const newest = (await this.layout.snapshots()).at(-1) ?? -1;
    this.lastGapProbe = now;
    this.snapshotPosition = Math.max(this.snapshotPosition, newest);
    return newest >= position;
  }

  /** Resumes a sink already at `revision`: starts at the last record whose base is at or before it. */
  private async resumeAt(revision: number): Promise<boolean> {
    const positions = await this.layout.records();
    if (positions.length === 0) return false;
    // Binary search; `start` is always the record at positions[low].
    let start = await this.usable(positions[0]!);
    if (start === null || start.base > revision) return false;
    let low = 0;
    let high = positions.length - 1;
    while (low < high) {
      const mid = Math.ceil((low + high) / 2);
      const candidate = await this.usable(positions[mid]!);
      if (candidate !== null && candidate.base <= revision) {
        low = mid;
        start = candidate;
      } else {
        high = mid - 1;
      }
    }
    this.moveTo(positions[low]! - 1, start.prev, start.base, start.lead);
    this.delivered = revision;
    return true;
  }

  private async usable(position: number): Promise<LogRecord | null> {
    const record = await this.read(position);
    return typeof record === 'string' ? null : record;
  }

  private moveTo(position: number, rid: string | null, revision: number, lead: Lead | null): void {
    this.position = position;
    this.rid = rid;
    this.revision = revision;
    this.lead = lead;
    this.delivered = revision;
  }

  private advance(record: LogRecord, own: boolean): void {
    const { sink } = this;
    for (const entry of record.entries) {
      switch (entry.op) {
        case 'upsert':
          this.revision = entry.rev;
          if (entry.rev > this.delivered) {
            this.delivered = entry.rev;
            sink.apply({ kind: 'upsert', revision: entry.rev, instance: entry.instance, renewedAt: entry.renewedAt });
          }
          break;
        case 'remove':
          this.revision = entry.rev;
          if (entry.rev > this.delivered) {
            this.delivered = entry.rev;
            sink.apply({ kind: 'remove', revision: entry.rev, key: { service: entry.service, id: entry.id }, reason: entry.reason });
          }
          break;
        case 'kv':
          this.revision = entry.rev;
          if (entry.rev > this.delivered) {
            this.delivered = entry.rev;
            sink.apply({ kind: 'kv', revision: entry.rev, key: entry.key, value: entry.value });
          }
          break;
        case 'renew':
          // Renewals older than a resumed catalog's state would move its deadlines back.
          if (!own && this.revision >= this.delivered) {
            for (const [service, id, renewedAt] of entry.leases) sink.renew({ service, id }, renewedAt);
          }
          break;
        case 'lead':
          this.lead = { holder: entry.holder, token: entry.token, until: entry.until };
          break;
      }
    }
    this.position++;
    this.rid = record.rid;
  }
}

function sameLead(a: Lead | null, b: Lead | null): boolean {
  return a === b || (a !== null && b !== null && a.holder === b.holder && a.token === b.token && a.until === b.until);
}
