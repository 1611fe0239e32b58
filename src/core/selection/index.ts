import type { LoadSignals, Strategy, StrategyName } from './strategy.ts';
import { consistentHash } from './consistent-hash.ts';
import { leastRequests } from './least-requests.ts';
import { p2cEwma } from './p2c-ewma.ts';
import { random } from './random.ts';
import { rendezvousHash } from './rendezvous-hash.ts';
import { roundRobin } from './round-robin.ts';
import { weightedRandom } from './weighted-random.ts';
import { weightedRoundRobin } from './weighted-round-robin.ts';

export const STRATEGIES: ReadonlyMap<StrategyName, Strategy> = new Map(
  [
    roundRobin,
    weightedRoundRobin,
    random,
    weightedRandom,
    consistentHash,
    rendezvousHash,
    leastRequests,
    p2cEwma,
  ].map((s) => [s.name, s]),
);

export function getStrategy(name: StrategyName): Strategy {
  const strategy = STRATEGIES.get(name);
  // Reachable only through an unchecked cast; parse names with parseStrategy.
  if (strategy === undefined) throw new Error(`unknown selection strategy: ${String(name)}`);
  return strategy;
}

/**
 * Load signals for callers without proxy data: every instance looks idle,
 * so least-requests degrades to round robin and p2c-ewma to the heavier
 * of two random instances.
 */
export const ZERO_LOAD: LoadSignals = {
  inflight: () => 0,
  ewmaLatencyMs: () => 0,
};
