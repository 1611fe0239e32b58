import { STRATEGY_NAMES, type StrategyName } from './strategy.ts';

/**
 * The original Maxine named strategies by short codes (RR, CH, RH, and in
 * later versions WRR, LC, P2, ...) and its Lightning mode by lowercase names
 * (least-connections, ip-hash, ...). Its clients and environment variables
 * still send them, so every spelling is accepted wherever a strategy is named.
 */
export interface StrategyCode {
  readonly name: string;
  readonly code: string;
  readonly message: string;
  readonly ordinal: number;
}

/** The original's enum objects, returned by GET /api/maxine/control/config. */
export const STRATEGY_CODES: ReadonlyMap<StrategyName, StrategyCode> = new Map([
  ['round-robin', { name: 'RR', code: '0', message: 'Round Robin', ordinal: 0 }],
  ['consistent-hash', { name: 'CH', code: '1', message: 'Consistent Hashing', ordinal: 1 }],
  ['rendezvous-hash', { name: 'RH', code: '2', message: 'Rendezvous Hashing', ordinal: 2 }],
  ['least-requests', { name: 'LC', code: '3', message: 'Least Connections', ordinal: 3 }],
  ['random', { name: 'RANDOM', code: '4', message: 'Random', ordinal: 4 }],
  ['weighted-round-robin', { name: 'WRR', code: '5', message: 'Weighted Round Robin', ordinal: 5 }],
  ['p2c-ewma', { name: 'P2', code: '10', message: 'Power of Two Choices', ordinal: 10 }],
  ['weighted-random', { name: 'WRANDOM', code: '12', message: 'Weighted Random', ordinal: 12 }],
]);

const ALIASES: ReadonlyMap<string, StrategyName> = new Map<string, StrategyName>([
  ...[...STRATEGY_CODES].map(([canonical, code]): [string, StrategyName] => [code.name.toLowerCase(), canonical]),
  ['lrt', 'p2c-ewma'],
  ['least-connections', 'least-requests'],
  ['weighted-least-connections', 'least-requests'],
  ['ip-hash', 'consistent-hash'],
]);

const CANONICAL: ReadonlySet<string> = new Set(STRATEGY_NAMES);

/** Canonical name for a strategy spelling, or undefined when it is unknown. */
export function parseStrategy(value: string): StrategyName | undefined {
  if (CANONICAL.has(value)) return value as StrategyName;
  return ALIASES.get(value.toLowerCase());
}

/** Every accepted spelling, for error messages and help text. */
export const STRATEGY_SPELLINGS: readonly string[] = [
  ...STRATEGY_NAMES,
  ...[...STRATEGY_CODES.values()].map((c) => c.name),
  'LRT',
  'least-connections',
  'weighted-least-connections',
  'ip-hash',
];
