import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { RemoveReason } from '../../core/changes.ts';
import type { Instance, InstanceKey } from '../../core/instance.ts';
import {
  REACHABLE,
  FencedError,
  StoreUnavailableError,
  type FeedSink,
  type LeadershipState,
  type RegistryStore,
  type StateSource,
  type StoreHealth,
} from '../store.ts';
import { syncDir } from '../file-io.ts';
import { PREVIOUS_SNAPSHOT_FILE, SNAPSHOT_FILE, TMP_SNAPSHOT_FILE, segmentName, writeSnapshotFile } from './files.ts';
import { stampedInstance } from '../instance-record.ts';
import { kvLine, leaseLine, removeLine, upsertLine } from './format.ts';
import { LogWriter, createSegment } from './log-writer.ts';
import type { FsyncPolicy } from './log-writer.ts';
import { restore } from './restore.ts';
import { lockDataDir } from './dir-lock.ts';
import { argumentChecks } from '../argument-checks.ts';

const { positive, requireFinite, validated, kvArguments } = argumentChecks('memory store');

export type { FsyncPolicy } from './log-writer.ts';

export interface MemoryStoreOptions {
  /** Created (mode 0700) if missing. One store process per directory: a lock file refuses a second one. */
  readonly dataDir: string;
  /**
   * When a write is acknowledged: 'always' after fdatasync of its batch;
   * 'interval' (default) once written, fdatasync every fsyncIntervalMs, so an
   * OS crash or power loss can lose that last interval; 'never' leaves
   * flushing the log to the OS. Snapshots are fsynced under every policy,
   * because installing one deletes log segments.
   */
  readonly fsync?: FsyncPolicy;
  readonly fsyncIntervalMs?: number;
  /** Snapshot this often when anything was logged since the last one (default 30 s). */
  readonly snapshotIntervalMs?: number;
  /** Also snapshot once the log holds this many records (default 50,000). */
  readonly snapshotEveryRecords?: number;
  /** How often renewals are written to the log, in one record (default 2 s). */
  readonly leaseCheckpointMs?: number;
  /** After a failed log write, how often a repairing snapshot is attempted (default 1 s). */
  readonly recoveryRetryMs?: number;
  /** Epoch ms; used to drop leases that lapsed while the store was down. */
  readonly clock?: () => number;
  /** This process's name in leadership views (it is always the leader of its own data). */
  readonly instanceId?: string;
  readonly onWarning?: (message: string) => void;
}

export interface MemoryStoreStats {
  readonly revision: number;
  /** Records in the log that the newest snapshot does not cover yet. */
  readonly logRecords: number;
  readonly lastSnapshotRevision: number;
  /** Epoch ms of the newest snapshot, null if there is none. */
  readonly lastSnapshotAt: number | null;
  /** Log writes (batches) since open; records / logWrites is the group-commit factor. */
  readonly logWrites: number;
  /** Why writes are being refused, or null when the log is healthy. */
  readonly writeError: string | null;
}

interface Live {
  readonly sink: FeedSink;
  readonly source: StateSource;
  readonly writer: LogWriter;
}

/**
 * The embedded store (kind 'local'). The replica's catalog holds the state;
 * this store assigns revisions and makes changes durable in the data
 * directory: an append-only log in segments plus periodic snapshots.
 *
 * Ordering and durability: a write's revision is assigned, its record queued
 * for the log and the change applied to the sink all in the same synchronous
 * step, so the sink sees revisions in strictly increasing order however many
 * writes are in flight, and later writes see earlier ones in the catalog
 * (e.g. a remove right after an upsert). The returned promise resolves only
 * once the record is durable (by the fsync policy), so an acknowledged write
 * is durable; a change can be visible to readers slightly before it is.
 * When the log write fails, the change stays in the catalog but the writer's
 * promise rejects (the client is told it failed; the outcome is unknown, as
 * with any failed request), every following write is refused with the same
 * message, and a snapshot taken after the failure, which does hold the
 * change, repairs the durable state and lets writes through again.
 *
 * Heartbeats never write to disk: renew() only notes the renewal in memory.
 * A lease checkpoint every leaseCheckpointMs writes all renewals noted since
 * the previous one as one record, so that after a restart an instance that
 * kept heartbeating is not taken for lapsed.
 */
export class MemoryStore implements RegistryStore {
  readonly kind = 'local' as const;
  readonly leasesInCatalog = true;

  private readonly dir: string;
  private readonly fsync: FsyncPolicy;
  private readonly fsyncIntervalMs: number;
  private readonly snapshotIntervalMs: number;
  private readonly snapshotEveryRecords: number;
  private readonly leaseCheckpointMs: number;
  private readonly recoveryRetryMs: number;
  private readonly clock: () => number;
  private readonly instanceId: string;
  private readonly warn: (message: string) => void;

  private unlock: (() => Promise<void>) | undefined;
  private state: 'new' | 'opening' | 'open' | 'closing' | 'closed' = 'new';
  private live: Live | null = null;
  private revision = 0;
  private logRecords = 0;
  private lastSnapshot: { revision: number; at: number } | null = null;
  /** Renewals since the last checkpoint. Keyed by the instance object: no key string per heartbeat. */
  private renewals = new Map<Instance, number>();
  private segments: number[] = [];
  private nextSeq = 1;
  private hasSnapshotFile = false;
  /** First segment that the fallback snapshot (snapshot.prev.json after the next install) needs. */
  private fallbackFloor = 0;
  private openRun: Promise<void> | null = null;
  private snapshotRun: Promise<void> | null = null;
  private closeRun: Promise<void> | null = null;
  private timers: NodeJS.Timeout[] = [];
  private recoveryTimer: NodeJS.Timeout | null = null;

  constructor(options: MemoryStoreOptions) {
    if (typeof options.dataDir !== 'string' || options.dataDir === '') throw new TypeError('memory store: dataDir is required');
    this.dir = options.dataDir;
    this.fsync = options.fsync ?? 'interval';
    if (!FSYNC_POLICIES.includes(this.fsync)) throw new TypeError(`memory store: fsync must be one of ${FSYNC_POLICIES.join(', ')}`);
    this.fsyncIntervalMs = positive('fsyncIntervalMs', options.fsyncIntervalMs ?? 1000);
    this.snapshotIntervalMs = positive('snapshotIntervalMs', options.snapshotIntervalMs ?? 30_000);
    this.snapshotEveryRecords = positive('snapshotEveryRecords', options.snapshotEveryRecords ?? 50_000);
    this.leaseCheckpointMs = positive('leaseCheckpointMs', options.leaseCheckpointMs ?? 2000);
    this.recoveryRetryMs = positive('recoveryRetryMs', options.recoveryRetryMs ?? 1000);
    this.clock = options.clock ?? Date.now;
    this.instanceId = options.instanceId ?? 'local';
    this.warn = options.onWarning ?? ((message) => process.emitWarning(message, { code: 'MAXINE_STORE' }));
  }

  open(sink: FeedSink, source: StateSource): Promise<void> {
    if (this.state !== 'new') return Promise.reject(new Error('memory store: open() can only be called once'));
    this.state = 'opening';
    this.openRun = this.load(sink, source);
    return this.openRun;
  }

  private async load(sink: FeedSink, source: StateSource): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      this.unlock = await lockDataDir(this.dir);
      const restored = await restore(this.dir, this.clock(), this.warn);
      const segment = await createSegment(this.dir, restored.nextSeq, this.fsync);
      this.live = {
        sink,
        source,
        writer: new LogWriter(segment, this.fsync, (failure) => this.onWriteFailure(failure), this.warn),
      };
      this.revision = restored.snapshot.revision;
      this.logRecords = restored.logRecords;
      this.segments = [...restored.segments, segment.seq];
      this.nextSeq = segment.seq + 1;
      this.hasSnapshotFile = restored.hasSnapshotFile;
      this.fallbackFloor = restored.fallbackFloor;
      this.lastSnapshot = restored.lastSnapshot;
      sink.reset(restored.snapshot);
    } catch (err) {
      this.state = 'closed';
      await this.live?.writer.close().catch(() => {});
      await this.unlock?.();
      throw err;
    }
    this.state = 'open';
    this.every(this.leaseCheckpointMs, () => this.checkpointLeases());
    this.every(this.snapshotIntervalMs, () => {
      if (this.logRecords > 0) this.snapshotInBackground();
    });
    if (this.fsync === 'interval') this.every(this.fsyncIntervalMs, () => this.live?.writer.requestSync());
  }

  async upsert(instance: Instance, renewedAt: number): Promise<Instance> {
    const { sink, writer } = this.writable();
    requireFinite(renewedAt, 'renewedAt');
    const rev = this.revision + 1;
    const stamped = validated(() => stampedInstance(instance, instance.createRevision || rev, rev));
    this.revision = rev;
    const durable = this.append(writer, upsertLine(rev, stamped, renewedAt));
    sink.apply({ kind: 'upsert', revision: rev, instance: stamped, renewedAt });
    await durable;
    return stamped;
  }

  renew(instance: Instance, renewedAt: number): void {
    if (this.state !== 'open') return;
    requireFinite(renewedAt, 'renewedAt');
    this.renewals.set(instance, renewedAt);
  }

  /**
   * The catalog is the state and is read and written in this synchronous
   * step, so the compare and the write are atomic without a lock. Logged as
   * an ordinary upsert: the line carries `renewedAt`, so a replay restores
   * the same lease, not a renewed one.
   */
  async update(instance: Instance, renewedAt: number, fencingToken: number | null): Promise<Instance | null> {
    if (fencingToken !== null) this.checkToken(fencingToken);
    const { sink, source, writer } = this.writable();
    requireFinite(renewedAt, 'renewedAt');
    const stored = source.get(instance);
    if (stored === undefined || stored.modifyRevision !== instance.modifyRevision) return null;
    const rev = this.revision + 1;
    const stamped = validated(() => stampedInstance(instance, stored.createRevision, rev));
    this.revision = rev;
    const durable = this.append(writer, upsertLine(rev, stamped, renewedAt));
    sink.apply({ kind: 'upsert', revision: rev, instance: stamped, renewedAt });
    await durable;
    return stamped;
  }

  remove(key: InstanceKey, reason: 'deregistered'): Promise<number | null> {
    return this.removeFor(key, reason);
  }

  async expire(now: number, fencingToken: number): Promise<number> {
    this.checkToken(fencingToken);
    const { source } = this.writable();
    const removals = source.takeExpired(now).map((entry) =>
      this.removeFor(entry.instance, 'expired').then(
        (revision) => (revision === null ? 0 : 1),
        (error: unknown) => {
          source.retryExpiry(entry);
          throw error;
        },
      ),
    );
    const outcomes = await Promise.allSettled(removals);
    let removed = 0;
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected') throw outcome.reason;
      removed += outcome.value;
    }
    return removed;
  }

  async evict(key: InstanceKey, fencingToken: number): Promise<number | null> {
    this.checkToken(fencingToken);
    return await this.removeFor(key, 'evicted');
  }

  /** One process owns its data directory (the lock), so it leads for good, in one term. */
  leadership(): LeadershipState {
    return { isLeader: true, leaderId: this.instanceId, fencingToken: LOCAL_TERM, observedAt: this.clock() };
  }

  health(): StoreHealth {
    const failure = this.live?.writer.failure;
    return failure ? { reachable: false, error: failure.message } : REACHABLE;
  }

  private checkToken(fencingToken: number): void {
    if (fencingToken !== LOCAL_TERM) throw new FencedError(`memory store: fencing token ${fencingToken} is not the current term (${LOCAL_TERM})`);
  }

  private async removeFor(key: InstanceKey, reason: RemoveReason): Promise<number | null> {
    const { sink, source, writer } = this.writable();
    if (source.get(key) === undefined) return null;
    const rev = ++this.revision;
    const durable = this.append(writer, removeLine(rev, key, reason));
    sink.apply({ kind: 'remove', revision: rev, key: { service: key.service, id: key.id }, reason });
    await durable;
    return rev;
  }

  async putKv(key: string, value: string | null): Promise<number> {
    const { sink, writer } = this.writable();
    kvArguments(key, value, null);
    const rev = ++this.revision;
    const durable = this.append(writer, kvLine(rev, key, value));
    sink.apply({ kind: 'kv', revision: rev, key, value });
    await durable;
    return rev;
  }

  /** This process is the only writer: the check and the write happen in one synchronous step. */
  async putKvIf(key: string, expected: string | null, value: string | null): Promise<number | null> {
    const { source } = this.writable();
    kvArguments(key, value, expected);
    if ((source.kvGet(key) ?? null) !== expected) return null;
    return this.putKv(key, value);
  }

  /** Takes a snapshot now (or joins the one in progress); rejects if it fails. */
  snapshotNow(): Promise<void> {
    if (this.state !== 'open') return Promise.reject(new Error('memory store: not open'));
    return this.runSnapshot();
  }

  stats(): MemoryStoreStats {
    const writer = this.live?.writer;
    return {
      revision: this.revision,
      logRecords: this.logRecords,
      lastSnapshotRevision: this.lastSnapshot?.revision ?? 0,
      lastSnapshotAt: this.lastSnapshot?.at ?? null,
      logWrites: writer?.writes ?? 0,
      writeError: writer?.failure?.message ?? null,
    };
  }

  /**
   * Stops the timers, writes a last lease checkpoint and a final snapshot (so
   * the next start has nothing to replay), flushes and fsyncs the log and
   * closes it. Rejects only if changes may not be durable.
   */
  close(): Promise<void> {
    this.closeRun ??= this.shutdown();
    return this.closeRun;
  }

  private async shutdown(): Promise<void> {
    await this.openRun?.catch(() => {});
    const live = this.live;
    if (!live || this.state !== 'open') {
      this.state = 'closed';
      return;
    }
    this.state = 'closing';
    for (const timer of this.timers) clearInterval(timer);
    if (this.recoveryTimer) clearTimeout(this.recoveryTimer);
    await this.snapshotRun?.catch(() => {});
    this.checkpointLeases();
    if (this.logRecords > 0 || live.writer.failure) {
      try {
        await this.runSnapshot();
      } catch (err) {
        this.warn(`${(err as Error).message}; the log still holds every change`);
      }
    }
    await live.writer.close();
    await this.unlock?.();
    this.state = 'closed';
    const failure = live.writer.failure;
    if (failure) throw new Error(`memory store: closed with changes that may not be durable: ${failure.message}`, { cause: failure });
  }

  private writable(): Live {
    if (this.state === 'new' || this.state === 'opening') throw new Error('memory store: not open');
    if (this.state !== 'open' || !this.live) throw new StoreUnavailableError('memory store: closed; the write was not accepted');
    const failure = this.live.writer.failure;
    if (failure) throw new StoreUnavailableError(`memory store: writes are refused until a snapshot repairs the log (${failure.message})`);
    return this.live;
  }

  private append(writer: LogWriter, line: string): Promise<void> {
    this.logRecords++;
    if (this.logRecords >= this.snapshotEveryRecords) this.snapshotInBackground();
    return writer.append(line);
  }

  /** One record with every renewal since the last checkpoint. */
  private checkpointLeases(): void {
    const writer = this.live?.writer;
    // While writes are refused the renewals stay here; the repairing snapshot
    // captures the renewal times from the catalog anyway.
    if (this.renewals.size === 0 || !writer || writer.failure) return;
    const line = leaseLine(this.renewals);
    this.renewals = new Map();
    // A failure is already reported by the writer and repaired by a snapshot.
    this.append(writer, line).catch(() => {});
  }

  private every(ms: number, fn: () => void): void {
    this.timers.push(setInterval(fn, ms).unref());
  }

  private snapshotInBackground(): void {
    if (this.snapshotRun) return;
    this.runSnapshot().catch((err: unknown) => {
      this.warn(`${(err as Error).message}; the log still holds every change, will retry`);
    });
  }

  private runSnapshot(): Promise<void> {
    this.snapshotRun ??= this.takeSnapshot().finally(() => {
      this.snapshotRun = null;
    });
    return this.snapshotRun;
  }

  /**
   * Captures the catalog and switches the log to a new segment in the same
   * synchronous step, so the snapshot holds exactly the revisions before that
   * segment; records queued but not yet written then go to the new segment
   * (replay skips those the snapshot holds). The snapshot is streamed to a
   * temporary file, fsynced and renamed over snapshot.json (the old one
   * becomes snapshot.prev.json); only then are the segments that even the
   * fallback no longer needs deleted.
   */
  private async takeSnapshot(): Promise<void> {
    const live = this.live;
    if (!live) throw new Error('memory store: not open');
    const segment = await createSegment(this.dir, this.nextSeq++, this.fsync).catch((err: unknown) => {
      throw new Error(`memory store: snapshot failed: creating a log segment: ${(err as Error).message}`, { cause: err });
    });
    const view = live.source.snapshot();
    if (view.revision !== this.revision) {
      await segment.handle.close();
      await rm(segment.path, { force: true });
      throw new Error(`memory store: snapshot skipped: the catalog is at revision ${view.revision}, the store at ${this.revision}`);
    }
    live.writer.rotate(segment);
    this.segments.push(segment.seq);
    const failureAtCapture = live.writer.failure;
    const recordsAtCapture = this.logRecords;

    const path = (name: string) => join(this.dir, name);
    try {
      await writeSnapshotFile(path(TMP_SNAPSHOT_FILE), view, segment.seq);
      if (this.hasSnapshotFile) {
        await rename(path(SNAPSHOT_FILE), path(PREVIOUS_SNAPSHOT_FILE));
        this.hasSnapshotFile = false;
      }
      await rename(path(TMP_SNAPSHOT_FILE), path(SNAPSHOT_FILE));
      this.hasSnapshotFile = true;
      await syncDir(this.dir);
    } catch (err) {
      await rm(path(TMP_SNAPSHOT_FILE), { force: true }).catch(() => {});
      throw new Error(`memory store: snapshot failed: ${(err as Error).message}`, { cause: err });
    }

    const floor = this.fallbackFloor;
    this.fallbackFloor = segment.seq;
    this.logRecords -= recordsAtCapture;
    this.lastSnapshot = { revision: view.revision, at: this.clock() };
    if (live.writer.failure === failureAtCapture) live.writer.recovered();
    const obsolete = this.segments.filter((seq) => seq < floor);
    this.segments = this.segments.filter((seq) => seq >= floor);
    for (const seq of obsolete) {
      await rm(path(segmentName(seq)), { force: true }).catch((err: unknown) => {
        this.warn(`memory store: deleting an obsolete log segment failed: ${(err as Error).message}`);
      });
    }
  }

  private onWriteFailure(failure: Error): void {
    this.warn(`${failure.message}; writes are refused until a snapshot repairs the log`);
    this.scheduleRecovery();
  }

  private scheduleRecovery(): void {
    if (this.recoveryTimer || this.state !== 'open') return;
    this.recoveryTimer = setTimeout(() => {
      this.recoveryTimer = null;
      this.runSnapshot().then(
        () => {
          if (this.live?.writer.failure) this.scheduleRecovery();
        },
        (err: unknown) => {
          this.warn(`${(err as Error).message}; writes stay refused, will retry`);
          this.scheduleRecovery();
        },
      );
    }, this.recoveryRetryMs).unref();
  }
}

export function createMemoryStore(options: MemoryStoreOptions): MemoryStore {
  return new MemoryStore(options);
}

const LOCAL_TERM = 1;

const FSYNC_POLICIES: readonly FsyncPolicy[] = ['always', 'interval', 'never'];

