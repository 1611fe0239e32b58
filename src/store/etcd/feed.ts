import type { Etcd3, IEvent, IKeyValue, IWatchResponse } from 'etcd3';
import type { Change, RemoveReason } from '../../core/changes.ts';
import type { Instance, InstanceKey } from '../../core/instance.ts';
import { StoreUnavailableError, type FeedSink } from '../store.ts';
import { isUnavailableRevision, until } from './client.ts';
import { instanceMapKey, type KeyLayout, type KeyRange } from './keys.ts';
import type { Reachability } from './reachability.ts';
import { decodeRecord, type DecodedRecord } from './record.ts';
import { RevisionWaiters } from './revision-waiters.ts';

export interface FeedOptions {
  readonly reachability: Reachability;
  readonly warn: (message: string) => void;
  /** The leader key was deleted: a replica waiting to lead may try now. */
  readonly onLeaderGone: () => void;
}

/** Keys per range request when reading the whole registry. */
const PAGE_SIZE = 1000;
/** One page of a snapshot may take this long (a page can be a few MB). */
const PAGE_TIMEOUT_MS = 5000;
/** A resync at runtime gives up (and is retried) after this long. */
const RESYNC_TIMEOUT_MS = 30_000;
/** Reconnect delays double from 100 ms up to this. */
const MAX_BACKOFF_MS = 1000;

/** Why a watch stream ended without an error: resync needed, the member is behind this replica, or close(). */
type Ending = 'resync' | 'behind' | 'closed';

/**
 * The change feed: one etcd watch over the whole prefix, turned into
 * catalog changes.
 *
 * etcd's revision is the feed's revision. All events of one revision arrive
 * in the same watch response, and each revision Maxine writes changes at
 * most one registry key (plus its tombstone), so a revision becomes at most
 * one change and the sink sees strictly increasing revisions. A deleted
 * instance's reason comes from a tombstone put in the same revision; a
 * delete without one is etcd revoking a lapsed lease: 'expired'.
 *
 * The feed resumes after the last revision it processed whenever the watch
 * breaks, with backoff up to 1 s (progress notifications move that point on
 * when nothing under the prefix changes). When etcd answers that this
 * revision has been compacted away, it resyncs: reads the whole prefix at
 * one revision (paged, each page at that revision), resets the sink and
 * watches from the next revision. A write of this replica whose revision
 * the watch does not deliver in time restarts the watch (on a member picked
 * at random), for a watch stuck on a member cut off from the cluster.
 *
 * It also keeps the lease of every instance (from the watch and the reads),
 * which is what renewals need; resuming at open reads them (keys only) at
 * the revision resumed from.
 */
export class Feed {
  private processed = 0;
  private leases = new Map<string, string>();
  private readonly waiters = new RevisionWaiters();
  private stale = false;
  private closed = false;
  private failures = 0;
  private endWatch: ((ending: Ending | Error) => void) | null = null;
  private wake: (() => void) | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly client: Etcd3,
    private readonly keys: KeyLayout,
    private readonly sink: FeedSink,
    private readonly options: FeedOptions,
  ) {}

  /** The etcd lease of an instance as of the last revision processed. */
  leaseOf(key: InstanceKey): string | undefined {
    return this.leases.get(instanceMapKey(key));
  }

  /**
   * Brings the sink up to date and starts following the watch: resumes after
   * `fromRevision` when etcd still has that history, else resets the sink
   * from a snapshot. Retries until `deadline`, then rejects.
   */
  async start(fromRevision: number, deadline: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.catchUp(fromRevision, deadline);
        break;
      } catch (err) {
        const delay = backoff(attempt);
        if (Date.now() + delay >= deadline) throw err;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
    this.running = this.run();
  }

  /**
   * Resolves once the feed has processed `revision` (a write of this
   * replica). If it has not within `timeoutMs`, the watch is suspected stuck
   * (on a member cut off from the cluster) and restarted.
   */
  reached(revision: number, timeoutMs: number): Promise<void> {
    if (revision <= this.processed) return Promise.resolve();
    if (this.closed) return Promise.reject(closedError());
    return this.waiters.wait(revision, timeoutMs, () => {
      this.endWatch?.(new Error(`the watch had not delivered revision ${revision} after ${timeoutMs} ms`));
      return new StoreUnavailableError(
        `etcd store: the change was saved at revision ${revision} but has not reached this replica yet (its watch is reconnecting)`,
      );
    });
  }

  close(): Promise<void> {
    this.closed = true;
    this.endWatch?.('closed');
    this.wake?.();
    this.waiters.rejectAll(closedError());
    return this.running ?? Promise.resolve();
  }

  private async catchUp(fromRevision: number, deadline: number): Promise<void> {
    if (fromRevision > 0) {
      const leases = await this.leasesAt(fromRevision, deadline);
      if (leases !== null) {
        this.leases = leases;
        this.processed = fromRevision;
        return;
      }
    }
    await this.resync(deadline);
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      try {
        if (this.stale) {
          await this.resync(Date.now() + RESYNC_TIMEOUT_MS);
          this.stale = false;
        }
        const ending = await this.follow();
        if (ending === 'resync') this.stale = true;
        if (ending === 'behind') await this.checkBehind();
      } catch (err) {
        if (this.closed) return;
        this.options.reachability.failed(err);
        await this.pause(backoff(this.failures++));
      }
    }
  }

  /** One watch stream, from the revision after the last processed; settles when it ends. */
  private follow(): Promise<Ending> {
    return new Promise<Ending>((resolve, reject) => {
      this.client.watchClient.watch().then((stream) => {
        let done = false;
        const end = (ending: Ending | Error): void => {
          if (done) return;
          done = true;
          this.endWatch = null;
          stream.cancel();
          if (ending instanceof Error) reject(ending);
          else resolve(ending);
        };
        // Also absorbs the CANCELLED error that cancel() itself causes.
        stream.on('error', (err) => end(err));
        stream.on('end', () => end(new Error('etcd ended the watch stream')));
        stream.on('data', (response) => {
          if (done) return;
          try {
            const ending = this.onResponse(response);
            if (ending !== null) end(ending);
          } catch (err) {
            end(err as Error);
          }
        });
        if (this.closed) {
          end('closed');
          return;
        }
        this.endWatch = end;
        stream.write({ create_request: { ...this.keys.all(), start_revision: this.processed + 1, progress_notify: true } });
      }, reject);
    });
  }

  private onResponse(response: IWatchResponse): Ending | null {
    if (response.canceled) {
      if (response.compact_revision !== '0') {
        this.options.warn(
          `etcd store: etcd compacted its history up to revision ${response.compact_revision} while this replica was at ${this.processed}; reloading the registry`,
        );
        return 'resync';
      }
      throw new Error(`etcd cancelled the watch${response.cancel_reason ? `: ${response.cancel_reason}` : ''}`);
    }
    if (response.created) {
      this.failures = 0;
      this.options.reachability.ok();
      // A watch from a revision etcd has not reached yet would wait silently for it.
      return Number(response.header.revision) < this.processed ? 'behind' : null;
    }
    // A progress notification (sent only once every earlier event was sent) moves the resume point on.
    if (response.events.length === 0) {
      this.advance(Number(response.header.revision));
      return null;
    }
    return this.applyEvents(response.events);
  }

  private applyEvents(events: readonly IEvent[]): Ending | null {
    let start = 0;
    while (start < events.length) {
      const revision = Number(events[start]!.kv.mod_revision);
      let end = start + 1;
      while (end < events.length && Number(events[end]!.kv.mod_revision) === revision) end++;
      if (revision > this.processed && this.applyRevision(revision, events.slice(start, end)) === 'resync') return 'resync';
      start = end;
    }
    return null;
  }

  private applyRevision(revision: number, events: readonly IEvent[]): Ending | null {
    let reasons: Map<string, RemoveReason> | undefined;
    for (const event of events) {
      const parsed = this.keys.parse(event.kv.key);
      if (parsed.kind === 'tombstone' && event.type === 'Put') {
        (reasons ??= new Map()).set(instanceMapKey(parsed.key), tombstoneReason(event.kv.value));
      }
    }
    let change: Change | null = null;
    let changes = 0;
    for (const event of events) {
      const next = this.toChange(revision, event, reasons);
      if (next !== null) {
        change = next;
        changes++;
      }
    }
    if (changes > 1) {
      // Not a write of Maxine's (e.g. a range deleted by hand): one revision
      // cannot carry several changes to the catalog, a snapshot can.
      this.options.warn(`etcd store: revision ${revision} changed ${changes} registry keys at once; reloading the registry`);
      return 'resync';
    }
    if (change !== null) this.sink.apply(change);
    this.advance(revision);
    return null;
  }

  private toChange(revision: number, event: IEvent, reasons: Map<string, RemoveReason> | undefined): Change | null {
    const parsed = this.keys.parse(event.kv.key);
    switch (parsed.kind) {
      case 'instance': {
        const mapKey = instanceMapKey(parsed.key);
        if (event.type === 'Delete') {
          this.leases.delete(mapKey);
          return { kind: 'remove', revision, key: parsed.key, reason: reasons?.get(mapKey) ?? 'expired' };
        }
        const record = this.decode(parsed.key, event.kv);
        if (record === null) return null;
        this.noteLease(mapKey, event.kv);
        return { kind: 'upsert', revision, instance: record.instance, renewedAt: record.renewedAt };
      }
      case 'kv':
        return { kind: 'kv', revision, key: parsed.name, value: event.type === 'Delete' ? null : event.kv.value.toString('utf8') };
      case 'leader':
        if (event.type === 'Delete') this.options.onLeaderGone();
        return null;
      default:
        return null;
    }
  }

  /**
   * The watched member is at a revision before the last one this replica
   * processed. A member that just restarted and is still catching up looks
   * like that: a linearizable read tells it apart from a cluster that went
   * back (restored from an older backup), where only a resync is right.
   */
  private async checkBehind(): Promise<void> {
    const { header } = await this.client.kv.range({ key: this.keys.leader });
    const current = Number(header.revision);
    if (current >= this.processed) {
      await this.pause(backoff(this.failures++));
      return;
    }
    this.options.warn(`etcd store: etcd is at revision ${current}, behind this replica's ${this.processed} (restored from a backup?); reloading the registry`);
    this.stale = true;
  }

  /** Reads the whole prefix at one revision and resets the sink to it. */
  private async resync(deadline: number): Promise<void> {
    const instances: Array<{ instance: Instance; renewedAt: number }> = [];
    const kv: Array<[string, string]> = [];
    const leases = new Map<string, string>();
    const revision = await this.rangeAll(this.keys.all(), 0, false, deadline, (entry) => {
      const parsed = this.keys.parse(entry.key);
      if (parsed.kind === 'kv') kv.push([parsed.name, entry.value.toString('utf8')]);
      if (parsed.kind !== 'instance') return;
      const record = this.decode(parsed.key, entry);
      if (record === null) return;
      instances.push({ instance: record.instance, renewedAt: record.renewedAt });
      if (entry.lease !== '0') leases.set(instanceMapKey(parsed.key), entry.lease);
    });
    if (this.closed) return;
    this.leases = leases;
    this.processed = revision;
    this.sink.reset({ revision, instances, kv });
    this.waiters.advance(revision);
  }

  /** The leases of the instances as they were at `revision`, or null when etcd no longer (or not yet) has it. */
  private async leasesAt(revision: number, deadline: number): Promise<Map<string, string> | null> {
    const leases = new Map<string, string>();
    try {
      await this.rangeAll(this.keys.instances(), revision, true, deadline, (entry) => {
        const parsed = this.keys.parse(entry.key);
        if (parsed.kind === 'instance' && entry.lease !== '0') leases.set(instanceMapKey(parsed.key), entry.lease);
      });
    } catch (err) {
      if (isUnavailableRevision(err)) return null;
      throw err;
    }
    return leases;
  }

  /** Pages through a range at one revision (0: the current one, fixed by the first page); resolves to that revision. */
  private async rangeAll(range: KeyRange, revision: number, keysOnly: boolean, deadline: number, each: (kv: IKeyValue) => void): Promise<number> {
    let from = range.key;
    let at = revision;
    for (;;) {
      const page = await this.client.kv.range(
        { key: from, range_end: range.range_end, revision: at, limit: PAGE_SIZE, keys_only: keysOnly },
        until(deadline, PAGE_TIMEOUT_MS),
      );
      if (at === 0) at = Number(page.header.revision);
      for (const kv of page.kvs) each(kv);
      const last = page.kvs.at(-1);
      if (!page.more || last === undefined) return at;
      from = Buffer.concat([last.key, ZERO_BYTE]);
    }
  }

  private decode(key: InstanceKey, kv: IKeyValue): DecodedRecord | null {
    try {
      return decodeRecord(kv.value, key, Number(kv.create_revision), Number(kv.mod_revision));
    } catch (err) {
      this.options.warn(`etcd store: ignoring ${kv.key.toString('utf8')} at revision ${kv.mod_revision}: ${(err as Error).message}`);
      return null;
    }
  }

  private noteLease(mapKey: string, kv: IKeyValue): void {
    if (kv.lease === '0') this.leases.delete(mapKey);
    else this.leases.set(mapKey, kv.lease);
  }

  private advance(revision: number): void {
    if (revision <= this.processed) return;
    this.processed = revision;
    this.waiters.advance(revision);
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }
}

const ZERO_BYTE = Buffer.from([0]);

function backoff(failures: number): number {
  return Math.min(MAX_BACKOFF_MS, 100 * 2 ** failures);
}

function tombstoneReason(value: Buffer): RemoveReason {
  return value.toString('utf8') === 'evicted' ? 'evicted' : 'deregistered';
}

function closedError(): StoreUnavailableError {
  return new StoreUnavailableError('etcd store: closed before the change reached this replica');
}
