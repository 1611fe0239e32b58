import type { Instance } from '../instance.ts';

/** The instances a weight-aware strategy picks from, with their weights. */
export interface WeightedSet {
  readonly instances: readonly Instance[];
  readonly weights: Float64Array;
}

function usable(weight: number): boolean {
  return Number.isFinite(weight) && weight > 0;
}

/**
 * A weight that is not a positive finite number takes the instance out of
 * the weight-aware strategies (weight 0 is how operators drain one). When no
 * instance has a usable weight they all share equally instead, because a
 * service whose instances are eligible must still answer.
 */
export function weightedSet(instances: readonly Instance[]): WeightedSet {
  const kept = instances.every((i) => usable(i.weight)) ? instances : instances.filter((i) => usable(i.weight));
  if (kept.length === 0) return { instances, weights: new Float64Array(instances.length).fill(1) };
  return { instances: kept, weights: Float64Array.from(kept, (i) => i.weight) };
}
