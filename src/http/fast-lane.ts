import type { IncomingMessage, OutgoingHttpHeaders, RequestListener, ServerResponse } from 'node:http';
import { parse as parseQuery } from 'fast-querystring';
import { Compile } from 'typebox/compile';
import type { RouteTimings } from '../observe/metrics-series.ts';
import { traceIdOf } from '../proxy/headers.ts';
import { isAllowed, type AccessControl } from './access.ts';
import type { AppContext } from './context.ts';
import { discoverInstance } from './discovery.ts';
import { ApiError, errorJson } from './errors.ts';
import { DiscoverQuery, discoverRequest, isProxied, type DiscoverRequest } from './maxine/discover-request.ts';
import { STALE_HEADER } from './response-headers.ts';
import { instanceJson } from './views.ts';

/** The route the fast lane answers for, as fastify knows it (metrics are kept per route pattern). */
const DISCOVER_ROUTE = '/api/maxine/serviceops/discover';
/** Only this exact spelling: case variants, encodings and trailing slashes go to the router, which decides them. */
const DISCOVER_PREFIX = `${DISCOVER_ROUTE}?`;
const JSON_TYPE = 'application/json; charset=utf-8';
const UNAVAILABLE_JSON = errorJson(new ApiError(503, 'SERVICE_UNAVAILABLE', 'Service Unavailable'));
const validDiscoverQuery = Compile(DiscoverQuery);
/**
 * Clients ask for the same few queries over and over: checked requests are
 * kept by query string, a bounded number of bounded keys, dropped all at
 * once when full (a query is checked again, never answered differently).
 */
const KNOWN_QUERIES_MAX = 1024;
const KNOWN_QUERY_MAX_LENGTH = 512;

export interface FastLaneOptions {
  readonly ctx: AppContext;
  readonly access: AccessControl;
  /** The generator fastify's requests get their ids from, so ids stay unique across both paths. */
  readonly requestId: (request: IncomingMessage) => string;
}

/**
 * The fast lane: the hottest request, a discover answered with an instance
 * (as JSON or as a redirect), served straight from node:http without
 * fastify's per-request machinery (router, request and reply objects, hook
 * runners), which measured about a fifth of discover's CPU per request
 * (docs/performance.md).
 *
 * It answers only what the route would answer the same way: the same query
 * schema, the same checks (discover-request.ts), the same access decision
 * (access.ts), the same pick, the same bytes and headers, the same metrics.
 * Everything else, a refusal, an invalid query, the proxy mode, any other
 * spelling of the path, a server that is closing, is handed to fastify's
 * handler untouched, before anything was picked, counted or written, so
 * errors, refusals and their audit have one implementation: the route's.
 * Only used while tracing is off (a traced request gets its span from
 * fastify's hooks).
 */
export class FastLane {
  private closing = false;
  private readonly discoverTimings: RouteTimings;
  private readonly knownQueries = new Map<string, DiscoverRequest>();

  constructor(private readonly options: FastLaneOptions) {
    this.discoverTimings = options.ctx.metrics.requests.route(DISCOVER_ROUTE);
  }

  /** From now on every request goes to fastify, which answers 503 while it closes. */
  close(): void {
    this.closing = true;
  }

  /** A request listener that answers what it can and hands the rest to `fallback` (fastify's handler). */
  listener(fallback: RequestListener): RequestListener {
    return (request, response) => {
      if (!this.answer(request, response, fallback)) fallback(request, response);
    };
  }

  /** False when nothing was done and fastify must answer; true when answered here or handed over later. */
  private answer(request: IncomingMessage, response: ServerResponse, fallback: RequestListener): boolean {
    const url = request.url;
    if (this.closing || request.method !== 'GET' || url === undefined || !url.startsWith(DISCOVER_PREFIX)) return false;
    const started = performance.now();
    const discover = this.discoverRequest(url.slice(DISCOVER_PREFIX.length));
    if (discover === undefined || isProxied(this.options.ctx, discover)) return false;
    const allowed = isAllowed(this.options.access, request, 'discover', discover.serviceName, true);
    if (typeof allowed === 'boolean') return allowed && this.discover(request, response, discover, started);
    allowed.then(
      (yes) => {
        if (!(yes && !this.closing && this.discover(request, response, discover, started))) fallback(request, response);
      },
      () => fallback(request, response),
    );
    return true;
  }

  /** The checked request for this query string; undefined when the route must explain what is wrong with it. */
  private discoverRequest(queryString: string): DiscoverRequest | undefined {
    const known = this.knownQueries.get(queryString);
    if (known !== undefined) return known;
    // fastify's router parses queries with the same parser, and its schema check compiles the same schema.
    const query = parseQuery(queryString);
    if (!validDiscoverQuery.Check(query)) return undefined;
    let discover: DiscoverRequest;
    try {
      discover = discoverRequest(query);
    } catch {
      return undefined;
    }
    if (queryString.length <= KNOWN_QUERY_MAX_LENGTH) {
      if (this.knownQueries.size >= KNOWN_QUERIES_MAX) this.knownQueries.clear();
      this.knownQueries.set(queryString, discover);
    }
    return discover;
  }

  private discover(request: IncomingMessage, response: ServerResponse, discover: DiscoverRequest, started: number): boolean {
    const { ctx, requestId } = this.options;
    let instance;
    try {
      instance = discoverInstance(ctx, request, discover.discovery);
    } catch {
      // Refused before anything was picked (a name, strategy or filter the route explains), or a bug the route reports.
      return false;
    }
    // The headers fastify's onRequest hook sets, in its order.
    const headers: OutgoingHttpHeaders = { 'x-request-id': requestId(request) };
    const traceId = traceIdOf(request.headers.traceparent);
    if (traceId !== null) headers['x-trace-id'] = traceId;
    if (!ctx.registry.storeHealth().reachable) headers[STALE_HEADER] = 'true';
    let status: number;
    let body: string;
    if (instance === undefined) {
      status = 503;
      body = UNAVAILABLE_JSON;
      headers['content-type'] = JSON_TYPE;
    } else if (discover.json) {
      status = 200;
      body = instanceJson(instance);
      headers['content-type'] = JSON_TYPE;
    } else {
      status = 302;
      body = '';
      headers.location = instance.address + discover.endPoint;
    }
    headers['content-length'] = Buffer.byteLength(body);
    response.writeHead(status, headers);
    response.end(body);
    this.discoverTimings.observe('GET', status, (performance.now() - started) / 1000);
    ctx.metrics.fastLaneAnswered();
    return true;
  }
}
