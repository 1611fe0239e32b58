import type { Instance } from '../instance.ts';
import type { LoadSignals, PickContext, Picker, Strategy } from './strategy.ts';
import { weightedSet } from './weights.ts';

/**
 * Power of two choices: two distinct random candidates, the cheaper one
 * wins. Sampling two instead of scanning all keeps picks O(1) and avoids
 * every client herding onto the single least-loaded instance, while the
 * most expensive instance can never win a pair.
 *
 * Cost is (ewmaLatencyMs + 1) * (inflight + 1) / weight: the +1s keep an
 * instance with no data comparable (unknown latency reads as 0) instead of
 * free, and dividing by weight lets bigger instances carry more.
 */
function cost(load: LoadSignals, instance: Instance, weight: number): number {
  return ((load.ewmaLatencyMs(instance) + 1) * (load.inflight(instance) + 1)) / weight;
}

class PowerOfTwoPicker implements Picker {
  readonly #instances: readonly Instance[];
  readonly #weights: Float64Array;

  constructor(instances: readonly Instance[], weights: Float64Array) {
    this.#instances = instances;
    this.#weights = weights;
  }

  pick(ctx: PickContext): Instance {
    const instances = this.#instances;
    const n = instances.length;
    if (n === 1) return instances[0]!;
    const first = Math.floor(ctx.random() * n);
    // Draw from the n - 1 others and skip over the first: distinct in one
    // draw, and still uniform.
    let second = Math.floor(ctx.random() * (n - 1));
    if (second >= first) second++;
    const a = instances[first]!;
    const b = instances[second]!;
    return cost(ctx.load, b, this.#weights[second]!) < cost(ctx.load, a, this.#weights[first]!) ? b : a;
  }
}

export const p2cEwma: Strategy = {
  name: 'p2c-ewma',
  build(instances) {
    const set = weightedSet(instances);
    return new PowerOfTwoPicker(set.instances, set.weights);
  },
};
