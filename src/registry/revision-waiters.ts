import type { Catalog } from '../core/catalog.ts';
import type { RegistryEvent } from '../core/events.ts';

/** A service's name, or null for the whole catalog. */
export type Scope = string | null;

/** Consul's defaults: a blocking query without `wait` waits 5 minutes, and none waits longer than 10. */
export const DEFAULT_WAIT_MS = 5 * 60_000;
export const MAX_WAIT_MS = 10 * 60_000;
/** As in Consul, up to wait/16 is added so that clients parked together do not all come back together. */
const JITTER_FRACTION = 16;

/**
 * Services whose last instance was removed keep the removal's revision so
 * their index does not go back; beyond this many the oldest are forgotten
 * and the index of unknown services rises to theirs instead, so churning
 * service names cannot grow the map without bound.
 */
const DEFAULT_MAX_TOMBSTONES = 10_000;

/**
 * `wait` as Consul writes it (Go durations in h, m, s and ms, e.g. `5s`,
 * `1m30s`, `1.5s`) or a plain number of milliseconds.
 */
export const WAIT_PATTERN = '^(?:[0-9]{1,12}|(?:[0-9]{1,9}(?:\\.[0-9]{1,9})?(?:ms|s|m|h))+)$';
/** A decimal index; 15 digits keep it a safe integer. */
export const INDEX_PATTERN = '^[0-9]{1,15}$';

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds of a `wait` that matches WAIT_PATTERN. */
export function parseWait(text: string): number {
  if (/^[0-9]+$/.test(text)) return Number(text);
  let ms = 0;
  for (const [, amount, unit] of text.matchAll(/([0-9.]+)(ms|s|m|h)/g)) ms += Number(amount) * UNIT_MS[unit!]!;
  return Math.round(ms);
}

interface Waiter {
  readonly scope: Scope;
  readonly resolve: (index: number) => void;
  readonly timer: NodeJS.Timeout;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

export interface RevisionWaitersOptions {
  readonly maxTombstones?: number;
  /** For the wait's jitter; tests pin it. */
  readonly random?: () => number;
}

/**
 * Consul-style blocking queries over the catalog: the index of each listing
 * scope (one service, or every service) is the revision of its last visible
 * change, and requests park until it passes the index they already hold.
 * Parked requests cost a promise and a timer each and are kept per scope, so
 * a change wakes only the requests that list what changed.
 */
export class RevisionWaiters {
  /** Revision of the last instance change (KV changes are not listed, so they do not count). */
  private all: number;
  /** Index of services not in `services`: the last reset, or the oldest tombstone forgotten since. */
  private floor: number;
  /** Every service changed since the last reset, with the revision of its last change. */
  private readonly services = new Map<string, number>();
  /** Services without instances, oldest removal first. */
  private readonly tombstones = new Set<string>();
  private readonly parked = new Map<Scope, Set<Waiter>>();
  private parkedCount = 0;
  private readonly maxTombstones: number;
  private readonly random: () => number;
  private readonly unsubscribe: () => void;
  private closed = false;

  constructor(
    private readonly catalog: Catalog,
    options: RevisionWaitersOptions = {},
  ) {
    this.maxTombstones = options.maxTombstones ?? DEFAULT_MAX_TOMBSTONES;
    this.random = options.random ?? Math.random;
    // What happened before is unknown here: start as if the catalog had just been reset.
    this.all = this.floor = catalog.revision;
    this.unsubscribe = catalog.subscribe({ event: (event) => this.onEvent(event), reset: (revision) => this.onReset(revision) });
  }

  /** Requests parked now. */
  get size(): number {
    return this.parkedCount;
  }

  /**
   * The scope's index, never below 1 as in Consul (a store never written,
   * at revision 0, shares index 1 with its first change; a server writes
   * its users to the store before it listens, so listings never see that).
   */
  indexOf(scope: Scope): number {
    return Math.max(1, scope === null ? this.all : (this.services.get(scope) ?? this.floor));
  }

  /**
   * Resolves with the scope's index once it exceeds `index`, or when
   * `waitMs` (capped at 10 minutes, with jitter; 0 or absent: 5 minutes)
   * has passed, or `signal` aborts. An index of 0 answers at once, and so
   * does one ahead of the scope's (the registry went back to an older
   * state): the client starts over from the index it gets, as with Consul.
   */
  wait(scope: Scope, index: number, waitMs = DEFAULT_WAIT_MS, signal?: AbortSignal): Promise<number> {
    const current = this.indexOf(scope);
    if (index !== current || this.closed || signal?.aborted) return Promise.resolve(current);
    const capped = waitMs > 0 ? Math.min(waitMs, MAX_WAIT_MS) : DEFAULT_WAIT_MS;
    const ms = capped + Math.floor((this.random() * capped) / JITTER_FRACTION);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        scope,
        resolve,
        timer: setTimeout(() => this.release(waiter), ms).unref(),
        signal,
        onAbort: () => this.release(waiter),
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      let set = this.parked.get(scope);
      if (set === undefined) {
        set = new Set();
        this.parked.set(scope, set);
      }
      set.add(waiter);
      this.parkedCount++;
    });
  }

  /** Answer every parked request now and stop following the catalog (the server is stopping). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    this.wakeAll();
  }

  private onEvent(event: RegistryEvent): void {
    if (event.type === 'config_changed') return;
    const { service, revision } = event;
    this.all = revision;
    this.services.set(service, revision);
    this.tombstones.delete(service);
    // Listeners run after the catalog applied the change: an absent service just lost its last instance.
    if (this.catalog.service(service) === undefined) this.bury(service);
    this.wake(service);
    this.wake(null);
  }

  private onReset(revision: number): void {
    // The whole state was replaced: every scope counts as changed at the new revision.
    this.all = this.floor = revision;
    this.services.clear();
    this.tombstones.clear();
    this.wakeAll();
  }

  private bury(service: string): void {
    this.tombstones.add(service);
    if (this.tombstones.size <= this.maxTombstones) return;
    const [oldest] = this.tombstones;
    this.tombstones.delete(oldest!);
    // Forgetting it must not move its index back: unknown services now start from its removal.
    this.floor = Math.max(this.floor, this.services.get(oldest!)!);
    this.services.delete(oldest!);
  }

  /** Only the scope that changed is woken; its index has passed what every one of its waiters holds. */
  private wake(scope: Scope): void {
    const set = this.parked.get(scope);
    if (set === undefined) return;
    this.parked.delete(scope);
    const index = this.indexOf(scope);
    for (const waiter of set) this.settle(waiter, index);
  }

  private wakeAll(): void {
    for (const scope of [...this.parked.keys()]) this.wake(scope);
  }

  /** Its timer ran out or its client went away. */
  private release(waiter: Waiter): void {
    const set = this.parked.get(waiter.scope);
    if (set === undefined || !set.delete(waiter)) return;
    if (set.size === 0) this.parked.delete(waiter.scope);
    this.settle(waiter, this.indexOf(waiter.scope));
  }

  private settle(waiter: Waiter, index: number): void {
    clearTimeout(waiter.timer);
    waiter.signal?.removeEventListener('abort', waiter.onAbort);
    this.parkedCount--;
    waiter.resolve(index);
  }
}
