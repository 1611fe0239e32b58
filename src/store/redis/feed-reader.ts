import { setTimeout as sleep } from 'node:timers/promises';
import type { FeedSink } from '../store.ts';
import { backoffMs, describe, unavailable, withinMs, type RedisConnection } from './connection.ts';
import { changeOf, revisionOf, snapshotOf, type FeedEntry } from './records.ts';
import type { Keys } from './scripts.ts';

export interface FeedReaderOptions {
  readonly keys: Keys;
  /** A new, connected feed connection; rejects when redis cannot be reached in time, or once `signal` aborts. */
  readonly connect: (signal: AbortSignal) => Promise<RedisConnection>;
  /** How long one XREAD blocks waiting for new entries. */
  readonly blockMs: number;
  readonly commandTimeoutMs: number;
  /** A snapshot moves the whole registry, so it gets longer than a command. */
  readonly snapshotTimeoutMs: number;
  readonly warn: (message: string) => void;
  /** Called with why the feed cannot be read, or null once it can again. */
  readonly onProblem: (problem: string | null) => void;
}

interface Waiter {
  readonly revision: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/** Entries per XREAD: enough to catch up quickly, small enough to keep the event loop responsive. */
const BATCH = 1000;
/** Past the block time, how long an XREAD may take before the connection is taken for dead. */
const XREAD_GRACE_MS = 1000;

/**
 * Follows the feed stream on its own connection and applies every entry to
 * the sink in revision order. Entry IDs are revisions and every revision
 * has an entry, so the next entry must be exactly the last applied + 1;
 * anything else means history this replica needed was trimmed away (or lost)
 * and it resyncs from an atomic snapshot. Any failure drops the connection;
 * the reader reconnects with backoff (at most a second apart) and, once
 * connected, checks whether it can resume or must resync.
 */
export class FeedReader {
  private last = 0;
  private connection: RedisConnection | null = null;
  private stopped = false;
  private following: Promise<void> | null = null;
  private problem: string | null = null;
  private readonly waiters = new Set<Waiter>();
  /** Aborted by stop(): ends a backoff pause or a connection attempt at once. */
  private readonly stopping = new AbortController();

  constructor(
    private readonly sink: FeedSink,
    private readonly options: FeedReaderOptions,
  ) {}

  /** The revision last applied to the sink. */
  get revision(): number {
    return this.last;
  }

  /**
   * Brings the sink up to date from revision `from` (0: an empty sink, which
   * always gets a snapshot) and starts following the feed.
   */
  async start(from: number): Promise<void> {
    const connection = await this.options.connect(this.stopping.signal);
    this.connection = connection;
    try {
      await this.catchUp(connection, from);
    } catch (err) {
      this.dropConnection();
      throw err;
    }
    this.following = this.follow();
  }

  /**
   * Resolves once `revision` has been applied to the sink; rejects after
   * `ms`, when the change is saved in redis but this replica has not seen it.
   */
  waitFor(revision: number, ms: number): Promise<void> {
    if (revision <= this.last) return Promise.resolve();
    if (this.stopped) return Promise.reject(unavailable(`closed before revision ${revision} reached this replica`));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        revision,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          const why = this.problem === null ? '' : ` (${this.problem})`;
          reject(unavailable(`the change was saved at revision ${revision}, but the feed has not delivered it to this replica within ${ms} ms${why}`));
        }, ms),
      };
      this.waiters.add(waiter);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    this.dropConnection();
    await this.following;
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(unavailable(`closed before revision ${waiter.revision} reached this replica`));
    }
    this.waiters.clear();
  }

  private async follow(): Promise<void> {
    let attempt = 0;
    while (!this.stopped) {
      try {
        let connection = this.connection;
        if (connection === null) {
          connection = await this.options.connect(this.stopping.signal);
          this.connection = connection;
          await this.catchUp(connection, this.last);
        }
        const read = connection.xRead({ key: this.options.keys.feed, id: `${this.last}-0` }, { BLOCK: this.options.blockMs, COUNT: BATCH });
        const reply = await withinMs(read, this.options.blockMs + XREAD_GRACE_MS);
        this.setProblem(null);
        attempt = 0;
        await this.deliver(connection, entriesOf(reply));
      } catch (err) {
        if (this.stopped) break;
        this.setProblem(`cannot read the feed: ${describe(err)}`);
        this.dropConnection();
        await sleep(backoffMs(attempt++), undefined, { signal: this.stopping.signal }).catch(() => {});
      }
    }
  }

  /** Resume after `from` when the feed still holds revision from + 1 (or nothing happened since); else resync. */
  private async catchUp(connection: RedisConnection, from: number): Promise<void> {
    if (from > 0) {
      const reply = await withinMs(connection.probe(this.options.keys, `${from + 1}-0`), this.options.commandTimeoutMs);
      const [current, firstId] = reply as [string, string];
      const revision = Number(current);
      if (revision === from || (revision > from && firstId !== '' && revisionOf(firstId) === from + 1)) {
        this.last = from;
        return;
      }
      this.options.warn(
        revision < from
          ? `redis store: redis is at revision ${revision}, behind this replica's ${from} (data lost?); resyncing`
          : `redis store: the feed no longer holds revision ${from + 1} (trimmed); resyncing from revision ${revision}`,
      );
    }
    await this.resync(connection);
  }

  private async resync(connection: RedisConnection): Promise<void> {
    const reply = await withinMs(connection.snapshot(this.options.keys), this.options.snapshotTimeoutMs);
    const snapshot = snapshotOf(reply, this.options.warn);
    this.sink.reset(snapshot);
    this.last = snapshot.revision;
    this.settleWaiters();
  }

  private async deliver(connection: RedisConnection, entries: readonly FeedEntry[]): Promise<void> {
    let lost = false;
    try {
      for (const entry of entries) {
        const revision = revisionOf(entry.id);
        if (revision <= this.last) continue;
        if (revision !== this.last + 1) {
          this.options.warn(`redis store: the feed no longer holds revisions ${this.last + 1}-${revision - 1} (trimmed); resyncing`);
          lost = true;
          break;
        }
        this.sink.apply(changeOf(revision, entry.message));
        this.last = revision;
      }
    } catch (err) {
      // An entry that does not decode (or a sink that refused it): the snapshot is the way back to a known state.
      this.options.warn(`redis store: ${describe(err)} at revision ${this.last + 1}; resyncing`);
      lost = true;
    }
    if (lost) await this.resync(connection);
    else this.settleWaiters();
  }

  private settleWaiters(): void {
    for (const waiter of this.waiters) {
      if (waiter.revision > this.last) continue;
      clearTimeout(waiter.timer);
      this.waiters.delete(waiter);
      waiter.resolve();
    }
  }

  private setProblem(problem: string | null): void {
    if (problem === this.problem) return;
    this.problem = problem;
    this.options.onProblem(problem);
  }

  private dropConnection(): void {
    this.connection?.destroy();
    this.connection = null;
  }
}

/** XREAD's reply for one stream: null on timeout, else [{ name, messages: [{ id, message }] }]. */
function entriesOf(reply: unknown): readonly FeedEntry[] {
  if (reply === null) return [];
  if (!Array.isArray(reply)) throw new Error('XREAD returned an unexpected reply');
  const stream = reply[0] as { messages?: unknown } | undefined;
  if (stream === undefined || !Array.isArray(stream.messages)) throw new Error('XREAD returned an unexpected reply');
  return stream.messages as FeedEntry[];
}
