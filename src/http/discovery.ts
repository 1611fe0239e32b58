import type { IncomingMessage } from 'node:http';
import type { SelectionFilter } from '../core/filter.ts';
import type { Instance } from '../core/instance.ts';
import { strategyUsesKey, type StrategyName } from '../core/selection/strategy.ts';
import { checkServiceName } from '../core/validation.ts';
import type { AppContext } from './context.ts';
import { ApiError } from './errors.ts';
import { filterParams, strategyParam } from './request-values.ts';

/** Longest explicit hash key (`key`) a discover accepts, on every surface. */
export const MAX_HASH_KEY_LENGTH = 512;

export interface DiscoveryQuery {
  /** Present; each surface answers its own message when it is missing. */
  readonly serviceName: string;
  readonly strategy?: string | undefined;
  /** Name of the strategy parameter on this surface, for error details. */
  readonly strategyField: string;
  readonly tags?: string | undefined;
  readonly version?: string | undefined;
  readonly zone?: string | undefined;
  readonly meta?: string | undefined;
  readonly key?: string | undefined;
}

/**
 * A discover's query once checked: what the pick needs, built once per
 * query (the fast lane keeps it with the URL that asked).
 */
export interface CheckedDiscovery {
  readonly serviceName: string;
  /** Asked for by the query; otherwise the runtime setting at the time of each pick. */
  readonly strategy: StrategyName | undefined;
  readonly filter: SelectionFilter;
  readonly key: string | undefined;
}

/** Checks a discover's service name, strategy and filters, in that order; throws the ApiError that refuses the first problem. */
export function checkDiscovery(query: DiscoveryQuery): CheckedDiscovery {
  const badName = checkServiceName(query.serviceName);
  if (badName) throw ApiError.validation([badName]);
  const strategy = strategyParam(query.strategy, query.strategyField);
  return { serviceName: query.serviceName, strategy, filter: filterParams(query), key: query.key };
}

/**
 * The pick behind both surfaces' discover routes, so they validate names,
 * strategies and filters alike. Undefined when nothing is eligible (or
 * everything eligible is in the proxy's `exclude`).
 */
export function discoverInstance(
  ctx: AppContext,
  req: IncomingMessage,
  query: DiscoveryQuery,
  exclude?: ReadonlySet<string>,
): Instance | undefined {
  return pickInstance(ctx, req, checkDiscovery(query), exclude);
}

/** The pick for a checked discover. */
export function pickInstance(ctx: AppContext, req: IncomingMessage, discovery: CheckedDiscovery, exclude?: ReadonlySet<string>): Instance | undefined {
  const strategy = discovery.strategy ?? ctx.runtime.settings.serverSelectionStrategy;
  // The client address is looked up only when the strategy hashes it.
  const key = strategyUsesKey(strategy) ? hashKey(ctx, req, discovery.key) : '';
  const instance = ctx.registry.discover(discovery.serviceName, discovery.filter, strategy, key, exclude);
  // The proxy picks again, excluding what it tried, for each retry: one discover request counts once.
  if (exclude === undefined || exclude.size === 0) ctx.metrics.picked(discovery.serviceName, strategy, instance !== undefined);
  return instance;
}

/** The key for hashing strategies: explicit query value, then the configured header, then the client address. */
function hashKey(ctx: AppContext, req: IncomingMessage, explicit: string | undefined): string {
  if (explicit !== undefined && explicit !== '') return explicit;
  const fromHeader = req.headers[ctx.config.hashKeyHeader];
  if (typeof fromHeader === 'string' && fromHeader !== '') return fromHeader;
  return ctx.clientAddress(req);
}
