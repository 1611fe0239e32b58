import type { Instance } from '../instance.ts';
import type { PickContext, Picker, Strategy } from './strategy.ts';
import { weightedSet } from './weights.ts';

/**
 * Fewest in-flight requests per unit of weight (inflight / weight), so an
 * instance of weight 2 is as attractive with two requests as one of weight 1
 * with one. The scan starts just after the previous pick and ties keep the
 * first instance found, so equally loaded instances (always the case without
 * proxy data) take turns in round-robin order instead of the first one
 * taking everything, including when only some of them tie. Weights therefore
 * only matter under load; at rest this is plain round robin.
 */
class LeastRequestsPicker implements Picker {
  readonly #instances: readonly Instance[];
  readonly #weights: Float64Array;
  #start = 0;

  constructor(instances: readonly Instance[], weights: Float64Array) {
    this.#instances = instances;
    this.#weights = weights;
  }

  pick(ctx: PickContext): Instance {
    const instances = this.#instances;
    const weights = this.#weights;
    const n = instances.length;
    const start = this.#start;
    let best = start;
    let bestCost = ctx.load.inflight(instances[start]!) / weights[start]!;
    for (let i = start + 1 === n ? 0 : start + 1; i !== start; i = i + 1 === n ? 0 : i + 1) {
      const cost = ctx.load.inflight(instances[i]!) / weights[i]!;
      if (cost < bestCost) {
        best = i;
        bestCost = cost;
      }
    }
    this.#start = best + 1 === n ? 0 : best + 1;
    return instances[best]!;
  }
}

export const leastRequests: Strategy = {
  name: 'least-requests',
  build(instances) {
    const set = weightedSet(instances);
    return new LeastRequestsPicker(set.instances, set.weights);
  },
};
