import type { Catalog } from '../core/catalog.ts';
import type { SelectionFilter } from '../core/filter.ts';
import {
  buildAddress,
  instanceOf,
  sameSpec,
  type AdminStatus,
  type Health,
  type Instance,
  type InstanceKey,
  type InstanceSpec,
} from '../core/instance.ts';
import { pickAvoiding } from '../core/selection/pick-avoiding.ts';
import type { LoadSignals, StrategyName } from '../core/selection/strategy.ts';
import {
  StoreUnavailableError,
  type LeadershipState,
  type RegistryStore,
  type StoreHealth,
  type StoreKind,
} from '../store/store.ts';

/** A registration refused for a reason the client can act on. */
export class RegistryError extends Error {
  constructor(
    message: string,
    readonly code: 'LIMIT_EXCEEDED' | 'STORE_UNAVAILABLE' | 'NOT_FOUND' | 'CONFLICT',
    readonly status: number,
  ) {
    super(message);
  }
}

export interface RegistryOptions {
  readonly store: RegistryStore;
  readonly catalog: Catalog;
  readonly clock: () => number;
  readonly maxInstancesPerService: number;
  /** Live load of instances (from the proxy, once it carries traffic). */
  readonly load: LoadSignals;
  readonly onExpiryError: (error: unknown) => void;
}

/** How often due leases are looked for: expiry lands within this of the deadline. */
const EXPIRY_TICK_MS = 250;

/**
 * What a client registers. Without a status, an existing instance keeps
 * the one it has: an operator's maintenance or drain survives the client's
 * periodic re-registration (original Maxine clients re-register as their
 * heartbeat), and a new instance starts `up`.
 */
export type Registration = Omit<InstanceSpec, 'status'> & { readonly status?: AdminStatus | undefined };

/** A health verdict of the active checks, written by the leader. */
export interface HealthChange {
  readonly health: Health;
  readonly reason: string;
  /** A `starting` instance passed its first check: it becomes `up`. */
  readonly promote: boolean;
}

/** How often a status change is retried when a concurrent write changed the instance first. */
const UPDATE_ATTEMPTS = 3;

export interface RegisterResult {
  readonly instance: Instance;
  /** False when the registration changed nothing visible and only renewed the lease. */
  readonly changed: boolean;
}

/**
 * The write side of a replica: turns API calls into store writes (which come
 * back through the change feed into the catalog) and drives lease expiry.
 * Reads go straight to the catalog.
 */
export class Registry {
  private expiryTimer: NodeJS.Timeout | undefined;
  private expiring = false;
  private readonly random = Math.random;

  constructor(private readonly options: RegistryOptions) {}

  get catalog(): Catalog {
    return this.options.catalog;
  }

  get storeKind(): StoreKind {
    return this.options.store.kind;
  }

  leadership(): LeadershipState {
    return this.options.store.leadership();
  }

  /** Whether the store's backend is reachable; while it is not, reads come from the last known catalog. */
  storeHealth(): StoreHealth {
    return this.options.store.health();
  }

  async start(): Promise<void> {
    await this.options.store.open(this.options.catalog, this.options.catalog);
    this.expiryTimer = setInterval(() => this.expire(), EXPIRY_TICK_MS);
    this.expiryTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.expiryTimer);
    await this.options.store.close();
  }

  /** Upsert that also renews the lease; only a visible change reaches the store as a write. */
  async register(registration: Registration): Promise<RegisterResult> {
    const { catalog, store, clock } = this.options;
    const now = clock();
    const existing = catalog.entry(registration);
    const previous = existing?.instance;
    const spec: InstanceSpec = { ...registration, status: registration.status ?? previous?.status ?? 'up' };
    if (existing !== undefined && sameSpec(existing.instance, spec)) {
      this.renewEntry(spec, now);
      return { instance: existing.instance, changed: false };
    }
    if (existing === undefined) {
      const size = catalog.service(spec.service)?.entries.size ?? 0;
      if (size >= this.options.maxInstancesPerService) {
        throw new RegistryError(
          `Service "${spec.service}" already has ${size} instances, the most one service may have (maxInstancesPerService).`,
          'LIMIT_EXCEEDED',
          409,
        );
      }
    }
    const statusKept = previous !== undefined && previous.status === spec.status;
    // Health is the checks' verdict: a re-registration (or a heartbeat) never clears it, only `rise` passing probes do.
    const instance = instanceOf(spec, {
      statusReason: statusKept ? previous.statusReason : '',
      statusChangedAt: statusKept ? previous.statusChangedAt : now,
      health: previous?.health ?? 'passing',
      healthReason: previous?.healthReason ?? '',
      healthChangedAt: previous?.healthChangedAt ?? now,
      registeredAt: previous?.registeredAt ?? now,
      createRevision: previous?.createRevision ?? 0,
      modifyRevision: 0,
      address: buildAddress(spec.scheme, spec.host, spec.port, spec.path),
    });
    const stored = await this.write(() => store.upsert(instance, now));
    return { instance: stored, changed: true };
  }

  /** Renew a lease; undefined when the instance is unknown. Never a store write of its own. */
  heartbeat(key: InstanceKey): Instance | undefined {
    return this.renewEntry(key, this.options.clock());
  }

  async deregister(key: InstanceKey): Promise<Instance | undefined> {
    const instance = this.options.catalog.get(key);
    if (instance === undefined) return undefined;
    await this.write(() => this.options.store.remove(key, 'deregistered'));
    return instance;
  }

  /**
   * An operator's status change (maintenance on/off, drain, up). Only the
   * status fields change; when a concurrent write changed the instance
   * first, the change is made again on top of it.
   */
  async setStatus(key: InstanceKey, status: AdminStatus, reason: string): Promise<Instance> {
    const { catalog, store, clock } = this.options;
    for (let attempt = 1; ; attempt++) {
      const entry = catalog.entry(key);
      if (entry === undefined) {
        throw new RegistryError(`No instance "${key.id}" is registered for service "${key.service}".`, 'NOT_FOUND', 404);
      }
      const seen = entry.instance;
      if (seen.status === status && seen.statusReason === reason) return seen;
      const changed: Instance = { ...seen, status, statusReason: reason, statusChangedAt: clock() };
      const stored = await this.write(() => store.update(changed, entry.renewedAt, null));
      if (stored !== null) return stored;
      if (attempt === UPDATE_ATTEMPTS) {
        throw new RegistryError(`${key.service}/${key.id} kept changing under concurrent writes; try again.`, 'CONFLICT', 409);
      }
      // The store had a newer version than this catalog: let the feed deliver it, then decide again.
      await new Promise((resolve) => setTimeout(resolve, 10 * attempt));
    }
  }

  /**
   * Leader-only: record the active checks' verdict on the version of the
   * instance they judged, fenced by the leader's token. Null when the
   * instance changed or went away meanwhile; the next probe judges again.
   */
  async setHealth(seen: Instance, change: HealthChange, fencingToken: number): Promise<Instance | null> {
    const { catalog, store, clock } = this.options;
    const entry = catalog.entry(seen);
    if (entry === undefined || entry.instance.modifyRevision !== seen.modifyRevision) return null;
    const now = clock();
    const healthChanged = seen.health !== change.health;
    const changed: Instance = {
      ...seen,
      health: change.health,
      healthReason: change.reason,
      healthChangedAt: healthChanged ? now : seen.healthChangedAt,
      ...(change.promote && seen.status === 'starting' ? { status: 'up', statusReason: 'passed its first health check', statusChangedAt: now } : {}),
    };
    return await this.write(() => store.update(changed, entry.renewedAt, fencingToken));
  }

  /** Leader-only: remove an instance the checks found critical for too long, fenced by the leader's token. */
  async evict(key: InstanceKey, fencingToken: number): Promise<number | null> {
    return await this.write(() => this.options.store.evict(key, fencingToken));
  }

  /** `key` is what the hashing strategies hash (callers need not compute it for the others). */
  discover(service: string, filter: SelectionFilter, strategy: StrategyName, key: string, exclude?: ReadonlySet<string>): Instance | undefined {
    const ctx = { key, random: this.random, load: this.options.load };
    // `exclude` (instanceKey strings) is the proxy's: instances already tried or with an open breaker.
    if (exclude !== undefined && exclude.size > 0) return pickAvoiding(this.options.catalog, service, filter, strategy, ctx, exclude);
    return this.options.catalog.pick(service, filter, strategy, ctx);
  }

  async putKv(key: string, value: string | null): Promise<void> {
    await this.write(() => this.options.store.putKv(key, value));
  }

  /** Compare-and-set (the store's putKvIf): resolves to whether the write was made. */
  async putKvIf(key: string, expected: string | null, value: string | null): Promise<boolean> {
    return (await this.write(() => this.options.store.putKvIf(key, expected, value))) !== null;
  }

  private renewEntry(key: InstanceKey, now: number): Instance | undefined {
    const entry = this.options.catalog.renew(key, now);
    if (entry === undefined) return undefined;
    this.options.store.renew(entry.instance, now);
    return entry.instance;
  }

  private async write<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error;
      throw new RegistryError(`The registry store could not save the change: ${error.message}`, 'STORE_UNAVAILABLE', 503);
    }
  }

  /**
   * Only the leader expires, and the store fences the write with the leader's
   * token, so a replica that lost leadership without knowing it (paused, cut
   * off) cannot remove anything. One run at a time.
   */
  private expire(): void {
    const { store, clock } = this.options;
    const leadership = store.leadership();
    if (this.expiring || !leadership.isLeader) return;
    this.expiring = true;
    store
      .expire(clock(), leadership.fencingToken)
      .catch((error: unknown) => this.options.onExpiryError(error))
      .finally(() => {
        this.expiring = false;
      });
  }
}
