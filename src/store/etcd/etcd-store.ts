import { EtcdLeaseInvalidError, type Etcd3, type IKeyValue, type ITxnRequest } from 'etcd3';
import type { Instance, InstanceKey } from '../../core/instance.ts';
import {
  FencedError,
  StoreUnavailableError,
  type FeedSink,
  type LeadershipState,
  type RegistryStore,
  type ReplicaOptions,
  type StateSource,
  type StoreHealth,
} from '../store.ts';
import { createClient, describe, until } from './client.ts';
import { Election } from './election.ts';
import { Feed } from './feed.ts';
import { KeepAlives } from './keep-alives.ts';
import { KeyLayout } from './keys.ts';
import { Reachability } from './reachability.ts';
import { decodeRecord, encodeRecord, leaseSeconds, validInstance, withRevisions } from './record.ts';
import { TombstoneLease } from './tombstone-lease.ts';
import { argumentChecks } from '../argument-checks.ts';

const { positive, kvArguments } = argumentChecks('etcd store');

export interface EtcdStoreOptions extends ReplicaOptions {
  /** Client URLs of the etcd members (http://host:port); calls fail over between them. */
  readonly endpoints: readonly string[];
  /** Every key the store writes starts with this (default 'maxine/'); replicas sharing a registry use the same one. */
  readonly keyPrefix?: string;
}

/**
 * A write's etcd calls end within this; its feed wait then has at least
 * FEED_GRACE_MS more, so a write answers (503 included) within 2 s however
 * etcd behaves, and a slow but successful call still gets to see its change
 * delivered.
 */
const WRITE_CALLS_MS = 1700;
const FEED_GRACE_MS = 250;
/** open() gives up on an unreachable cluster after this. */
const OPEN_TIMEOUT_MS = 9000;
/** Tries of an upsert whose view of the instance's lease turned out stale (concurrent registrations). */
const UPSERT_ATTEMPTS = 3;

type Removal = 'deregistered' | 'evicted';

interface Live {
  readonly source: StateSource;
  readonly feed: Feed;
}

/**
 * The etcd store (kind 'etcd'): several replicas share one etcd cluster.
 * Instances are keys bound to etcd leases, so etcd itself expires them; the
 * change feed is an etcd watch and etcd's revision is the registry's
 * revision. See feed.ts (ordering, resync), keep-alives.ts (renewals),
 * election.ts (leadership) and keys.ts (key layout).
 *
 * Writes are etcd transactions; each resolves once this replica's feed has
 * delivered the revision it made, and answers within 2 s: with a
 * StoreUnavailableError when etcd could not be reached, or the outcome is
 * unknown (see WRITE_CALLS_MS).
 */
export class EtcdStore implements RegistryStore {
  readonly kind = 'etcd' as const;
  readonly leasesInCatalog = false;

  private readonly client: Etcd3;
  private readonly keys: KeyLayout;
  private readonly reachability = new Reachability();
  private readonly keepAlives: KeepAlives;
  private readonly election: Election;
  private readonly tombstones: TombstoneLease;
  private readonly warn: (message: string) => void;
  private state: 'new' | 'opening' | 'open' | 'closing' | 'closed' = 'new';
  private live: Live | null = null;
  private openRun: Promise<void> | null = null;
  private closeRun: Promise<void> | null = null;

  constructor(private readonly options: EtcdStoreOptions) {
    const { endpoints, instanceId, leaderLeaseMs, leaderRenewMs } = options;
    if (!Array.isArray(endpoints) || endpoints.length === 0 || !endpoints.every((e) => typeof e === 'string' && e !== '')) {
      throw new TypeError('etcd store: endpoints must be a non-empty list of URLs');
    }
    if (typeof instanceId !== 'string' || instanceId === '') throw new TypeError('etcd store: instanceId is required');
    positive('leaderLeaseMs', leaderLeaseMs);
    positive('leaderRenewMs', leaderRenewMs);
    if (leaderRenewMs >= leaderLeaseMs) throw new TypeError('etcd store: leaderRenewMs must be shorter than leaderLeaseMs');
    const renewFlushMs = positive('renewFlushMs', options.renewFlushMs ?? 100);
    this.keys = new KeyLayout(options.keyPrefix ?? 'maxine/');
    this.warn = options.onWarning ?? ((message) => process.emitWarning(message, { code: 'MAXINE_STORE' }));
    this.client = createClient(endpoints);
    this.keepAlives = new KeepAlives(this.client, renewFlushMs, (error) => this.reachability.failed(error));
    this.election = new Election(this.client, this.keys, this.keepAlives, this.reachability, {
      instanceId,
      leaderLeaseMs,
      leaderRenewMs,
      clock: options.clock ?? Date.now,
    });
    this.tombstones = new TombstoneLease(this.client);
  }

  open(sink: FeedSink, source: StateSource): Promise<void> {
    if (this.state !== 'new') return Promise.reject(new Error('etcd store: open() can only be called once'));
    this.state = 'opening';
    this.openRun = this.start(sink, source);
    return this.openRun;
  }

  private async start(sink: FeedSink, source: StateSource): Promise<void> {
    const feed = new Feed(this.client, this.keys, sink, {
      reachability: this.reachability,
      warn: this.warn,
      onLeaderGone: () => this.election.poke(),
    });
    try {
      await feed.start(source.revision, Date.now() + OPEN_TIMEOUT_MS);
    } catch (err) {
      this.state = 'closed';
      await feed.close();
      this.client.close();
      this.reachability.failed(err);
      throw new StoreUnavailableError(`etcd store: cannot reach etcd at ${this.options.endpoints.join(', ')}: ${describe(err)}`, {
        cause: err,
      });
    }
    this.live = { source, feed };
    this.reachability.ok();
    this.keepAlives.start();
    this.state = 'open';
    await this.election.start();
  }

  async upsert(instance: Instance, renewedAt: number): Promise<Instance> {
    const live = this.writable();
    const valid = validInstance(instance);
    const value = encodeRecord(valid, renewedAt);
    return this.write(`cannot register ${valid.service}/${valid.id}`, (deadline) => this.put(live, valid, value, deadline));
  }

  /**
   * Puts the record under a lease: the instance's current one when its TTL
   * is unchanged (also kept alive, as a re-registration renews), else a new
   * one, revoking the old after the put. The put is conditional on the key
   * still having the lease this replica believes it has; when another
   * replica changed it meanwhile, the answer says which lease it has now and
   * the put is tried again.
   */
  private async put(live: Live, instance: Instance, value: Buffer, deadline: number): Promise<Instance> {
    const key = this.keys.instance(instance);
    const ttl = leaseSeconds(instance.ttlMs);
    let held = heldLease(live.feed.leaseOf(instance), live.source.get(instance));
    let granted: string | null = null;
    for (let attempt = 1; ; attempt++) {
      const reuse = held !== null && held.ttl === ttl;
      const lease = reuse ? held!.lease : (granted ??= await this.grant(ttl, deadline));
      if (reuse) this.keepAlives.renew(lease);
      const request: ITxnRequest = {
        compare: [{ key, target: 'Lease', result: 'Equal', lease: held?.lease ?? '0' }],
        success: [{ request_put: { key, value, lease, prev_kv: true } }],
        failure: [{ request_range: { key } }],
      };
      let result;
      try {
        result = await this.client.kv.txn(request, until(deadline));
      } catch (err) {
        if (!(err instanceof EtcdLeaseInvalidError) || attempt === UPSERT_ATTEMPTS) throw err;
        // The lease went away between our read of it and the put: start again from what etcd has.
        if (lease === granted) granted = null;
        held = held === null ? null : { lease: held.lease, ttl: 0 };
        continue;
      }
      if (result.succeeded) {
        if (held !== null && held.lease !== lease) this.revokeQuietly(held.lease);
        if (granted !== null && granted !== lease) this.revokeQuietly(granted);
        const revision = Number(result.header.revision);
        const previous = result.responses[0]?.response_put.prev_kv;
        await live.feed.reached(revision, deadline + FEED_GRACE_MS - Date.now());
        return withRevisions(instance, previous ? Number(previous.create_revision) : revision, revision);
      }
      if (attempt === UPSERT_ATTEMPTS) {
        if (granted !== null) this.revokeQuietly(granted);
        throw new StoreUnavailableError(`etcd store: ${instance.service}/${instance.id} kept changing under concurrent registrations; try again`);
      }
      held = leaseOfRecord(result.responses[0]?.response_range.kvs[0], instance);
    }
  }

  async update(instance: Instance, renewedAt: number, fencingToken: number | null): Promise<Instance | null> {
    const live = this.writable();
    if (fencingToken !== null) checkToken(fencingToken);
    const valid = validInstance(instance);
    const value = encodeRecord(valid, renewedAt);
    // The catalog's modifyRevision is the key's mod_revision; no key was ever put at 0 or below.
    if (!Number.isSafeInteger(instance.modifyRevision) || instance.modifyRevision <= 0) return null;
    return this.write(`cannot update ${valid.service}/${valid.id}`, (deadline) =>
      this.compareAndPut(live, valid, value, instance.modifyRevision, fencingToken, deadline),
    );
  }

  /**
   * Puts the record only while the key's mod_revision is still `modifyRevision`,
   * keeping the key's lease (ignore_lease), so the update neither renews nor
   * shortens it. Fenced as delete() fences an eviction: the transaction is
   * nested in one that compares the leader key's create_revision with the token.
   */
  private async compareAndPut(
    live: Live,
    instance: Instance,
    value: Buffer,
    modifyRevision: number,
    fencingToken: number | null,
    deadline: number,
  ): Promise<Instance | null> {
    const key = this.keys.instance(instance);
    const put: ITxnRequest = {
      compare: [{ key, target: 'Mod', result: 'Equal', mod_revision: modifyRevision }],
      success: [{ request_put: { key, value, ignore_lease: true, prev_kv: true } }],
      failure: [],
    };
    const request: ITxnRequest =
      fencingToken === null
        ? put
        : { compare: [{ key: this.keys.leader, target: 'Create', result: 'Equal', create_revision: fencingToken }], success: [{ request_txn: put }], failure: [] };
    const result = await this.client.kv.txn(request, until(deadline));
    if (!result.succeeded && fencingToken !== null) throw fenced(fencingToken, 'update');
    const inner = fencingToken === null ? result : result.responses[0]?.response_txn;
    if (inner === undefined || !inner.succeeded) return null;
    // The compare held, so the key existed and etcd returns the record the put replaced.
    const createRevision = Number(inner.responses[0]!.response_put.prev_kv.create_revision);
    const revision = Number(result.header.revision);
    await live.feed.reached(revision, deadline + FEED_GRACE_MS - Date.now());
    return withRevisions(instance, createRevision, revision);
  }

  renew(instance: Instance, _renewedAt: number): void {
    // etcd counts a lease's TTL from when it receives the keep-alive, so the
    // renewal time itself is not sent.
    if (this.state !== 'open') return;
    const lease = this.live!.feed.leaseOf(instance);
    if (lease !== undefined) this.keepAlives.renew(lease);
  }

  async remove(key: InstanceKey, reason: 'deregistered'): Promise<number | null> {
    const live = this.writable();
    return this.write(`cannot deregister ${key.service}/${key.id}`, (deadline) => this.delete(live, key, reason, null, deadline));
  }

  /**
   * Nothing to remove: etcd deletes an instance's key itself when its lease
   * lapses, and the feed reports that as 'expired'. The token is still
   * checked against the leader key, so a stale leader learns it is one.
   */
  async expire(_now: number, fencingToken: number): Promise<number> {
    this.writable();
    checkToken(fencingToken);
    return this.write('cannot check the fencing token', async (deadline) => {
      const { kvs } = await this.client.kv.range({ key: this.keys.leader }, until(deadline));
      if (kvs[0] === undefined || Number(kvs[0].create_revision) !== fencingToken) throw fenced(fencingToken, 'expire');
      return 0;
    });
  }

  async evict(key: InstanceKey, fencingToken: number): Promise<number | null> {
    const live = this.writable();
    checkToken(fencingToken);
    return this.write(`cannot evict ${key.service}/${key.id}`, (deadline) => this.delete(live, key, 'evicted', fencingToken, deadline));
  }

  /**
   * Deletes the instance key and puts its tombstone (the reason) in one
   * transaction, so the watch shows both in the same revision; an evict
   * nests that transaction in one that compares the leader key's
   * create_revision with the fencing token.
   */
  private async delete(live: Live, key: InstanceKey, reason: Removal, fencingToken: number | null, deadline: number): Promise<number | null> {
    const instanceKey = this.keys.instance(key);
    for (let attempt = 1; ; attempt++) {
      const lease = await this.tombstones.get(deadline);
      const removal: ITxnRequest = {
        compare: [{ key: instanceKey, target: 'Version', result: 'Greater', version: 0 }],
        success: [
          { request_put: { key: this.keys.tombstone(key), value: Buffer.from(reason), lease } },
          { request_delete_range: { key: instanceKey, prev_kv: true } },
        ],
        failure: [],
      };
      const request: ITxnRequest =
        fencingToken === null
          ? removal
          : { compare: [{ key: this.keys.leader, target: 'Create', result: 'Equal', create_revision: fencingToken }], success: [{ request_txn: removal }], failure: [] };
      let result;
      try {
        result = await this.client.kv.txn(request, until(deadline));
      } catch (err) {
        if (!(err instanceof EtcdLeaseInvalidError) || attempt > 1) throw err;
        this.tombstones.forget(lease);
        continue;
      }
      if (!result.succeeded && fencingToken !== null) throw fenced(fencingToken, 'evict');
      const inner = fencingToken === null ? result : result.responses[0]?.response_txn;
      if (inner === undefined || !inner.succeeded) return null;
      // The instance's lease holds no key any more; free it now rather than when it lapses.
      const previousLease = inner.responses[1]?.response_delete_range.prev_kvs[0]?.lease;
      if (previousLease !== undefined) this.revokeQuietly(previousLease);
      const revision = Number(result.header.revision);
      await live.feed.reached(revision, deadline + FEED_GRACE_MS - Date.now());
      return revision;
    }
  }

  async putKv(key: string, value: string | null): Promise<number> {
    const live = this.writable();
    kvArguments(key, value, null);
    return this.write(`cannot save ${JSON.stringify(key)}`, async (deadline) => {
      let revision: number;
      if (value === null) {
        const result = await this.client.kv.deleteRange({ key: this.keys.kv(key) }, until(deadline));
        // Deleting what is not there changes nothing: no revision to wait for.
        if (result.deleted === '0') return live.source.revision;
        revision = Number(result.header.revision);
      } else {
        revision = Number((await this.client.kv.put({ key: this.keys.kv(key), value: Buffer.from(value) }, until(deadline))).header.revision);
      }
      await live.feed.reached(revision, deadline + FEED_GRACE_MS - Date.now());
      return revision;
    });
  }

  async putKvIf(key: string, expected: string | null, value: string | null): Promise<number | null> {
    const live = this.writable();
    kvArguments(key, value, expected);
    const stored = this.keys.kv(key);
    return this.write(`cannot save ${JSON.stringify(key)}`, async (deadline) => {
      const request: ITxnRequest = {
        // etcd fails a Value comparison on a missing key, so "absent" is compared as version 0.
        compare: [
          expected === null
            ? { key: stored, target: 'Version', result: 'Equal', version: 0 }
            : { key: stored, target: 'Value', result: 'Equal', value: Buffer.from(expected) },
        ],
        success: [value === null ? { request_delete_range: { key: stored } } : { request_put: { key: stored, value: Buffer.from(value) } }],
        failure: [],
      };
      const result = await this.client.kv.txn(request, until(deadline));
      if (!result.succeeded) return null;
      // Deleting what is not there changes nothing: no revision to wait for.
      if (value === null && result.responses[0]?.response_delete_range.deleted === '0') return live.source.revision;
      const revision = Number(result.header.revision);
      await live.feed.reached(revision, deadline + FEED_GRACE_MS - Date.now());
      return revision;
    });
  }

  leadership(): LeadershipState {
    return this.election.view();
  }

  health(): StoreHealth {
    return this.reachability.health();
  }

  /** Gives up leadership (another replica takes over at once), sends pending renewals, stops the feed. */
  close(): Promise<void> {
    this.closeRun ??= this.shutdown();
    return this.closeRun;
  }

  private async shutdown(): Promise<void> {
    await this.openRun?.catch(() => {});
    if (this.state !== 'open') {
      this.state = 'closed';
      this.client.close();
      return;
    }
    this.state = 'closing';
    await this.election.resign();
    await this.keepAlives.close();
    await this.live!.feed.close();
    this.client.close();
    this.state = 'closed';
  }

  private writable(): Live {
    if (this.state === 'new' || this.state === 'opening') throw new Error('etcd store: not open');
    if (this.state !== 'open' || this.live === null) throw new StoreUnavailableError('etcd store: closed; the write was not accepted');
    return this.live;
  }

  /** Runs one write with the deadline of its etcd calls; etcd failures become StoreUnavailableError and mark the store unreachable. */
  private async write<T>(what: string, run: (deadline: number) => Promise<T>): Promise<T> {
    try {
      const result = await run(Date.now() + WRITE_CALLS_MS);
      this.reachability.ok();
      return result;
    } catch (err) {
      if (err instanceof FencedError || err instanceof StoreUnavailableError) throw err;
      this.reachability.failed(err);
      throw new StoreUnavailableError(`etcd store: ${what}: ${describe(err)}`, { cause: err });
    }
  }

  private async grant(ttl: number, deadline: number): Promise<string> {
    return (await this.client.leaseClient.leaseGrant({ TTL: ttl }, until(deadline))).ID;
  }

  private revokeQuietly(lease: string): void {
    if (lease === '0') return;
    this.client.leaseClient.leaseRevoke({ ID: lease }).catch(() => {
      // A lease nobody keeps alive lapses on its own.
    });
  }
}

export function createEtcdStore(options: EtcdStoreOptions): EtcdStore {
  return new EtcdStore(options);
}

interface HeldLease {
  readonly lease: string;
  /** The lease's TTL in seconds (0: unknown, so never reused). */
  readonly ttl: number;
}

function heldLease(lease: string | undefined, current: Instance | undefined): HeldLease | null {
  if (lease === undefined || current === undefined) return null;
  return { lease, ttl: leaseSeconds(current.ttlMs) };
}

/** The lease the instance's key has according to etcd's answer (null: no key). */
function leaseOfRecord(kv: IKeyValue | undefined, key: InstanceKey): HeldLease | null {
  if (kv === undefined) return null;
  try {
    return { lease: kv.lease, ttl: leaseSeconds(decodeRecord(kv.value, key, 0, 0).instance.ttlMs) };
  } catch {
    return { lease: kv.lease, ttl: 0 };
  }
}

function checkToken(fencingToken: number): void {
  if (!Number.isSafeInteger(fencingToken) || fencingToken <= 0) {
    throw new FencedError(`etcd store: ${String(fencingToken)} is not a fencing token (no leader holds it)`);
  }
}

function fenced(fencingToken: number, what: string): FencedError {
  return new FencedError(`etcd store: fencing token ${fencingToken} is not the current leader's; the ${what} was refused`);
}

