import type { Change, RemoveReason, Snapshot } from '../core/changes.ts';
import type { Instance, InstanceKey } from '../core/instance.ts';

export const STORE_KINDS = ['local'] as const;
export type StoreKind = (typeof STORE_KINDS)[number];

/**
 * The store cannot take writes now (I/O failure, backend unreachable). The
 * write changed nothing durable; clients get a 503 and may retry. Any other
 * error from a store is a bug.
 */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
}

/** Where a store delivers its change feed: the replica's catalog. */
export interface FeedSink {
  /** Replace the whole state (at open, and on resync after a gap). */
  reset(snapshot: Snapshot): void;
  /** Apply one change; changes arrive in strictly increasing revision order. */
  apply(change: Change): void;
}

/** Read access a store may need to the state it feeds (for snapshots). */
export interface StateSource {
  /** Must be consistent: its revision is that of the last change applied. */
  snapshot(): Snapshot;
  get(key: InstanceKey): Instance | undefined;
}

/**
 * The one interface every backend implements. Writes resolve once the change
 * is durable by the store's own rules and has been delivered to the sink, so
 * a caller that awaits a write can read its effect from the catalog.
 */
export interface RegistryStore {
  readonly kind: StoreKind;
  /** Load persisted state into the sink and start delivering the feed. */
  open(sink: FeedSink, source: StateSource): Promise<void>;
  /**
   * Create or replace an instance. `instance.createRevision` is 0 for a new
   * instance; the store stamps the revisions and returns the stored object.
   */
  upsert(instance: Instance, renewedAt: number): Promise<Instance>;
  /** Record a lease renewal. Not a visible change: no revision, no feed entry. */
  renew(instance: Instance, renewedAt: number): void;
  /** Remove an instance; resolves to the revision, or null if it was absent. */
  remove(key: InstanceKey, reason: RemoveReason): Promise<number | null>;
  /** Shared runtime state (runtime config, later policies and users). null deletes. */
  putKv(key: string, value: string | null): Promise<number>;
  close(): Promise<void>;
}
