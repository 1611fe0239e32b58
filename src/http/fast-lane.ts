import type { IncomingMessage, OutgoingHttpHeaders, RequestListener, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { preParsingHookHandler, RouteOptions } from 'fastify';
import { parse as parseQuery } from 'fast-querystring';
import { Compile } from 'typebox/compile';
import type { Action } from '../auth/actions.ts';
import type { InstanceKey } from '../core/instance.ts';
import type { RouteTimings } from '../observe/metrics-series.ts';
import { traceIdOf } from '../proxy/headers.ts';
import { isAllowed, type AccessControl } from './access.ts';
import type { AppContext } from './context.ts';
import { discoverInstance } from './discovery.ts';
import { ApiError, errorJson } from './errors.ts';
import { DiscoverQuery, discoverRequest, isProxied, type DiscoverRequest } from './maxine/discover-request.ts';
import { InstanceRef, instanceKey } from './maxine/instance-key.ts';
import { STALE_HEADER } from './response-headers.ts';
import { instanceJson } from './views.ts';

/** The routes the fast lane answers for, as fastify knows them (metrics are kept per route pattern). */
const DISCOVER_ROUTE = '/api/maxine/serviceops/discover';
const HEARTBEAT_ROUTE = '/api/maxine/serviceops/heartbeat';
/** Only these exact spellings: case variants, encodings and trailing slashes go to the router, which decides them. */
const DISCOVER_PREFIX = `${DISCOVER_ROUTE}?`;

const JSON_TYPE = 'application/json; charset=utf-8';
const UNAVAILABLE_JSON = errorJson(new ApiError(503, 'SERVICE_UNAVAILABLE', 'Service Unavailable'));
const validDiscoverQuery = Compile(DiscoverQuery);
const validInstanceRef = Compile(InstanceRef);

/**
 * Clients ask for the same few queries over and over: checked requests are
 * kept by query string, a bounded number of bounded keys, dropped all at
 * once when full (a query is checked again, never answered differently).
 */
const KNOWN_QUERIES_MAX = 1024;
const KNOWN_QUERY_MAX_LENGTH = 512;

/** A heartbeat names two bounded names; a longer body is the route's to read (and to refuse when over the limit). */
const HEARTBEAT_BODY_MAX = 1024;
/** The JSON bodies fastify's parser takes for the route; anything else (charset variants included) is the route's. */
const JSON_CONTENT_TYPES = new Set(['application/json', 'application/json; charset=utf-8']);
/** Bodies naming these are the route's: its parser refuses prototype poisoning, with its own answer. */
const POISONING = /__proto__|constructor|prototype/;

/** Bodies the fast lane read and then handed to the route, which reads them from here instead of the spent socket stream. */
const handedOverBodies = new WeakMap<IncomingMessage, Buffer>();

export interface FastLaneOptions {
  readonly ctx: AppContext;
  readonly access: AccessControl;
  /** The generator fastify's requests get their ids from, so ids stay unique across both paths. */
  readonly requestId: (request: IncomingMessage) => string;
}

/**
 * The fast lane: the two hottest requests, a discover answered with an
 * instance (as JSON or as a redirect) and a heartbeat, served straight from
 * node:http without fastify's per-request machinery (router, request and
 * reply objects, hook runners), which measured about a fifth of their CPU
 * per request (docs/performance.md).
 *
 * It answers only what the route would answer the same way: the same schema,
 * the same checks, the same access decision (access.ts), the same registry
 * call, the same bytes and headers, the same metrics. Everything else, a
 * refusal, invalid input, an unknown instance, the proxy mode, any other
 * spelling of the path, a server that is closing, is handed to fastify's
 * handler before anything was picked, renewed, counted or written, so
 * errors, refusals and their audit have one implementation: the route's.
 * A heartbeat's body, once read here, is handed over with the request.
 * Only used while tracing is off (a traced request gets its span from
 * fastify's hooks).
 */
export class FastLane {
  private closing = false;
  private readonly discoverTimings: RouteTimings;
  private readonly heartbeatTimings: RouteTimings;
  private readonly knownQueries = new Map<string, DiscoverRequest>();

  constructor(private readonly options: FastLaneOptions) {
    this.discoverTimings = options.ctx.metrics.requests.route(DISCOVER_ROUTE);
    this.heartbeatTimings = options.ctx.metrics.requests.route(HEARTBEAT_ROUTE);
  }

  /** From now on every request goes to fastify, which answers 503 while it closes. */
  close(): void {
    this.closing = true;
  }

  /** A request listener that answers what it can and hands the rest to `fallback` (fastify's handler). */
  listener(fallback: RequestListener): RequestListener {
    return (request, response) => {
      if (this.closing) return fallback(request, response);
      const { method, url } = request;
      if (method === 'GET' && url !== undefined && url.startsWith(DISCOVER_PREFIX)) this.discover(request, response, fallback, url);
      else if (method === 'POST' && url === HEARTBEAT_ROUTE) this.heartbeat(request, response, fallback);
      else fallback(request, response);
    };
  }

  /** For fastify's onRoute hook: a route whose body the fast lane may have read gets it back before its parser runs. */
  onRoute(route: RouteOptions): void {
    if (route.url !== HEARTBEAT_ROUTE || route.method !== 'POST') return;
    const handedOver: preParsingHookHandler = (request, _reply, payload, done) => {
      const body = handedOverBodies.get(request.raw);
      done(null, body === undefined ? payload : Readable.from([body]));
    };
    route.preParsing = [...[route.preParsing ?? []].flat(), handedOver];
  }

  private discover(request: IncomingMessage, response: ServerResponse, fallback: RequestListener, url: string): void {
    const started = performance.now();
    const discover = this.discoverRequest(url.slice(DISCOVER_PREFIX.length));
    if (discover === undefined || isProxied(this.options.ctx, discover)) return fallback(request, response);
    this.whenAllowed(request, response, fallback, 'discover', discover.serviceName, true, () => {
      let instance;
      try {
        instance = discoverInstance(this.options.ctx, request, discover.discovery);
      } catch {
        // Refused before anything was picked (a name, strategy or filter the route explains), or a bug the route reports.
        return false;
      }
      if (instance === undefined) this.send(request, response, 503, UNAVAILABLE_JSON, 'GET', this.discoverTimings, started);
      else if (discover.json) this.send(request, response, 200, instanceJson(instance), 'GET', this.discoverTimings, started);
      else this.send(request, response, 302, instance.address + discover.endPoint, 'GET', this.discoverTimings, started);
      return true;
    });
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

  private heartbeat(request: IncomingMessage, response: ServerResponse, fallback: RequestListener): void {
    const { headers } = request;
    const length = Number(headers['content-length']);
    const fits = length > 0 && length <= HEARTBEAT_BODY_MAX && length <= this.options.ctx.config.bodyLimitBytes;
    if (!fits || headers['transfer-encoding'] !== undefined || !JSON_CONTENT_TYPES.has(headers['content-type'] ?? '')) {
      return fallback(request, response);
    }
    const started = performance.now();
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    // A client that goes away mid-body leaves nothing to answer.
    request.on('error', () => {});
    request.on('end', () => this.heartbeatRead(request, response, fallback, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), started));
  }

  private heartbeatRead(request: IncomingMessage, response: ServerResponse, fallback: RequestListener, body: Buffer, started: number): void {
    const key = this.heartbeatKey(body);
    if (key === undefined) return this.handOver(request, response, fallback, body);
    this.whenAllowed(request, response, this.handOver.bind(this, request, response, fallback, body), 'register', key.service, false, () => {
      const instance = this.options.ctx.registry.heartbeat(key);
      // An unknown instance: nothing was renewed, and the route explains it.
      if (instance === undefined) return false;
      const answer = JSON.stringify({ serviceName: key.service, nodeName: key.id, timeOut: Math.round(instance.ttlMs / 1000) });
      this.send(request, response, 200, answer, 'POST', this.heartbeatTimings, started);
      return true;
    });
  }

  /** The route answers, reading the body the fast lane already read. */
  private handOver(request: IncomingMessage, response: ServerResponse, fallback: RequestListener, body: Buffer): void {
    handedOverBodies.set(request, body);
    fallback(request, response);
  }

  /** The instance a heartbeat's body names, when the route's parser and schema would take it. */
  private heartbeatKey(body: Buffer): InstanceKey | undefined {
    const text = body.toString('utf8');
    if (POISONING.test(text)) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return undefined;
    }
    if (!validInstanceRef.Check(parsed)) return undefined;
    try {
      return instanceKey(parsed.serviceName, parsed.nodeName);
    } catch {
      return undefined;
    }
  }

  /**
   * Runs `answer` once the request is allowed `action` on `service`, and
   * hands the request to the route when it is not, when the server started
   * closing meanwhile, or when `answer` declines (returns false).
   */
  private whenAllowed(
    request: IncomingMessage,
    response: ServerResponse,
    fallback: RequestListener,
    action: Action,
    service: string,
    forwardsCredentials: boolean,
    answer: () => boolean,
  ): void {
    const allowed = isAllowed(this.options.access, request, action, service, forwardsCredentials);
    if (typeof allowed === 'boolean') {
      if (!(allowed && answer())) fallback(request, response);
      return;
    }
    allowed.then(
      (yes) => {
        if (!(yes && !this.closing && answer())) fallback(request, response);
      },
      () => fallback(request, response),
    );
  }

  /** The response the route would send: its headers in the order fastify sets them, then the route's metrics. */
  private send(
    request: IncomingMessage,
    response: ServerResponse,
    status: number,
    bodyOrLocation: string,
    method: string,
    timings: RouteTimings,
    started: number,
  ): void {
    const headers: OutgoingHttpHeaders = { 'x-request-id': this.options.requestId(request) };
    const traceId = traceIdOf(request.headers.traceparent);
    if (traceId !== null) headers['x-trace-id'] = traceId;
    if (!this.options.ctx.registry.storeHealth().reachable) headers[STALE_HEADER] = 'true';
    let body = bodyOrLocation;
    if (status === 302) {
      headers.location = bodyOrLocation;
      body = '';
    } else {
      headers['content-type'] = JSON_TYPE;
    }
    headers['content-length'] = Buffer.byteLength(body);
    response.writeHead(status, headers);
    response.end(body);
    timings.observe(method, status, (performance.now() - started) / 1000);
    this.options.ctx.metrics.fastLaneAnswered();
  }
}
