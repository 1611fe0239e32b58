import type { Instance } from '../instance.ts';
import type { PickContext, Picker, Strategy } from './strategy.ts';
import { ID_SEED_2, hashString, hashWords3 } from './hash.ts';
import { weightedSet } from './weights.ts';

const TWO_POW_32 = 2 ** 32;

/**
 * Weighted rendezvous (highest random weight) hashing: each instance scores
 * the key with -weight / ln(u), u = hash(key, instance) in (0, 1), and the
 * highest score wins. That score makes an instance win with probability
 * exactly weight / total, and because it depends only on the key and the
 * instance, adding an instance only takes keys and removing one only
 * releases its own. A pick costs O(n) over the service's set, no ring.
 */
class RendezvousPicker implements Picker {
  readonly #instances: readonly Instance[];
  readonly #weights: Float64Array;
  readonly #seedsA: Uint32Array;
  readonly #seedsB: Uint32Array;

  constructor(instances: readonly Instance[], weights: Float64Array) {
    this.#instances = instances;
    this.#weights = weights;
    this.#seedsA = Uint32Array.from(instances, (i) => hashString(i.id));
    this.#seedsB = Uint32Array.from(instances, (i) => hashString(i.id, ID_SEED_2));
  }

  pick(ctx: PickContext): Instance {
    const key = hashString(ctx.key);
    const weights = this.#weights;
    const seedsA = this.#seedsA;
    const seedsB = this.#seedsB;
    let best = 0;
    let bestScore = -Infinity;
    for (let i = 0; i < weights.length; i++) {
      // The half keeps u strictly inside (0, 1): ln(0) and ln(1) are not scores.
      const u = (hashWords3(key, seedsA[i]!, seedsB[i]!) + 0.5) / TWO_POW_32;
      const score = -weights[i]! / Math.log(u);
      if (score > bestScore) {
        best = i;
        bestScore = score;
      }
    }
    return this.#instances[best]!;
  }
}

export const rendezvousHash: Strategy = {
  name: 'rendezvous-hash',
  build(instances) {
    const set = weightedSet(instances);
    return new RendezvousPicker(set.instances, set.weights);
  },
};
