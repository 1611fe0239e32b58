import { randomFillSync } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';

/** RFC 9110 7.6.1: meaningful for one connection only, never forwarded (either direction). */
const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Request headers the proxy sets itself or must not pass on: Host is the
 * instance's (the client's goes to X-Forwarded-Host), Expect is answered by
 * node's server before the body arrives, the X-Forwarded-* and trace headers
 * are rebuilt below.
 */
const REBUILT: ReadonlySet<string> = new Set([
  'host',
  'expect',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'traceparent',
  'tracestate',
]);

/**
 * Header names listed in Connection (RFC 9110 7.6.1) beyond the hop-by-hop
 * set; null for the usual "keep-alive" or "close", so the common case
 * allocates nothing.
 */
function connectionNamed(value: string | string[] | undefined): Set<string> | null {
  if (value === undefined || value === 'keep-alive' || value === 'close') return null;
  let named: Set<string> | null = null;
  for (const part of Array.isArray(value) ? value : [value]) {
    for (const token of part.split(',')) {
      const name = token.trim().toLowerCase();
      if (name === '' || HOP_BY_HOP.has(name) || name === 'close') continue;
      (named ??= new Set()).add(name);
    }
  }
  return named;
}

/**
 * The headers sent to the instance, as a flat [name, value, ...] list for
 * undici: the client's, less hop-by-hop ones and Authorization (unless the
 * policy passes it), plus X-Forwarded-For (the client's list with the client
 * appended), X-Forwarded-Proto, X-Forwarded-Host and a W3C traceparent.
 */
export function upstreamRequestHeaders(req: IncomingMessage, clientAddress: string, passAuthorization: boolean): string[] {
  const headers = req.headers;
  const named = connectionNamed(headers.connection);
  const out: string[] = [];
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || REBUILT.has(name) || named?.has(name)) continue;
    if (name === 'authorization' && !passAuthorization) continue;
    const value = headers[name];
    // undici takes a flat list of strings; a repeated name is sent as repeated lines.
    if (typeof value === 'string') out.push(name, value);
    else if (value !== undefined) for (const item of value) out.push(name, item);
  }
  const forwardedFor = headers['x-forwarded-for'];
  out.push('x-forwarded-for', forwardedFor ? `${forwardedFor}, ${clientAddress}` : clientAddress);
  out.push('x-forwarded-proto', (req.socket as Partial<TLSSocket>).encrypted === true ? 'https' : 'http');
  if (headers.host !== undefined) out.push('x-forwarded-host', headers.host);
  const traceparent = headers.traceparent;
  if (typeof traceparent === 'string' && isValidTraceparent(traceparent)) {
    out.push('traceparent', traceparent);
    // tracestate only means something beside the traceparent it came with.
    const tracestate = headers.tracestate;
    if (typeof tracestate === 'string' && !named?.has('tracestate')) out.push('tracestate', tracestate);
  } else {
    out.push('traceparent', newTraceparent());
  }
  return out;
}

/** `headers` from upstreamRequestHeaders with the trace context replaced (a copy: the list is shared by the attempts). */
export function withTraceContext(headers: readonly string[], traceparent: string, tracestate: string | undefined): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (name !== 'traceparent' && name !== 'tracestate') out.push(name, headers[i + 1]!);
  }
  out.push('traceparent', traceparent);
  if (tracestate !== undefined) out.push('tracestate', tracestate);
  return out;
}

/**
 * A flat [name, value, ...] list for ServerResponse.writeHead. A repeated
 * header (Set-Cookie) stays one name with an array value: writeHead turns a
 * flat list into setHeader calls when the route already set a header, and
 * setHeader keeps only the last of two equal names.
 */
export type HeaderList = (string | string[])[];

/** The instance's response headers for the client, less hop-by-hop ones. */
export function clientResponseHeaders(headers: IncomingHttpHeaders): HeaderList {
  const named = connectionNamed(headers.connection);
  const out: HeaderList = [];
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || named?.has(name)) continue;
    const value = headers[name];
    if (value !== undefined) out.push(name, value);
  }
  return out;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?$/;
const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);

/**
 * W3C Trace Context: version ff is invalid, version 00 has exactly four
 * fields, later versions may append fields; all-zero ids are invalid.
 */
export function isValidTraceparent(value: string): boolean {
  const match = TRACEPARENT.exec(value);
  if (match === null) return false;
  const [, version, traceId, spanId, extra] = match;
  if (version === 'ff' || (version === '00' && extra !== undefined)) return false;
  return traceId !== ZERO_TRACE_ID && spanId !== ZERO_SPAN_ID;
}

/** The trace id of a valid traceparent header, else null. */
export function traceIdOf(traceparent: string | string[] | undefined): string | null {
  return typeof traceparent === 'string' && isValidTraceparent(traceparent) ? traceparent.slice(3, 35) : null;
}

/** Random bytes are drawn in batches: one call into the CSPRNG per 170 requests. */
const ID_BYTES = 24;
const pool = Buffer.alloc(ID_BYTES * 170);
let poolOffset = pool.length;

function isZero(buffer: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buffer[i] !== 0) return false;
  return true;
}

/** A new trace: version 00, random 16-byte trace id and 8-byte span id, sampled. */
export function newTraceparent(): string {
  if (poolOffset === pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const at = poolOffset;
  poolOffset += ID_BYTES;
  // All-zero ids are invalid; a 2^-64 chance, but a zero id would be dropped downstream.
  if (isZero(pool, at, at + 16)) pool[at + 15] = 1;
  if (isZero(pool, at + 16, at + ID_BYTES)) pool[at + ID_BYTES - 1] = 1;
  return `00-${pool.toString('hex', at, at + 16)}-${pool.toString('hex', at + 16, at + ID_BYTES)}-01`;
}
