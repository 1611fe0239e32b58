import { Type, type Static } from 'typebox';
import { checkPath, LIMITS } from '../../core/validation.ts';
import type { AppContext } from '../context.ts';
import { MAX_HASH_KEY_LENGTH, type DiscoveryQuery } from '../discovery.ts';
import { ApiError } from '../errors.ts';

/** The query of GET /api/maxine/serviceops/discover. */
export const DiscoverQuery = Type.Object(
  {
    serviceName: Type.Optional(Type.String({ maxLength: LIMITS.nameLength })),
    endPoint: Type.Optional(Type.String({ maxLength: 2048, description: 'appended to the chosen address in the redirect' })),
    format: Type.Optional(Type.Union([Type.Literal('redirect'), Type.Literal('json')])),
    mode: Type.Optional(
      Type.Union([Type.Literal('redirect'), Type.Literal('proxy')], {
        description: 'proxy: forward this request to the chosen instance (at endPoint) instead of redirecting; default: the runtime discoveryMode',
      }),
    ),
    strategy: Type.Optional(Type.String({ maxLength: 64, description: 'a strategy name or the original code (RR, CH, RH, ...)' })),
    tags: Type.Optional(Type.String({ maxLength: 2048, description: 'comma-separated; the instance must carry all' })),
    version: Type.Optional(Type.String({ maxLength: LIMITS.versionLength })),
    zone: Type.Optional(Type.String({ maxLength: LIMITS.zoneLength })),
    meta: Type.Optional(Type.String({ maxLength: 4096, description: 'comma-separated key:value metadata that must match' })),
    key: Type.Optional(Type.String({ maxLength: MAX_HASH_KEY_LENGTH, description: 'hash key for consistent-hash and rendezvous-hash' })),
  },
  { additionalProperties: false },
);

export interface DiscoverRequest {
  readonly serviceName: string;
  /** Appended to the chosen address in a redirect: '' or a path starting with '/'. */
  readonly endPoint: string;
  readonly discovery: DiscoveryQuery;
  /** Answered with the instance as JSON rather than a redirect. */
  readonly json: boolean;
  /** The mode asked for, if any; see isProxied. */
  readonly mode: 'redirect' | 'proxy' | undefined;
}

/**
 * What a discover asks for, from its schema-checked query; throws the
 * ApiError that refuses it. Nothing is picked yet: both the route and the
 * fast lane (src/http/fast-lane.ts) read requests through this. It depends
 * on the query alone, so the fast lane may keep it for the same query.
 */
export function discoverRequest(query: Static<typeof DiscoverQuery>): DiscoverRequest {
  if (!query.serviceName) {
    throw new ApiError(400, 'VALIDATION_FAILED', 'Please provide the serviceName.', [{ field: 'serviceName', problem: 'is required' }]);
  }
  const endPoint = query.endPoint ? (query.endPoint.startsWith('/') ? query.endPoint : `/${query.endPoint}`) : '';
  const badEndPoint = endPoint ? checkPath(endPoint.split('?')[0]!, 'endPoint') : undefined;
  if (badEndPoint) throw ApiError.validation([badEndPoint]);
  return {
    serviceName: query.serviceName,
    endPoint,
    discovery: {
      serviceName: query.serviceName,
      strategy: query.strategy,
      strategyField: 'strategy',
      tags: query.tags,
      version: query.version,
      zone: query.zone,
      meta: query.meta,
      key: query.key,
    },
    json: query.format === 'json',
    mode: query.mode,
  };
}

/** The original's answer when no instance is eligible. */
export function discoverUnavailable(): ApiError {
  return new ApiError(503, 'SERVICE_UNAVAILABLE', 'Service Unavailable');
}

/** Forwarded to the chosen instance by the proxy rather than answered: asked for, or the runtime discoveryMode. */
export function isProxied(ctx: AppContext, discover: DiscoverRequest): boolean {
  return !discover.json && (discover.mode ?? (ctx.runtime.settings.discoveryMode === 'PROXY' ? 'proxy' : 'redirect')) === 'proxy';
}
