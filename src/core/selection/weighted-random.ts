import type { Instance } from '../instance.ts';
import type { PickContext, Picker, Strategy } from './strategy.ts';
import { weightedSet } from './weights.ts';

/**
 * Picks with probability weight / total: prefix sums are built once, and a
 * pick is one random number and a binary search for the first prefix sum
 * above it.
 */
class WeightedRandomPicker implements Picker {
  readonly #instances: readonly Instance[];
  readonly #prefix: Float64Array;
  readonly #total: number;

  constructor(instances: readonly Instance[], weights: Float64Array) {
    this.#instances = instances;
    const prefix = new Float64Array(weights.length);
    let sum = 0;
    for (let i = 0; i < weights.length; i++) {
      sum += weights[i]!;
      prefix[i] = sum;
    }
    this.#prefix = prefix;
    this.#total = sum;
  }

  pick(ctx: PickContext): Instance {
    const prefix = this.#prefix;
    const target = ctx.random() * this.#total;
    let lo = 0;
    // The last index needs no comparison, which also keeps a target that
    // rounding pushed up to the total inside the set.
    let hi = prefix.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (prefix[mid]! > target) hi = mid;
      else lo = mid + 1;
    }
    return this.#instances[lo]!;
  }
}

export const weightedRandom: Strategy = {
  name: 'weighted-random',
  build(instances) {
    const set = weightedSet(instances);
    return new WeightedRandomPicker(set.instances, set.weights);
  },
};
