import { mkdir, stat, watch } from 'node:fs/promises';
import type { Instance, InstanceKey } from '../../core/instance.ts';
import { DataError, stampedInstance } from '../instance-record.ts';
import {
  REACHABLE,
  StoreUnavailableError,
  type FeedSink,
  type LeadershipState,
  type RegistryStore,
  type ReplicaOptions,
  type StateSource,
  type StoreHealth,
} from '../store.ts';
import { appendRecord, newRid, PositionReusedError, readRid } from './append.ts';
import { compose, deferred, fenced, type Op } from './batch.ts';
import { installSnapshot } from './compaction.ts';
import { LogFeed } from './feed.ts';
import { Layout } from './layout.ts';
import { fenceHolds, isLive, leadershipView } from './leadership.ts';
import { encodeRecord } from './record.ts';
import { argumentChecks } from '../argument-checks.ts';

const { positive, requireFinite, validated, kvArguments } = argumentChecks('shared-file store');

export interface SharedFileStoreOptions extends ReplicaOptions {
  /**
   * The directory the replicas share (MAXINE_REGISTRY_STATE_FILE); created
   * (mode 0700) if missing. Batched renewals are appended every
   * renewFlushMs (default 250 ms here).
   */
  readonly dir: string;
  /** A write the filesystem has not answered within this time rejects with StoreUnavailableError (default 1500 ms). */
  readonly writeTimeoutMs?: number;
  /** How often the next log position is checked (default 50 ms); fs.watch wakes the reader sooner where it works. */
  readonly pollMs?: number;
  /** The leader snapshots the log every `everyRecords` positions or `everyMs`, keeping `retainRecords` positions before the snapshot. */
  readonly compaction?: {
    readonly everyRecords?: number;
    readonly everyMs?: number;
    readonly retainRecords?: number;
  };
}

interface Live {
  readonly feed: LogFeed;
  readonly source: StateSource;
}

/** open() gives up on a directory that does not answer (the contract allows 10 s). */
const OPEN_TIMEOUT_MS = 9000;
/** The longest pause between two reads of the log while it fails. */
const MAX_POLL_BACKOFF_MS = 1000;
/** How often the leader checks whether the log is due for compaction. */
const COMPACTION_CHECK_MS = 1000;

/**
 * A store for a few replicas sharing one directory (kind 'shared-file'):
 * an ordered log of small record files, appended by every replica and read
 * by every replica into its catalog.
 *
 * Locking never blocks and recovers from a crashed holder because there is
 * no lock: the only synchronisation is the exclusive creation of the next
 * log position (a hard link of a complete, fsynced temporary file, see
 * append.ts). Losing that race costs a re-read of the log and a retry; a
 * writer that crashes holds nothing, so there is nothing to wait for and
 * nothing to break. All I/O is asynchronous, so no replica ever blocks its
 * event loop on another. The only thing that lapses is leadership, a term
 * recorded in the log that its holder renews every leaderRenewMs and that
 * the others take over once it is leaderLeaseMs old.
 *
 * Writes: every write issued while an append is in flight joins the next
 * record (group commit). The writer reads the log up to its head, composes
 * the record against that exact state (revisions, whether the instance to
 * remove exists, whether a fencing token is current), appends it at the
 * next position, applies it to its own catalog and answers. Losing the
 * position to another replica means: read that record, compose again. So
 * a leader-only write's fencing check and the write are one atomic step,
 * like a Lua script or an etcd transaction, and a record never needs a
 * reader's judgement. A write touches one small file of its own; nothing
 * rewrites the registry.
 *
 * Reads: a replica follows the log by checking for the next position every
 * pollMs, and sooner when fs.watch reports a change in the log directory
 * (a hint only: network filesystems do not deliver it). Every record names
 * the one before it and the state it starts from, so a replica that finds
 * a record it cannot follow, or finds its next record compacted away,
 * resets its catalog from the newest snapshot and carries on.
 *
 * Leases live in the catalogs: renewals are collected in memory and
 * appended every renewFlushMs as one record, which every other replica
 * delivers to its catalog; the leader expires from its catalog's lease
 * queue. The leader also compacts: it snapshots its catalog at a log
 * position and deletes the records well before it.
 *
 * Assumptions: the replicas' clocks agree to well within the leadership
 * lease; the filesystem gives exclusive link() and atomic rename() (local
 * filesystems and NFS do; NFS should be mounted so that new files are seen
 * promptly, e.g. lookupcache=positive).
 */
export class SharedFileStore implements RegistryStore {
  readonly kind = 'shared-file' as const;
  readonly leasesInCatalog = true;

  private readonly layout: Layout;
  private readonly self: string;
  private readonly leaderLeaseMs: number;
  private readonly leaderRenewMs: number;
  private readonly renewFlushMs: number;
  private readonly writeTimeoutMs: number;
  private readonly pollMs: number;
  private readonly compactEveryRecords: number;
  private readonly compactEveryMs: number;
  private readonly retainRecords: number;
  private readonly clock: () => number;
  private readonly warn: (message: string) => void;

  private state: 'new' | 'opening' | 'open' | 'closing' | 'closed' = 'new';
  private live: Live | null = null;
  private openRun: Promise<void> | null = null;
  private closeRun: Promise<void> | null = null;

  /** Log work (reading, appending, capturing a snapshot) runs one task at a time, in order. */
  private tail: Promise<unknown> = Promise.resolve();
  /** When the running log task started; a task running too long means the directory hangs. */
  private busySince: number | null = null;
  private batch: Op[] = [];
  private pumpRun: Promise<void> | null = null;
  /** Renewals since the last flush. Keyed by the instance object: no key string per heartbeat. */
  private renewals = new Map<Instance, number>();
  private failure: string | null = null;
  private observedAt = 0;

  private timers: NodeJS.Timeout[] = [];
  private pollTimer: NodeJS.Timeout | null = null;
  private pollDelay: number;
  private pollRun: Promise<void> | null = null;
  private pollAgain = false;
  private readonly watchAbort = new AbortController();
  private claiming = false;
  private compactRun: Promise<void> | null = null;
  private lastCompactionAt = 0;

  constructor(options: SharedFileStoreOptions) {
    if (typeof options.dir !== 'string' || options.dir === '') throw new TypeError('shared-file store: dir is required');
    if (typeof options.instanceId !== 'string' || options.instanceId === '') throw new TypeError('shared-file store: instanceId is required');
    this.layout = new Layout(options.dir);
    this.self = options.instanceId;
    this.leaderLeaseMs = positive('leaderLeaseMs', options.leaderLeaseMs);
    this.leaderRenewMs = positive('leaderRenewMs', options.leaderRenewMs);
    if (this.leaderRenewMs >= this.leaderLeaseMs) throw new TypeError('shared-file store: leaderRenewMs must be shorter than leaderLeaseMs');
    this.renewFlushMs = positive('renewFlushMs', options.renewFlushMs ?? 250);
    this.writeTimeoutMs = positive('writeTimeoutMs', options.writeTimeoutMs ?? 1500);
    this.pollMs = positive('pollMs', options.pollMs ?? 50);
    this.pollDelay = this.pollMs;
    this.compactEveryRecords = positive('compaction.everyRecords', options.compaction?.everyRecords ?? 2000);
    this.compactEveryMs = positive('compaction.everyMs', options.compaction?.everyMs ?? 30_000);
    this.retainRecords = options.compaction?.retainRecords ?? 1000;
    if (!Number.isSafeInteger(this.retainRecords) || this.retainRecords < 0) {
      throw new TypeError('shared-file store: compaction.retainRecords must be an integer >= 0');
    }
    this.clock = options.clock ?? Date.now;
    this.warn = options.onWarning ?? ((message) => process.emitWarning(message, { code: 'MAXINE_STORE' }));
  }

  open(sink: FeedSink, source: StateSource): Promise<void> {
    if (this.state !== 'new') return Promise.reject(new Error('shared-file store: open() can only be called once'));
    this.state = 'opening';
    this.openRun = this.withinOpenTimeout(this.start(sink, source));
    return this.openRun;
  }

  private async start(sink: FeedSink, source: StateSource): Promise<void> {
    try {
      await this.prepareDirectory();
      const feed = new LogFeed(this.layout, sink, this.clock, this.warn);
      this.live = { feed, source };
      await this.exclusive(() => feed.start(source.revision));
    } catch (err) {
      this.live = null;
      this.state = 'closed';
      if (err instanceof StoreUnavailableError || !isIoOrDataError(err)) throw err;
      throw this.unavailable(err);
    }
    // The open timed out meanwhile: it was reported failed, so do not start.
    if (this.state !== 'opening') return;
    this.state = 'open';
    this.observedAt = this.clock();
    this.lastCompactionAt = this.observedAt;
    this.every(this.renewFlushMs, () => this.flushRenewals());
    this.every(this.leaderRenewMs, () => this.claimLeadership());
    this.every(COMPACTION_CHECK_MS, () => this.compactIfDue());
    this.watchLog();
    this.schedulePoll(this.pollMs);
    this.claimLeadership();
  }

  /** Refuses a regular file (the original Maxine's whole-registry file), creates the tree, writes the genesis record. */
  private async prepareDirectory(): Promise<void> {
    const { root } = this.layout;
    const existing = await stat(root).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    });
    if (existing?.isFile()) {
      throw new Error(
        `shared-file store: ${root} is a regular file (perhaps the original Maxine's registry state file); ` +
          'MAXINE_REGISTRY_STATE_FILE must name a directory shared by every replica for this store',
      );
    }
    if (existing !== null && !existing.isDirectory()) throw new Error(`shared-file store: ${root} is not a directory`);
    await mkdir(this.layout.logDir, { recursive: true, mode: 0o700 });
    if ((await this.layout.snapshots()).length === 0 && (await readRid(this.layout.recordPath(0))) === null) {
      const genesis = { rid: newRid(), prev: null, base: 0, lead: null, writer: this.self, at: this.clock(), entries: [] };
      await appendRecord(this.layout, 0, encodeRecord(genesis), null);
    }
  }

  async upsert(instance: Instance, renewedAt: number): Promise<Instance> {
    this.writable();
    requireFinite(renewedAt, 'renewedAt');
    const checked = validated(() => stampedInstance(instance, instance.createRevision, 0));
    const { promise, done } = deferred<Instance>(this.writeTimeoutMs, 'the upsert');
    this.enqueue({ kind: 'upsert', instance: checked, renewedAt, done });
    return promise;
  }

  renew(instance: Instance, renewedAt: number): void {
    if (this.state !== 'open') return;
    requireFinite(renewedAt, 'renewedAt');
    this.renewals.set(instance, renewedAt);
  }

  /** The compare (and the fence) is decided in compose(), against the state the record will follow. */
  async update(instance: Instance, renewedAt: number, fencingToken: number | null): Promise<Instance | null> {
    const { feed } = this.writable();
    requireFinite(renewedAt, 'renewedAt');
    // Checked again against the log's head when the record is composed; this only spares a follower the queue.
    if (fencingToken !== null && !fenceHolds(feed.lead, this.self, fencingToken, this.clock())) {
      throw fenced(fencingToken, feed.lead, this.self, this.clock(), 'nothing was changed');
    }
    const checked = validated(() => stampedInstance(instance, instance.createRevision, instance.modifyRevision));
    const { promise, done } = deferred<Instance | null>(this.writeTimeoutMs, 'the update');
    this.enqueue({ kind: 'update', instance: checked, renewedAt, token: fencingToken, done });
    return promise;
  }

  async remove(key: InstanceKey, _reason: 'deregistered'): Promise<number | null> {
    this.writable();
    const { promise, done } = deferred<number | null>(this.writeTimeoutMs, 'the removal');
    this.enqueue({ kind: 'remove', key: { service: key.service, id: key.id }, done });
    return promise;
  }

  async putKv(key: string, value: string | null): Promise<number> {
    this.writable();
    kvArguments(key, value, null);
    const { promise, done } = deferred<number>(this.writeTimeoutMs, 'the kv write');
    this.enqueue({ kind: 'kv', key, value, done });
    return promise;
  }

  async putKvIf(key: string, expected: string | null, value: string | null): Promise<number | null> {
    this.writable();
    kvArguments(key, value, expected);
    const { promise, done } = deferred<number | null>(this.writeTimeoutMs, 'the kv write');
    this.enqueue({ kind: 'kv', key, value, expected, done });
    return promise;
  }

  async expire(now: number, fencingToken: number): Promise<number> {
    const { feed, source } = this.writable();
    requireFinite(now, 'now');
    // Checked again against the log's head when the record is composed; this only spares a follower the lease queue.
    if (!fenceHolds(feed.lead, this.self, fencingToken, this.clock())) throw fenced(fencingToken, feed.lead, this.self, this.clock());
    const taken = source.takeExpired(now);
    const { promise, done } = deferred<number>(this.writeTimeoutMs, 'the expiry');
    this.enqueue({ kind: 'expire', now, token: fencingToken, taken, done });
    try {
      return await promise;
    } finally {
      // Removed leases are no longer live and are dropped; the rest (renewed meanwhile, or the write failed) go back in the queue.
      for (const entry of taken) source.retryExpiry(entry);
    }
  }

  async evict(key: InstanceKey, fencingToken: number): Promise<number | null> {
    const { feed } = this.writable();
    if (!fenceHolds(feed.lead, this.self, fencingToken, this.clock())) throw fenced(fencingToken, feed.lead, this.self, this.clock());
    const { promise, done } = deferred<number | null>(this.writeTimeoutMs, 'the eviction');
    this.enqueue({ kind: 'evict', key: { service: key.service, id: key.id }, token: fencingToken, done });
    return promise;
  }

  leadership(): LeadershipState {
    const feed = this.live?.feed;
    if (feed === undefined || this.state === 'closed') return { isLeader: false, leaderId: null, fencingToken: 0, observedAt: this.observedAt };
    return leadershipView(feed.lead, this.self, this.clock(), this.observedAt);
  }

  health(): StoreHealth {
    if (this.state === 'closed') return { reachable: false, error: 'shared-file store: closed' };
    if (this.failure !== null) return { reachable: false, error: this.failure };
    if (this.busySince !== null && this.clock() - this.busySince > this.writeTimeoutMs) {
      const seconds = ((this.clock() - this.busySince) / 1000).toFixed(1);
      return { reachable: false, error: `shared-file store: ${this.layout.root} has not answered for ${seconds} s` };
    }
    return REACHABLE;
  }

  /** Stops following the log, appends pending renewals and a resignation (if leading), then stops. */
  close(): Promise<void> {
    this.closeRun ??= this.shutdown();
    return this.closeRun;
  }

  private async shutdown(): Promise<void> {
    await this.openRun?.catch(() => {});
    if (this.state !== 'open') {
      this.state = 'closed';
      return;
    }
    this.state = 'closing';
    for (const timer of this.timers) clearInterval(timer);
    if (this.pollTimer !== null) clearTimeout(this.pollTimer);
    this.watchAbort.abort();
    this.flushRenewals();
    if (this.leadership().isLeader) {
      const { promise, done } = deferred<boolean>(this.writeTimeoutMs, 'the resignation');
      this.enqueue({ kind: 'resign', done });
      // Not recorded: the others take over when the term lapses.
      promise.catch(() => false);
    }
    // Each write has its own deadline; a hung filesystem call may outlive them, so do not wait for it forever.
    await settledWithin(Promise.all([this.pumpRun, this.pollRun, this.compactRun]), 2 * this.writeTimeoutMs);
    this.state = 'closed';
  }

  private writable(): Live {
    if (this.state === 'new' || this.state === 'opening') throw new Error('shared-file store: not open');
    if (this.state !== 'open' || this.live === null) throw new StoreUnavailableError('shared-file store: closed; the write was not accepted');
    return this.live;
  }

  private enqueue(op: Op): void {
    this.batch.push(op);
    this.pumpRun ??= this.pump();
  }

  /** Appends batches until no write is waiting. */
  private async pump(): Promise<void> {
    try {
      while (this.batch.length > 0) {
        // The batch is taken when the log is free, so it holds every write issued until then.
        await this.exclusive(() => {
          const batch = this.batch;
          this.batch = [];
          return this.commit(batch);
        });
      }
    } finally {
      // Cleared in the same step as the loop's last look at the batch, not in a later callback: a write issued
      // in between (by a caller the last commit resumed) would find this pump still set and wait for another write.
      this.pumpRun = null;
    }
  }

  private async commit(batch: Op[]): Promise<void> {
    const { feed, source } = this.live!;
    for (;;) {
      let composition;
      try {
        await feed.catchUp();
        composition = compose(batch, { head: feed, source, self: this.self, at: this.clock(), leaderLeaseMs: this.leaderLeaseMs });
        if (composition.record === null) return;
        const predecessor = feed.rid === null ? null : { position: feed.position, rid: feed.rid };
        const appended = await appendRecord(this.layout, feed.position + 1, encodeRecord(composition.record), predecessor);
        if (appended === 'taken') continue;
        feed.applyOwn(composition.record);
      } catch (err) {
        const error = this.unavailable(err);
        if (err instanceof PositionReusedError) this.warn(error.message);
        for (const op of batch) op.done.reject(error);
        return;
      }
      this.reachable();
      for (const answer of composition.commit) answer();
      return;
    }
  }

  private flushRenewals(): void {
    if (this.renewals.size === 0) return;
    const renewals = this.renewals;
    this.renewals = new Map();
    const { promise, done } = deferred<void>(this.writeTimeoutMs, 'the lease renewals');
    this.enqueue({ kind: 'renew', renewals, done });
    promise.catch(() => {
      // Not recorded: keep them for the next flush unless the instance was renewed again since.
      for (const [instance, renewedAt] of renewals) {
        if (!((this.renewals.get(instance) ?? -Infinity) >= renewedAt)) this.renewals.set(instance, renewedAt);
      }
    });
  }

  /** Renews this replica's term, or takes over a lapsed one; nothing while another replica leads. */
  private claimLeadership(): void {
    const lead = this.live?.feed.lead ?? null;
    if (this.claiming || this.state !== 'open' || (isLive(lead, this.clock()) && lead.holder !== this.self)) return;
    this.claiming = true;
    const { promise, done } = deferred<boolean>(this.writeTimeoutMs, 'the leadership claim');
    this.enqueue({ kind: 'claim', done });
    promise
      .catch(() => false)
      .finally(() => {
        this.claiming = false;
      });
  }

  private compactIfDue(): void {
    const feed = this.live?.feed;
    if (feed === undefined || this.compactRun !== null || !this.leadership().isLeader) return;
    const since = feed.position - feed.snapshotPosition;
    if (since < this.compactEveryRecords && (since === 0 || this.clock() - this.lastCompactionAt < this.compactEveryMs)) return;
    this.compactRun = this.compact()
      .catch((err: unknown) => this.warn(`shared-file store: compaction failed, will retry: ${(err as Error).message}`))
      .finally(() => {
        this.compactRun = null;
      });
  }

  /** Snapshots the catalog at the current log position (captured in one step with the position) and trims the log. */
  private async compact(): Promise<void> {
    const { feed, source } = this.live!;
    const snapshot = await this.exclusive(async () => {
      const view = source.snapshot();
      if (view.revision !== feed.revision || feed.rid === null) {
        throw new Error(`the catalog is at revision ${view.revision}, the log at ${feed.revision}`);
      }
      return { ...view, position: feed.position, rid: feed.rid, lead: feed.lead };
    });
    await installSnapshot(this.layout, snapshot, this.retainRecords, this.clock());
    this.lastCompactionAt = this.clock();
    feed.snapshotPosition = Math.max(feed.snapshotPosition, snapshot.position);
  }

  private schedulePoll(delay: number): void {
    if (this.state !== 'open') return;
    this.pollTimer = setTimeout(() => {
      this.pollTimer = null;
      this.poll();
    }, delay);
    this.pollTimer.unref();
  }

  /** A change in the log directory: read now rather than at the next tick. */
  private wake(): void {
    if (this.pollRun !== null) {
      this.pollAgain = true;
    } else if (this.pollTimer !== null) {
      clearTimeout(this.pollTimer);
      this.pollTimer = null;
      this.poll();
    }
  }

  private poll(): void {
    const feed = this.live?.feed;
    if (feed === undefined || this.state !== 'open') return;
    this.pollRun = this.exclusive(() => feed.catchUp(this.failure !== null)).then(
      () => {
        this.reachable();
        this.pollDelay = this.pollMs;
      },
      (err: unknown) => {
        this.unavailable(err);
        this.pollDelay = Math.min(MAX_POLL_BACKOFF_MS, this.pollDelay * 2);
      },
    );
    void this.pollRun.then(() => {
      this.pollRun = null;
      const delay = this.pollAgain ? 0 : this.pollDelay;
      this.pollAgain = false;
      this.schedulePoll(delay);
    });
  }

  private watchLog(): void {
    const events = watch(this.layout.logDir, { persistent: false, signal: this.watchAbort.signal });
    (async () => {
      for await (const _event of events) this.wake();
    })().catch(() => {
      // Aborted at close, or watching is not supported here: polling alone carries on.
    });
  }

  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.tail.then(async () => {
      this.busySince = this.clock();
      try {
        return await task();
      } finally {
        this.busySince = null;
      }
    });
    this.tail = run.catch(() => {});
    return run;
  }

  private reachable(): void {
    this.failure = null;
    this.observedAt = this.clock();
  }

  /** Records the failure for health() and turns it into the error writes reject with. */
  private unavailable(err: unknown): StoreUnavailableError {
    if (err instanceof StoreUnavailableError) return err;
    const message = (err as Error).message.startsWith('shared-file store:')
      ? (err as Error).message
      : `shared-file store: ${this.layout.root} cannot be used: ${(err as Error).message}`;
    this.failure = message;
    return new StoreUnavailableError(message, { cause: err });
  }

  private withinOpenTimeout(run: Promise<void>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.state = 'closed';
        reject(new StoreUnavailableError(`shared-file store: ${this.layout.root} did not answer within ${OPEN_TIMEOUT_MS} ms`));
      }, OPEN_TIMEOUT_MS);
    });
    return Promise.race([run, timeout]).finally(() => clearTimeout(timer));
  }

  private every(ms: number, fn: () => void): void {
    this.timers.push(setInterval(fn, ms).unref());
  }
}

export function createSharedFileStore(options: SharedFileStoreOptions): SharedFileStore {
  return new SharedFileStore(options);
}

/** Filesystem errors carry an errno code; a DataError is a damaged log. Anything else is a bug and is not dressed up. */
function isIoOrDataError(err: unknown): boolean {
  return err instanceof DataError || (err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string');
}

async function settledWithin(run: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([run.catch(() => {}), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
