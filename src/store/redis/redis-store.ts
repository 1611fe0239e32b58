import { ClientClosedError, ClientOfflineError } from 'redis';
import { withRevisions, type Instance, type InstanceKey } from '../../core/instance.ts';
import { DataError, stampedInstance } from '../instance-record.ts';
import {
  REACHABLE,
  FencedError,
  type FeedSink,
  type LeadershipState,
  type RegistryStore,
  type ReplicaOptions,
  type StateSource,
  type StoreHealth,
} from '../store.ts';
import {
  connectWithin,
  describe,
  isCertificateError,
  isRefusal,
  newConnection,
  redactedUrl,
  unavailable,
  withinMs,
  type RedisConnection,
} from './connection.ts';
import { FeedReader } from './feed-reader.ts';
import { LeadershipView } from './leadership.ts';
import { memberOf, recordHead } from './records.ts';
import { RenewalBatch } from './renewals.ts';
import { keysFor, type Keys } from './scripts.ts';
import { argumentChecks } from '../argument-checks.ts';

const { positive, requireFinite, validated, kvArguments } = argumentChecks('redis store');

export interface RedisStoreOptions extends ReplicaOptions {
  /** `redis://[:password@]host:port[/db]`, or `rediss://` for TLS. */
  readonly url: string;
  /** Every key of this registry starts with it (default 'maxine:'); several registries can share one redis. */
  readonly keyPrefix?: string;
  /** About how many feed entries redis keeps (XADD MAXLEN ~, default 100,000); a replica further behind resyncs. */
  readonly feedMaxLen?: number;
  /** PEM file of the CA that signed the server certificate, for `rediss://` with a private CA. */
  readonly tlsCaFile?: string;
  /**
   * How long one redis command may take (default 1000 ms). A write waits at
   * most this long for redis and as long again for its change to come back
   * through the feed, so it fails within twice this when redis is away.
   */
  readonly commandTimeoutMs?: number;
  /** How long open() tries to connect before it gives up (default 5000 ms). */
  readonly openTimeoutMs?: number;
}

/** Removals per expire script call: bounds how long one call holds redis. */
const EXPIRE_BATCH = 1000;
/** How long the feed connection may take to (re)connect. */
const FEED_CONNECT_MS = 2000;
/** How long one blocking XREAD waits for new entries. */
const FEED_BLOCK_MS = 1000;
/** A snapshot carries the whole registry (about 50 MB for 100,000 instances). */
const SNAPSHOT_TIMEOUT_MS = 10_000;

/**
 * The store for several replicas sharing one redis (kind 'redis'). Each
 * replica keeps the whole catalog in memory, fed by a Redis Stream; redis
 * holds the truth: instance records in a hash, lease deadlines in a sorted
 * set, the KV in a hash, the revision counter, and the leader key.
 *
 * Ordering: every write is one Lua script that takes the next revision
 * (INCR), appends the change to the stream with ID `<revision>-0` and
 * updates the state, atomically. Every replica, the writer included,
 * applies changes only from the stream, in ID order, so all replicas apply
 * the same changes in the same order. A write resolves once the feed reader
 * has applied its revision to this replica's sink.
 *
 * Leases live in redis (`leasesInCatalog` false): renewals from every
 * replica move the deadline in the sorted set, and the leader's expire()
 * removes what is due, fenced by its token in the same script.
 */
export class RedisStore implements RegistryStore {
  readonly kind = 'redis' as const;
  readonly leasesInCatalog = false;

  private readonly url: string;
  private readonly keys: Keys;
  private readonly feedMaxLen: number;
  private readonly commandTimeoutMs: number;
  private readonly openTimeoutMs: number;
  private readonly renewFlushMs: number;
  private readonly warn: (message: string) => void;
  private readonly view: LeadershipView;
  private readonly renewals = new RenewalBatch();

  private state: 'new' | 'opening' | 'open' | 'closing' | 'closed' = 'new';
  private client: RedisConnection | null = null;
  private reader: FeedReader | null = null;
  private lastError: Error | null = null;
  private commandProblem: string | null = null;
  private feedProblem: string | null = null;
  private flushing: Promise<void> | null = null;
  private round: Promise<void> | null = null;
  private renewTimer: NodeJS.Timeout | undefined;
  private roundTimer: NodeJS.Timeout | undefined;
  private openRun: Promise<void> | null = null;
  private closeRun: Promise<void> | null = null;

  constructor(private readonly options: RedisStoreOptions) {
    checkUrl(options.url, options.tlsCaFile);
    if (typeof options.instanceId !== 'string' || options.instanceId === '') throw new TypeError('redis store: instanceId is required');
    positive('leaderLeaseMs', options.leaderLeaseMs);
    positive('leaderRenewMs', options.leaderRenewMs);
    if (options.leaderRenewMs >= options.leaderLeaseMs) {
      throw new TypeError('redis store: leaderRenewMs must be shorter than leaderLeaseMs, or the leader loses its term between renewals');
    }
    this.url = redactedUrl(options.url);
    this.keys = keysFor(options.keyPrefix ?? 'maxine:');
    this.feedMaxLen = positive('feedMaxLen', options.feedMaxLen ?? 100_000);
    this.commandTimeoutMs = positive('commandTimeoutMs', options.commandTimeoutMs ?? 1000);
    this.openTimeoutMs = positive('openTimeoutMs', options.openTimeoutMs ?? 5000);
    this.renewFlushMs = positive('renewFlushMs', options.renewFlushMs ?? 100);
    this.warn = options.onWarning ?? ((message) => process.emitWarning(message, { code: 'MAXINE_STORE' }));
    this.view = new LeadershipView(options.instanceId, options.leaderLeaseMs, options.clock ?? Date.now);
  }

  open(sink: FeedSink, source: StateSource): Promise<void> {
    if (this.state !== 'new') return Promise.reject(new Error('redis store: open() can only be called once'));
    this.state = 'opening';
    this.openRun = this.start(sink, source);
    return this.openRun;
  }

  private async start(sink: FeedSink, source: StateSource): Promise<void> {
    try {
      const client = newConnection(this.connectionSettings(''), true, (error) => this.state === 'opening' && isPermanent(error));
      this.client = client;
      client.on('error', (error: Error) => this.onClientError(error));
      client.on('ready', () => (this.commandProblem = null));
      await connectWithin(client, this.openTimeoutMs, () => this.lastError).catch((err: unknown) => {
        throw unavailable(`cannot connect to ${this.url}: ${describe(err)}`, err);
      });
      this.reader = new FeedReader(sink, {
        keys: this.keys,
        connect: (signal) => this.connectFeed(signal),
        blockMs: FEED_BLOCK_MS,
        commandTimeoutMs: this.commandTimeoutMs,
        snapshotTimeoutMs: SNAPSHOT_TIMEOUT_MS,
        warn: this.warn,
        onProblem: (problem) => (this.feedProblem = problem),
      });
      await this.reader.start(source.revision).catch((err: unknown) => {
        throw err instanceof DataError ? new Error(`redis store: ${err.message}`, { cause: err }) : unavailable(`cannot read the registry from ${this.url}: ${describe(err)}`, err);
      });
      await this.electionRound();
    } catch (err) {
      await this.reader?.stop();
      this.client?.destroy();
      this.state = 'closed';
      throw err;
    }
    this.state = 'open';
    this.renewTimer = setInterval(() => void this.flushRenewals(), this.renewFlushMs).unref();
    this.scheduleRound();
  }

  async upsert(instance: Instance, renewedAt: number): Promise<Instance> {
    this.writable();
    requireFinite(renewedAt, 'renewedAt');
    if (instance.service.includes('\n')) throw new TypeError('redis store: a service name cannot contain a newline');
    const base = validated(() => stampedInstance(instance, 0, 0));
    const reply = await this.command('the registration', (c) =>
      c.upsert(this.keys, memberOf(base), recordHead(base), renewedAt + base.ttlMs, renewedAt, this.feedMaxLen),
    );
    const [revision, createRevision] = reply as [number, number];
    await this.applied(revision);
    return withRevisions(base, createRevision, revision);
  }

  renew(instance: Instance, renewedAt: number): void {
    if (this.state !== 'open') return;
    requireFinite(renewedAt, 'renewedAt');
    this.renewals.note(instance, renewedAt);
  }

  async update(instance: Instance, renewedAt: number, fencingToken: number | null): Promise<Instance | null> {
    this.writable();
    requireFinite(renewedAt, 'renewedAt');
    if (instance.service.includes('\n')) throw new TypeError('redis store: a service name cannot contain a newline');
    const base = validated(() => stampedInstance(instance, 0, 0));
    const token = fencingToken === null ? '' : tokenArg(fencingToken);
    const reply = await this.command('the update', (c) =>
      c.update(this.keys, memberOf(base), recordHead(base), instance.modifyRevision, renewedAt, this.feedMaxLen, token),
    );
    const [revision, createRevision] = reply as [number, number];
    if (revision < 0) throw new FencedError(`redis store: fencing token ${fencingToken} is not the current leader's; ${base.service}/${base.id} was not updated`);
    if (revision === 0) return null;
    await this.applied(revision);
    return withRevisions(base, createRevision, revision);
  }

  async remove(key: InstanceKey, reason: 'deregistered'): Promise<number | null> {
    this.writable();
    const revision = (await this.command('the deregistration', (c) =>
      c.remove(this.keys, memberOf(key), key.service, key.id, reason, this.feedMaxLen, ''),
    )) as number;
    if (revision === 0) return null;
    await this.applied(revision);
    return revision;
  }

  async evict(key: InstanceKey, fencingToken: number): Promise<number | null> {
    this.writable();
    const revision = (await this.command('the eviction', (c) =>
      c.remove(this.keys, memberOf(key), key.service, key.id, 'evicted', this.feedMaxLen, tokenArg(fencingToken)),
    )) as number;
    if (revision < 0) throw new FencedError(`redis store: fencing token ${fencingToken} is not the current leader's; ${key.service}/${key.id} was not evicted`);
    if (revision === 0) return null;
    await this.applied(revision);
    return revision;
  }

  async expire(now: number, fencingToken: number): Promise<number> {
    this.writable();
    requireFinite(now, 'now');
    let removed = 0;
    let last = 0;
    for (;;) {
      const reply = await this.command('the expiry', (c) => c.expire(this.keys, tokenArg(fencingToken), now, EXPIRE_BATCH, this.feedMaxLen));
      const [count, revision, more] = reply as [number, number, number];
      if (count < 0) throw new FencedError(`redis store: fencing token ${fencingToken} is not the current leader's; nothing more was expired`);
      removed += count;
      if (revision > 0) last = revision;
      if (more === 0) break;
    }
    if (last > 0) await this.applied(last);
    return removed;
  }

  async putKv(key: string, value: string | null): Promise<number> {
    this.writable();
    kvArguments(key, value, null);
    const revision = (await this.command('the kv write', (c) => c.putKv(this.keys, this.feedMaxLen, key, value))) as number;
    await this.applied(revision);
    return revision;
  }

  async putKvIf(key: string, expected: string | null, value: string | null): Promise<number | null> {
    this.writable();
    kvArguments(key, value, expected);
    const revision = (await this.command('the kv write', (c) => c.putKv(this.keys, this.feedMaxLen, key, value, expected))) as number;
    if (revision === 0) return null;
    await this.applied(revision);
    return revision;
  }

  leadership(): LeadershipState {
    return this.view.state();
  }

  health(): StoreHealth {
    if (this.state === 'closing' || this.state === 'closed') return { reachable: false, error: 'redis store: closed' };
    const error = this.commandProblem ?? this.feedProblem;
    return error === null ? REACHABLE : { reachable: false, error };
  }

  /** Sends the pending renewals, resigns the leadership if held, stops the feed and disconnects. */
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
    clearInterval(this.renewTimer);
    clearTimeout(this.roundTimer);
    await this.round;
    await this.flushing;
    await this.flushRenewals();
    const term = this.view.ownTerm();
    if (term !== null) {
      await this.command('resigning the leadership', (c) => c.resign(this.keys, term)).catch((err: unknown) => {
        this.warn(`${(err as Error).message}; another replica takes over once the term lapses`);
      });
    }
    this.view.forget();
    await this.reader?.stop();
    this.client?.destroy();
    this.state = 'closed';
  }

  /** One election round: take the term when it is free, extend it when it is ours, else learn who holds it. */
  private async electionRound(): Promise<void> {
    const sentAt = performance.now();
    const holder = await this.command('the leader election', (c) => c.lead(this.keys, this.options.instanceId, this.options.leaderLeaseMs));
    this.view.observe(String(holder), sentAt);
  }

  private scheduleRound(): void {
    this.roundTimer = setTimeout(() => {
      this.round = this.electionRound()
        // health() says why a round failed; leadership() stops claiming a term that was not renewed in time.
        .catch(() => {})
        .finally(() => {
          this.round = null;
          if (this.state === 'open') this.scheduleRound();
        });
    }, this.options.leaderRenewMs).unref();
  }

  /** One ZADD with every renewal noted since the last flush; a failed batch is retried with the next. */
  private flushRenewals(): Promise<void> {
    if (this.flushing !== null || this.renewals.size === 0) return this.flushing ?? Promise.resolve();
    const { args, renewals } = this.renewals.take();
    this.flushing = this.command('sending lease renewals', (c) => c.sendCommand(['ZADD', this.keys.leases, ...args]))
      .then(
        () => {},
        () => this.renewals.restore(renewals),
      )
      .finally(() => {
        this.flushing = null;
      });
    return this.flushing;
  }

  /** Runs one redis command within commandTimeoutMs; every failure becomes a StoreUnavailableError. */
  private async command<T>(what: string, run: (client: RedisConnection) => Promise<T>): Promise<T> {
    const client = this.client;
    if (client === null) throw unavailable('not connected');
    try {
      const result = await withinMs(run(client), this.commandTimeoutMs);
      this.commandProblem = null;
      return result;
    } catch (err) {
      if (isRefusal(err)) throw unavailable(`redis refused ${what}: ${describe(err)}`, err);
      const offline = err instanceof ClientOfflineError || err instanceof ClientClosedError;
      const cause = offline && this.lastError !== null ? this.lastError : err;
      const problem = `redis at ${this.url} is unreachable (${describe(cause)})`;
      this.commandProblem = problem;
      throw unavailable(`${what} failed: ${problem}`, err);
    }
  }

  /** Waits (at most commandTimeoutMs) until this replica's sink has the change at `revision`. */
  private applied(revision: number): Promise<void> {
    return this.reader!.waitFor(revision, this.commandTimeoutMs);
  }

  private writable(): void {
    if (this.state === 'new' || this.state === 'opening') throw new Error('redis store: not open');
    if (this.state !== 'open') throw unavailable('closed; the write was not accepted');
  }

  private async connectFeed(signal: AbortSignal): Promise<RedisConnection> {
    let lastError: Error | null = null;
    const connection = newConnection(this.connectionSettings(':feed'), false, () => true);
    connection.on('error', (error: Error) => (lastError = error));
    const abandon = () => connection.destroy();
    signal.addEventListener('abort', abandon, { once: true });
    try {
      await connectWithin(connection, FEED_CONNECT_MS, () => lastError);
    } finally {
      signal.removeEventListener('abort', abandon);
    }
    if (signal.aborted) {
      connection.destroy();
      throw unavailable('closed');
    }
    return connection;
  }

  private connectionSettings(suffix: string) {
    const name = `maxine:${this.options.instanceId}${suffix}`.replace(/[^\x21-\x7e]/g, '_');
    return { url: this.options.url, tlsCaFile: this.options.tlsCaFile, name };
  }

  private onClientError(error: Error): void {
    this.lastError = error;
    if (!isRefusal(error)) this.commandProblem = `redis at ${this.url} is unreachable (${describe(error)})`;
  }
}

export function createRedisStore(options: RedisStoreOptions): RedisStore {
  return new RedisStore(options);
}

function checkUrl(url: unknown, tlsCaFile: string | undefined): void {
  let protocol: string;
  try {
    protocol = new URL(String(url)).protocol;
  } catch {
    throw new TypeError('redis store: url must be a redis:// or rediss:// URL');
  }
  if (protocol !== 'redis:' && protocol !== 'rediss:') throw new TypeError(`redis store: url must be redis:// or rediss://, not ${protocol}//`);
  if (tlsCaFile !== undefined && protocol !== 'rediss:') throw new TypeError('redis store: tlsCaFile needs a rediss:// (TLS) url');
}

/** Failures that reconnecting cannot fix (bad password, untrusted certificate): open() reports them at once. */
function isPermanent(error: Error): boolean {
  return isRefusal(error) || isCertificateError(error);
}

/** Tokens are positive integers; anything else can never match the leader key and is fenced. */
function tokenArg(token: number): string {
  return Number.isSafeInteger(token) && token > 0 ? String(token) : 'none';
}

