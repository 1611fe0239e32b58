import type { Instance } from '../instance.ts';
import type { Picker, Strategy } from './strategy.ts';
import { weightedSet } from './weights.ts';

/**
 * nginx's smooth weighted round robin: every pick adds each weight to its
 * instance's running value, takes the largest and subtracts the total from
 * it. Over a cycle each instance gets exactly its weight's share, and heavy
 * instances are interleaved with light ones instead of picked in bursts.
 * Ties go to the earlier instance, which makes the sequence deterministic.
 */
class SmoothWeightedPicker implements Picker {
  readonly #instances: readonly Instance[];
  readonly #weights: Float64Array;
  readonly #current: Float64Array;
  readonly #total: number;

  constructor(instances: readonly Instance[], weights: Float64Array) {
    this.#instances = instances;
    this.#weights = weights;
    this.#current = new Float64Array(weights.length);
    let total = 0;
    for (const w of weights) total += w;
    this.#total = total;
  }

  pick(): Instance {
    const weights = this.#weights;
    const current = this.#current;
    let best = 0;
    let bestValue = -Infinity;
    for (let i = 0; i < current.length; i++) {
      const value = current[i]! + weights[i]!;
      current[i] = value;
      if (value > bestValue) {
        best = i;
        bestValue = value;
      }
    }
    current[best] = bestValue - this.#total;
    return this.#instances[best]!;
  }
}

export const weightedRoundRobin: Strategy = {
  name: 'weighted-round-robin',
  build(instances) {
    const set = weightedSet(instances);
    return new SmoothWeightedPicker(set.instances, set.weights);
  },
};
