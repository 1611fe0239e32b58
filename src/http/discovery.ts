import type { IncomingMessage } from 'node:http';
import type { Instance } from '../core/instance.ts';
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
  const badName = checkServiceName(query.serviceName);
  if (badName) throw ApiError.validation([badName]);
  const strategy = strategyParam(query.strategy, query.strategyField, ctx.runtime.settings.serverSelectionStrategy);
  const instance = ctx.registry.discover(query.serviceName, filterParams(query), strategy, () => hashKey(ctx, req, query.key), exclude);
  // The proxy picks again, excluding what it tried, for each retry: one discover request counts once.
  if (exclude === undefined || exclude.size === 0) ctx.metrics.picked(query.serviceName, strategy, instance !== undefined);
  return instance;
}

/** The key for hashing strategies: explicit query value, then the configured header, then the client address. */
function hashKey(ctx: AppContext, req: IncomingMessage, explicit: string | undefined): string {
  if (explicit !== undefined && explicit !== '') return explicit;
  const fromHeader = req.headers[ctx.config.hashKeyHeader];
  if (typeof fromHeader === 'string' && fromHeader !== '') return fromHeader;
  return ctx.clientAddress(req);
}
