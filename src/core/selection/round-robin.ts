import type { Instance } from '../instance.ts';
import type { Picker, Strategy } from './strategy.ts';

/**
 * Cycles through the set in its given (id) order. The order and the counter
 * belong to the picker, which is rebuilt only on visible changes, so
 * heartbeats neither reorder the set nor restart the cycle.
 */
class RoundRobinPicker implements Picker {
  readonly #instances: readonly Instance[];
  #next = 0;

  constructor(instances: readonly Instance[]) {
    this.#instances = instances;
  }

  pick(): Instance {
    const i = this.#next;
    this.#next = i + 1 === this.#instances.length ? 0 : i + 1;
    return this.#instances[i]!;
  }
}

export const roundRobin: Strategy = {
  name: 'round-robin',
  build: (instances) => new RoundRobinPicker(instances),
};
