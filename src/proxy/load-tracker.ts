import type { Instance } from '../core/instance.ts';
import type { LoadSignals } from '../core/selection/strategy.ts';

/** Per-instance traffic state. Exposed read-only for the upstream listing. */
export interface InstanceLoad {
  readonly inflight: number;
  /** Latency EWMA (ms) as of the last sample; read it through LoadTracker.ewmaLatencyMs. */
  readonly ewmaMs: number;
  /** Attempts started and attempts that failed (connection failure, timeout, 5xx). */
  readonly requests: number;
  readonly failures: number;
}

class LoadState implements InstanceLoad {
  inflight = 0;
  ewmaMs = 0;
  /** Clock time of the last latency sample. */
  stamp = 0;
  requests = 0;
  failures = 0;
}

/** An attempt's handle on its instance's state, so its end is counted exactly once. */
export interface LoadLease {
  readonly state: LoadState;
  done: boolean;
}

/**
 * Live load per instance for least-requests and p2c-ewma: in-flight
 * attempts and a peak-sensitive, time-weighted latency EWMA.
 *
 * State is keyed by service and id, not by the Instance object: instances
 * are immutable and a health change or re-registration replaces the object,
 * while the process behind it (and its queue) is the same. A two-level Map
 * lets the pickers read it without building a key string (they read every
 * instance's load on every pick), and a read never creates state.
 *
 * Every attempt holds a lease on the state object it started with and
 * releases it once, so counts never go negative, even when the instance
 * was removed (its state dropped) and re-registered meanwhile.
 */
export class LoadTracker implements LoadSignals {
  private readonly services = new Map<string, Map<string, LoadState>>();
  private active = 0;

  /**
   * `decayMs` is the EWMA's time constant: a sample's weight grows with the
   * time since the previous one, and an instance that gets no samples decays
   * towards 0 so that a strategy avoiding it tries it again (Finagle's peak EWMA).
   */
  constructor(
    private readonly clock: () => number,
    private readonly decayMs = 10_000,
  ) {}

  inflight(instance: Instance): number {
    return this.services.get(instance.service)?.get(instance.id)?.inflight ?? 0;
  }

  ewmaLatencyMs(instance: Instance): number {
    const state = this.services.get(instance.service)?.get(instance.id);
    if (state === undefined || state.ewmaMs === 0) return 0;
    return state.ewmaMs * Math.exp(-Math.max(0, this.clock() - state.stamp) / this.decayMs);
  }

  /** An attempt on `instance` begins. */
  start(instance: Instance): LoadLease {
    let ids = this.services.get(instance.service);
    if (ids === undefined) {
      ids = new Map();
      this.services.set(instance.service, ids);
    }
    let state = ids.get(instance.id);
    if (state === undefined) {
      state = new LoadState();
      ids.set(instance.id, state);
    }
    state.inflight++;
    state.requests++;
    this.active++;
    return { state, done: false };
  }

  /** Time to the response headers (or to a timeout), in ms. */
  observeLatency(lease: LoadLease, ms: number): void {
    const state = lease.state;
    const now = this.clock();
    if (ms >= state.ewmaMs) {
      // Peak: a slower answer counts at once, a faster one only with time.
      state.ewmaMs = ms;
    } else {
      const w = Math.exp(-Math.max(0, now - state.stamp) / this.decayMs);
      state.ewmaMs = state.ewmaMs * w + ms * (1 - w);
    }
    state.stamp = now;
  }

  /** The attempt ended; later calls for the same lease do nothing. */
  finish(lease: LoadLease, failed: boolean): void {
    if (lease.done) return;
    lease.done = true;
    this.active--;
    const state = lease.state;
    if (state.inflight > 0) state.inflight--;
    if (failed) state.failures++;
  }

  /** In-flight attempts over every instance, including ones that left the catalog meanwhile. */
  get totalInflight(): number {
    return this.active;
  }

  get(service: string, id: string): InstanceLoad | undefined {
    return this.services.get(service)?.get(id);
  }

  /** The instance left the catalog; attempts still running keep their own state object. */
  forget(service: string, id: string): void {
    const ids = this.services.get(service);
    if (ids === undefined) return;
    ids.delete(id);
    if (ids.size === 0) this.services.delete(service);
  }

  /** Drop the state of every instance `keep` rejects (after a catalog reset). */
  prune(keep: (service: string, id: string) => boolean): void {
    for (const [service, ids] of this.services) {
      for (const id of ids.keys()) if (!keep(service, id)) ids.delete(id);
      if (ids.size === 0) this.services.delete(service);
    }
  }
}
