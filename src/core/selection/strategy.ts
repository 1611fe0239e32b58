import type { Instance } from '../instance.ts';

/**
 * Selection strategies. A strategy builds a Picker once per eligible set
 * (when the service or the filter result changes), so per-request work is a
 * pick over prepared state: no sorting, no ring building, no scan of the
 * catalog.
 */
export const STRATEGY_NAMES = [
  'round-robin',
  'weighted-round-robin',
  'random',
  'weighted-random',
  'consistent-hash',
  'rendezvous-hash',
  'least-requests',
  'p2c-ewma',
] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

/** Strategies that read PickContext.key; for the others the key is not worth computing. */
export function strategyUsesKey(name: StrategyName): boolean {
  return name === 'consistent-hash' || name === 'rendezvous-hash';
}

/** Live load signals, fed by the proxy (in-flight counts and latencies). */
export interface LoadSignals {
  inflight(instance: Instance): number;
  /** Exponentially weighted moving average latency in ms; 0 when unknown. */
  ewmaLatencyMs(instance: Instance): number;
}

export interface PickContext {
  /** Hash key for the hashing strategies (query, header or client address). */
  readonly key: string;
  /** Uniform in [0, 1); injectable so distribution tests are deterministic. */
  readonly random: () => number;
  readonly load: LoadSignals;
}

export interface Picker {
  /** Returns an instance of the set it was built for; the set is never empty. */
  pick(ctx: PickContext): Instance;
}

export interface Strategy {
  readonly name: StrategyName;
  /** `instances` is non-empty, ordered by id, and must not be mutated. */
  build(instances: readonly Instance[]): Picker;
}
