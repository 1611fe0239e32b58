import type { FastifyReply, FastifyRequest } from 'fastify';
import { NO_FILTER } from '../../core/filter.ts';
import type { Instance } from '../../core/instance.ts';
import { instanceKey } from '../../core/keys.ts';
import { strategyUsesKey } from '../../core/selection/strategy.ts';
import { checkServiceName } from '../../core/validation.ts';
import type { AppContext } from '../context.ts';
import { ApiError } from '../errors.ts';

/** A surface's pick; `exclude` holds instanceKey strings the proxy will not use (tried, breaker open). */
export type ExcludingPick = (exclude: ReadonlySet<string>) => Instance | undefined;

const NOTHING_EXCLUDED: ReadonlySet<string> = new Set();

/** A '.' or '..' segment, with '/' or '\\' as separators. */
const DOT_SEGMENT = /(?:^|[/\\])\.\.?(?:[/\\]|$)/;

/**
 * The path of a proxied request as the client wrote it: percent-encoding
 * kept, so the instance sees what the client sent. Dot segments, encoded or
 * not, are refused: they would step outside the instance's path prefix.
 */
export function checkedUpstreamPath(rawPath: string): string {
  const path = rawPath === '' ? '/' : rawPath;
  const queryAt = path.indexOf('?');
  const pathOnly = queryAt < 0 ? path : path.slice(0, queryAt);
  let decoded = pathOnly;
  if (pathOnly.includes('%')) {
    try {
      decoded = decodeURIComponent(pathOnly);
    } catch {
      throw ApiError.validation([{ field: 'path', problem: 'is not validly percent-encoded' }]);
    }
  }
  if (DOT_SEGMENT.test(decoded)) {
    throw ApiError.validation([{ field: 'path', problem: "must not contain '.' or '..' segments" }]);
  }
  if (/[\u0000-\u001f\u007f]/.test(decoded)) {
    throw ApiError.validation([{ field: 'path', problem: 'must not contain control characters' }]);
  }
  return path;
}

/** The pick of the proxy routes: the service policy's strategy, else the runtime one, no filters. */
export function policyPick(ctx: AppContext, request: FastifyRequest, serviceName: string): ExcludingPick {
  const badName = checkServiceName(serviceName);
  if (badName) throw ApiError.validation([badName]);
  const strategy = ctx.proxy.policies.get(serviceName).strategy ?? ctx.runtime.settings.serverSelectionStrategy;
  const key = strategyUsesKey(strategy) ? ctx.clientAddress(request.raw) : '';
  return (exclude) => ctx.registry.discover(serviceName, NO_FILTER, strategy, key, exclude);
}

/**
 * Hands a request to the proxy, which streams the instance's answer back
 * and answers its own errors (502, 503, 504, 413) in Maxine's JSON shape.
 * The first pick happens before the response is handed over, so a bad
 * name, strategy or filter is still a 400 from the error handler.
 */
export async function forwardToService(
  ctx: AppContext,
  request: FastifyRequest,
  reply: FastifyReply,
  serviceName: string,
  upstreamPath: string,
  pick: ExcludingPick,
): Promise<void> {
  let first: Instance | undefined = pick(NOTHING_EXCLUDED);
  const pickAgain: ExcludingPick = (exclude) => {
    const unused = first;
    first = undefined;
    if (unused !== undefined && !exclude.has(instanceKey(unused.service, unused.id))) return unused;
    return pick(exclude);
  };
  // The proxy writes the response itself; headers fastify would have added go on the raw response now.
  const headers = reply.getHeaders();
  for (const name in headers) {
    const value = headers[name];
    if (value !== undefined) reply.raw.setHeader(name, value);
  }
  reply.hijack();
  await ctx.proxy.forward({
    service: serviceName,
    policy: ctx.proxy.policies.get(serviceName),
    req: request.raw,
    res: reply.raw,
    upstreamPath,
    // X-Forwarded-For gets the peer that connected appended to whatever list it sent, as every proxy in a chain does.
    clientAddress: request.raw.socket.remoteAddress ?? '',
    pick: pickAgain,
  });
}
