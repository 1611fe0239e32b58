import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { traceIdOf } from '../proxy/headers.ts';

/**
 * Present (value "true") on every response while the store's backend is
 * unreachable: reads still come from the last known catalog.
 */
export const STALE_HEADER = 'x-maxine-stale';

/**
 * The headers every answer carries, whether fastify's onRequest hook or the
 * fast lane sends it: its request id; with tracing off, the trace id of the
 * caller's own valid traceparent (still the one to look for); and the stale
 * flag while the backend is away.
 */
export function commonHeaders(requestId: string, request: IncomingMessage, echoTraceId: boolean, stale: boolean): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = { 'x-request-id': requestId };
  if (echoTraceId) {
    const traceId = traceIdOf(request.headers.traceparent);
    if (traceId !== null) headers['x-trace-id'] = traceId;
  }
  if (stale) headers[STALE_HEADER] = 'true';
  return headers;
}
