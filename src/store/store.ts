import type { CatalogEntry } from '../core/catalog.ts';
import type { Change, Snapshot } from '../core/changes.ts';
import type { Instance, InstanceKey } from '../core/instance.ts';

export const STORE_KINDS = ['local', 'shared-file', 'redis', 'etcd'] as const;
export type StoreKind = (typeof STORE_KINDS)[number];

/**
 * The store cannot take writes now (I/O failure, backend unreachable). The
 * write changed nothing durable, or its outcome is unknown; clients get a 503
 * and may retry. Any other error from a store is a bug.
 */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
}

/**
 * A leader-only write carried a fencing token that is no longer the current
 * leader's. The backend refused it and changed nothing.
 */
export class FencedError extends Error {
  override readonly name = 'FencedError';
}

/** Where a store delivers its change feed: the replica's catalog. */
export interface FeedSink {
  /** Replace the whole state (at open, and on resync after a gap). */
  reset(snapshot: Snapshot): void;
  /** Apply one change; changes arrive in strictly increasing revision order. */
  apply(change: Change): void;
  /**
   * A lease renewal seen in the feed (made on another replica). Only stores
   * whose leases live in the catalog (`leasesInCatalog`) deliver these.
   */
  renew(key: InstanceKey, renewedAt: number): void;
}

/** Read access a store may need to the state it feeds. */
export interface StateSource {
  /** Must be consistent: its revision is that of the last change applied. */
  snapshot(): Snapshot;
  /** The revision of the last change applied (0 for an empty catalog). */
  readonly revision: number;
  get(key: InstanceKey): Instance | undefined;
  /** A KV entry's value as last applied. */
  kvGet(key: string): string | undefined;
  /** Leases past their deadline (only meaningful when `leasesInCatalog`). */
  takeExpired(now: number): CatalogEntry[];
  /** Put back a lease taken by takeExpired whose removal failed. */
  retryExpiry(entry: CatalogEntry): void;
}

/** Who leads the replicas sharing a store, as this replica last saw it. */
export interface LeadershipState {
  readonly isLeader: boolean;
  /** MAXINE_INSTANCE_ID of the leader; null when there is none (or it is unknown). */
  readonly leaderId: string | null;
  /**
   * The current leader's fencing token, increasing with every new term; 0
   * when there is no leader. Leader-only writes carry it and the backend
   * refuses a token that is not the current one.
   */
  readonly fencingToken: number;
  /** Epoch ms at which this view was confirmed with the backend. */
  readonly observedAt: number;
}

export interface StoreHealth {
  /** False while the backend cannot be reached: reads come from the last known catalog. */
  readonly reachable: boolean;
  /** Why the backend is unreachable, null when it is reachable. */
  readonly error: string | null;
}

/** What health() answers while the backend is reachable: one shared object, as health() runs on every request. */
export const REACHABLE: StoreHealth = Object.freeze({ reachable: true, error: null });

/**
 * The one interface every backend implements; `src/store/conformance` is the
 * suite each of them passes. Writes resolve once the change is durable by the
 * store's own rules and has been delivered to the sink, so a caller that
 * awaits a write can read its effect from its own catalog.
 */
export interface RegistryStore {
  readonly kind: StoreKind;
  /**
   * True when lease deadlines are tracked by each replica's catalog and the
   * leader expires from there (renewals travel through the feed); false when
   * the backend keeps the deadlines itself (redis sorted set, etcd leases).
   */
  readonly leasesInCatalog: boolean;
  /**
   * Start delivering the feed into the sink. An empty source gets the whole
   * state (`reset`); a source already at a revision resumes after it when the
   * backend's history still reaches back that far, else it is reset.
   */
  open(sink: FeedSink, source: StateSource): Promise<void>;
  /**
   * Create or replace an instance. `instance.createRevision` is 0 for a new
   * instance; the store stamps the revisions and returns the stored object.
   */
  upsert(instance: Instance, renewedAt: number): Promise<Instance>;
  /**
   * Record a lease renewal, which the caller has already made in its own
   * catalog. Not a visible change: no revision, no feed entry. Never waits on
   * I/O; stores batch renewals and send them in the background.
   */
  renew(instance: Instance, renewedAt: number): void;
  /**
   * Compare-and-set: replace the stored instance with `instance` only while
   * the stored one is still at `instance.modifyRevision` (the version the
   * caller read and changed; only its status and health fields differ). The
   * lease is not renewed: `renewedAt` is the renewal the caller last saw,
   * recorded as is. With a fencing token the write is also leader-only, the
   * token checked in the same atomic step (FencedError when stale). Resolves
   * to the stored instance (new modifyRevision, createRevision kept), or
   * null when the instance is absent or was changed since: the caller reads
   * its catalog again and decides again.
   */
  update(instance: Instance, renewedAt: number, fencingToken: number | null): Promise<Instance | null>;
  /** Deregister an instance; resolves to the revision, or null if it was absent. */
  remove(key: InstanceKey, reason: 'deregistered'): Promise<number | null>;
  /**
   * Leader-only: remove every instance whose lease lapsed by `now`, fenced by
   * `fencingToken` (FencedError when it is stale). Resolves to how many were
   * removed. A store whose backend expires leases itself (etcd) has nothing
   * to do here.
   */
  expire(now: number, fencingToken: number): Promise<number>;
  /** Leader-only: remove one instance as evicted (health checks), fenced as `expire`. */
  evict(key: InstanceKey, fencingToken: number): Promise<number | null>;
  /** Shared runtime state (runtime config, later policies and users). null deletes. */
  putKv(key: string, value: string | null): Promise<number>;
  /**
   * Compare-and-set on one KV entry: writes `value` (null deletes) only while
   * the stored value is `expected` (null: absent), checked by the backend in
   * the same atomic step. Resolves to the revision, or null when the stored
   * value differs (nothing written). Two replicas acting on what they read
   * (a session refreshed on one and ended on another) cannot then overwrite
   * each other's decision.
   */
  putKvIf(key: string, expected: string | null, value: string | null): Promise<number | null>;
  leadership(): LeadershipState;
  /** Called on every request (the stale-read flag): no I/O, and no allocation while nothing changes. */
  health(): StoreHealth;
  /** Stop the feed, send pending renewals, give up leadership if held. */
  close(): Promise<void>;
}

/** What every store shared by several replicas needs besides its backend address. */
export interface ReplicaOptions {
  /** This replica's name in leadership (MAXINE_INSTANCE_ID); unique among the replicas. */
  readonly instanceId: string;
  /** How long a leader's term lasts without renewal (MAXINE_LEADER_ELECTION_LEASE_MS). */
  readonly leaderLeaseMs: number;
  /** How often the leader renews, and followers try to take over (MAXINE_LEADER_ELECTION_RENEW_MS). */
  readonly leaderRenewMs: number;
  /** How often batched lease renewals are sent to the backend (default 100 ms). */
  readonly renewFlushMs?: number;
  /** Epoch ms. */
  readonly clock?: () => number;
  readonly onWarning?: (message: string) => void;
}
