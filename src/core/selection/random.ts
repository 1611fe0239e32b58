import type { Instance } from '../instance.ts';
import type { PickContext, Picker, Strategy } from './strategy.ts';

/** Uniform over the set; the randomness is the caller's, so tests can seed it. */
class RandomPicker implements Picker {
  readonly #instances: readonly Instance[];

  constructor(instances: readonly Instance[]) {
    this.#instances = instances;
  }

  pick(ctx: PickContext): Instance {
    return this.#instances[Math.floor(ctx.random() * this.#instances.length)]!;
  }
}

export const random: Strategy = {
  name: 'random',
  build: (instances) => new RandomPicker(instances),
};
