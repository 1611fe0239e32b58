import type { IncomingMessage } from 'node:http';
import { Type, type Static } from 'typebox';
import { checkPath, checkServiceName, LIMITS } from '../../core/validation.ts';
import type { ClientAddress } from '../client-address.ts';
import type { AppContext } from '../context.ts';
import { ApiError } from '../errors.ts';
import { filterParams, strategyParam } from '../request-values.ts';
import { instanceJson } from '../views.ts';

export const DiscoverQuery = Type.Object(
  {
    serviceName: Type.Optional(Type.String({ maxLength: LIMITS.nameLength })),
    endPoint: Type.Optional(Type.String({ maxLength: 2048, description: 'appended to the chosen address in the redirect' })),
    format: Type.Optional(Type.Union([Type.Literal('redirect'), Type.Literal('json')])),
    strategy: Type.Optional(Type.String({ maxLength: 64, description: 'a strategy name or the original code (RR, CH, RH, ...)' })),
    tags: Type.Optional(Type.String({ maxLength: 2048, description: 'comma-separated; the instance must carry all' })),
    version: Type.Optional(Type.String({ maxLength: LIMITS.versionLength })),
    zone: Type.Optional(Type.String({ maxLength: LIMITS.zoneLength })),
    meta: Type.Optional(Type.String({ maxLength: 4096, description: 'comma-separated key:value metadata that must match' })),
    key: Type.Optional(Type.String({ maxLength: 512, description: 'hash key for consistent-hash and rendezvous-hash' })),
  },
  { additionalProperties: false },
);
export type DiscoverQuery = Static<typeof DiscoverQuery>;

export const JSON_TYPE = 'application/json; charset=utf-8';

export type DiscoverAnswer = { readonly json: string } | { readonly location: string };

/**
 * What a discover answers, for a query that passed the schema; throws an
 * ApiError for bad input or when no instance is eligible.
 */
export function decideDiscover(
  ctx: AppContext,
  query: DiscoverQuery,
  req: IncomingMessage,
  clientAddress: ClientAddress,
): DiscoverAnswer {
  if (!query.serviceName) {
    throw new ApiError(400, 'VALIDATION_FAILED', 'Please provide the serviceName.', [
      { field: 'serviceName', problem: 'is required' },
    ]);
  }
  const badName = checkServiceName(query.serviceName);
  if (badName) throw ApiError.validation([badName]);
  const endPoint = query.endPoint ? (query.endPoint.startsWith('/') ? query.endPoint : `/${query.endPoint}`) : '';
  const badEndPoint = endPoint ? checkPath(endPoint.split('?')[0]!, 'endPoint') : undefined;
  if (badEndPoint) throw ApiError.validation([badEndPoint]);
  const strategy = strategyParam(query.strategy, 'strategy', ctx.runtime.settings.serverSelectionStrategy);
  const instance = ctx.registry.discover(query.serviceName, filterParams(query), strategy, () =>
    hashKey(req, query.key, ctx.config.hashKeyHeader, clientAddress),
  );
  if (instance === undefined) throw new ApiError(503, 'SERVICE_UNAVAILABLE', 'Service Unavailable');
  return query.format === 'json' ? { json: instanceJson(instance) } : { location: instance.address + endPoint };
}

/** The key for hashing strategies: explicit query value, then the configured header, then the client address. */
export function hashKey(req: IncomingMessage, explicit: string | undefined, header: string, clientAddress: ClientAddress): string {
  if (explicit !== undefined && explicit !== '') return explicit;
  const fromHeader = req.headers[header];
  if (typeof fromHeader === 'string' && fromHeader !== '') return fromHeader;
  return clientAddress(req);
}
