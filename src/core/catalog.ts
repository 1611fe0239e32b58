import type { Change, Snapshot } from './changes.ts';
import { EventRing, type EventsSince, type EventType, type LocalEvent, type RegistryEvent } from './events.ts';
import { ExpiryQueue, type Lease } from './expiry.ts';
import { filterKey, isEmptyFilter, matchesFilter, type SelectionFilter } from './filter.ts';
import { isEligible, sameSpec, type Instance, type InstanceKey } from './instance.ts';
import { getStrategy } from './selection/index.ts';
import type { PickContext, Picker, StrategyName } from './selection/strategy.ts';

/** One instance in the catalog with its lease; kept across upserts of the same id. */
export interface CatalogEntry extends Lease {
  instance: Instance;
  /** Epoch ms of the last renewal (registration, heartbeat or re-registration). */
  renewedAt: number;
  /** Ejected from this replica's picks by outlier detection (local state, not in the store). */
  ejected: boolean;
}

export interface ServiceView {
  readonly name: string;
  /** Revision of the last visible change to this service. */
  readonly revision: number;
  readonly entries: ReadonlyMap<string, CatalogEntry>;
  /** Instances that may be picked, ordered by id. */
  eligible(): readonly Instance[];
}

export interface CatalogListener {
  event(event: RegistryEvent): void;
  /** The whole state was replaced (start-up or resync); watchers must resync. */
  reset(revision: number): void;
  /** A change to this replica's own view (an ejection); optional for listeners that only follow the registry. */
  local?(event: LocalEvent): void;
}

/** Filtered views per service are cached; a service with more distinct filters starts over. */
const MAX_VIEWS_PER_SERVICE = 64;

interface SelectionView {
  readonly instances: readonly Instance[];
  readonly pickers: Map<StrategyName, Picker>;
}

class ServiceState implements ServiceView {
  revision = 0;
  readonly entries = new Map<string, CatalogEntry>();
  private eligibleCache: readonly Instance[] | null = null;
  private readonly views = new Map<string, SelectionView>();
  private allView: SelectionView | null = null;

  constructor(readonly name: string) {}

  /** Called on every visible change: prepared selection state is rebuilt lazily. */
  changed(revision: number): void {
    this.revision = revision;
    this.invalidate();
  }

  /** The eligible set changed without a registry change (an ejection on this replica). */
  invalidate(): void {
    this.eligibleCache = null;
    this.allView = null;
    this.views.clear();
  }

  eligible(): readonly Instance[] {
    if (this.eligibleCache === null) {
      const list: Instance[] = [];
      for (const entry of this.entries.values()) if (isEligible(entry.instance) && !entry.ejected) list.push(entry.instance);
      list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      this.eligibleCache = Object.freeze(list);
    }
    return this.eligibleCache;
  }

  view(filter: SelectionFilter): SelectionView {
    if (isEmptyFilter(filter)) {
      this.allView ??= { instances: this.eligible(), pickers: new Map() };
      return this.allView;
    }
    const key = filterKey(filter);
    let view = this.views.get(key);
    if (view === undefined) {
      if (this.views.size >= MAX_VIEWS_PER_SERVICE) this.views.clear();
      view = { instances: this.eligible().filter((i) => matchesFilter(i, filter)), pickers: new Map() };
      this.views.set(key, view);
    }
    return view;
  }
}

/**
 * The replica's whole registry in memory, fed only by the store's change
 * feed. Every read (discover, list, watch) is answered from here. Pure: no
 * timers and no I/O; the caller supplies the clock.
 */
export class Catalog {
  private readonly services = new Map<string, ServiceState>();
  private readonly kv = new Map<string, string>();
  private readonly leases = new ExpiryQueue<CatalogEntry>();
  private readonly ring: EventRing;
  private readonly listeners = new Set<CatalogListener>();
  private currentRevision = 0;
  private instances = 0;

  /**
   * `trackLeases` is false when the store's backend keeps lease deadlines
   * itself (redis, etcd): nothing would ever take expired leases from the
   * queue, so nothing is queued. `privateKv` names KV keys no watcher may
   * see (credentials, sessions): their changes reach this replica's
   * listeners but stay out of the event ring, so a burst of sign-ins does
   * not push registry changes out of the window watchers resume from.
   */
  constructor(
    eventRingSize: number,
    private readonly clock: () => number = Date.now,
    private readonly trackLeases = true,
    private readonly privateKv: (key: string) => boolean = () => false,
  ) {
    this.ring = new EventRing(eventRingSize);
  }

  get revision(): number {
    return this.currentRevision;
  }

  get instanceCount(): number {
    return this.instances;
  }

  get serviceCount(): number {
    return this.services.size;
  }

  service(name: string): ServiceView | undefined {
    return this.services.get(name);
  }

  allServices(): IterableIterator<ServiceView> {
    return this.services.values();
  }

  get(key: InstanceKey): Instance | undefined {
    return this.services.get(key.service)?.entries.get(key.id)?.instance;
  }

  entry(key: InstanceKey): CatalogEntry | undefined {
    return this.services.get(key.service)?.entries.get(key.id);
  }

  kvGet(key: string): string | undefined {
    return this.kv.get(key);
  }

  /** Every KV entry, for readers that rebuild their view after a reset. */
  kvEntries(): IterableIterator<[string, string]> {
    return this.kv.entries();
  }

  /** Pick an eligible instance, or undefined when none matches. */
  pick(service: string, filter: SelectionFilter, strategy: StrategyName, ctx: PickContext): Instance | undefined {
    const state = this.services.get(service);
    if (state === undefined) return undefined;
    const view = state.view(filter);
    if (view.instances.length === 0) return undefined;
    let picker = view.pickers.get(strategy);
    if (picker === undefined) {
      picker = getStrategy(strategy).build(view.instances);
      view.pickers.set(strategy, picker);
    }
    return picker.pick(ctx);
  }

  /** Extend a lease. Not a visible change: no revision, no event. */
  renew(key: InstanceKey, now: number): CatalogEntry | undefined {
    const entry = this.entry(key);
    if (entry === undefined) return undefined;
    entry.renewedAt = now;
    entry.deadline = now + entry.instance.ttlMs;
    return entry;
  }

  /** Leases past their deadline; they stay in the catalog until the store removes them. */
  takeExpired(now: number): CatalogEntry[] {
    return this.leases.takeExpired(now);
  }

  /** Put a lease taken by takeExpired back in the queue (its removal failed). */
  retryExpiry(entry: CatalogEntry): void {
    if (entry.live) this.leases.schedule(entry);
  }

  /**
   * Eject an instance from this replica's picks, or restore it (outlier
   * detection). Not a registry change: no revision, nothing in the store, and
   * the flag survives re-registrations of the same id but not its removal.
   * False when the instance is unknown or already in that state.
   */
  setEjected(key: InstanceKey, ejected: boolean, reason: string): boolean {
    const state = this.services.get(key.service);
    const entry = state?.entries.get(key.id);
    if (state === undefined || entry === undefined || entry.ejected === ejected) return false;
    entry.ejected = ejected;
    state.invalidate();
    const event: LocalEvent = {
      type: ejected ? 'instance_ejected' : 'instance_restored',
      revision: this.currentRevision,
      timestamp: this.clock(),
      service: key.service,
      id: key.id,
      instance: entry.instance,
      reason,
    };
    for (const listener of this.listeners) listener.local?.(event);
    return true;
  }

  eventsSince(revision: number): EventsSince {
    return this.ring.since(revision);
  }

  subscribe(listener: CatalogListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  snapshot(): Snapshot {
    const instances: { instance: Instance; renewedAt: number }[] = [];
    for (const state of this.services.values()) {
      for (const entry of state.entries.values()) instances.push({ instance: entry.instance, renewedAt: entry.renewedAt });
    }
    return { revision: this.currentRevision, instances, kv: [...this.kv] };
  }

  reset(snapshot: Snapshot): void {
    for (const state of this.services.values()) for (const entry of state.entries.values()) entry.live = false;
    this.services.clear();
    this.kv.clear();
    this.instances = 0;
    for (const { instance, renewedAt } of snapshot.instances) this.put(instance, renewedAt, snapshot.revision);
    for (const [key, value] of snapshot.kv) this.kv.set(key, value);
    for (const state of this.services.values()) state.changed(state.revision);
    this.currentRevision = snapshot.revision;
    this.ring.clear(snapshot.revision);
    for (const listener of this.listeners) listener.reset(snapshot.revision);
  }

  apply(change: Change): void {
    // A store may redeliver after a reconnect; what is already applied stays applied.
    if (change.revision <= this.currentRevision) return;
    this.currentRevision = change.revision;
    switch (change.kind) {
      case 'upsert': {
        const previous = this.get(change.instance);
        const state = this.put(change.instance, change.renewedAt, change.revision);
        state.changed(change.revision);
        this.emitInstance(upsertType(previous, change.instance), change.revision, change.instance);
        break;
      }
      case 'remove': {
        const state = this.services.get(change.key.service);
        const entry = state?.entries.get(change.key.id);
        if (state === undefined || entry === undefined) return;
        entry.live = false;
        state.entries.delete(change.key.id);
        this.instances--;
        if (state.entries.size === 0) this.services.delete(state.name);
        else state.changed(change.revision);
        this.emitInstance(REMOVE_TYPES[change.reason], change.revision, entry.instance);
        break;
      }
      case 'kv': {
        if (change.value === null) this.kv.delete(change.key);
        else this.kv.set(change.key, change.value);
        const event: RegistryEvent = { type: 'config_changed', revision: change.revision, timestamp: this.clock(), key: change.key, value: change.value };
        this.emit(event, !this.privateKv(change.key));
        break;
      }
    }
  }

  private put(instance: Instance, renewedAt: number, revision: number): ServiceState {
    let state = this.services.get(instance.service);
    if (state === undefined) {
      state = new ServiceState(instance.service);
      this.services.set(instance.service, state);
    }
    state.revision = Math.max(state.revision, instance.modifyRevision || revision);
    const deadline = renewedAt + instance.ttlMs;
    const entry = state.entries.get(instance.id);
    if (entry === undefined) {
      const created: CatalogEntry = { instance, renewedAt, deadline, queuedAt: deadline, live: true, ejected: false };
      state.entries.set(instance.id, created);
      this.instances++;
      if (this.trackLeases) this.leases.schedule(created);
    } else {
      entry.instance = instance;
      entry.renewedAt = renewedAt;
      entry.deadline = deadline;
      if (this.trackLeases && deadline < entry.queuedAt) this.leases.schedule(entry);
    }
    return state;
  }

  private emitInstance(type: InstanceEventType, revision: number, instance: Instance): void {
    this.emit({ type, revision, timestamp: this.clock(), service: instance.service, id: instance.id, instance });
  }

  /** To the listeners, and (unless the event is private) into the ring watchers resume from. */
  private emit(event: RegistryEvent, ringed = true): void {
    if (ringed) this.ring.push(event);
    for (const listener of this.listeners) listener.event(event);
  }
}

type InstanceEventType = Exclude<EventType, 'config_changed'>;

const REMOVE_TYPES = {
  deregistered: 'service_deregistered',
  expired: 'service_expired',
  evicted: 'service_evicted',
} as const satisfies Record<string, InstanceEventType>;

function upsertType(previous: Instance | undefined, next: Instance): InstanceEventType {
  if (previous === undefined) return 'service_registered';
  const healthMoved = previous.health !== next.health || previous.healthReason !== next.healthReason;
  return healthMoved && sameSpec(previous, next) ? 'health_changed' : 'service_updated';
}
