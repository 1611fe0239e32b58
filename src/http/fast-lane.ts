import { Buffer } from 'node:buffer';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import type { FastifyBaseLogger, preParsingHookHandler, RouteOptions } from 'fastify';
import { parse as parseQuery } from 'fast-querystring';
import type { Action } from '../auth/actions.ts';
import type { InstanceKey } from '../core/instance.ts';
import type { RouteTimings } from '../observe/metrics-series.ts';
import { isAllowed, type AccessControl } from './access.ts';
import { isAction } from './permissions.ts';
import type { AppContext } from './context.ts';
import { pickInstance } from './discovery.ts';
import { errorJson, INTERNAL_ERROR } from './errors.ts';
import { discoverRoutes, renewRoutes, type DiscoverRoute, type LaneDiscover, type RenewRoute } from './fast-lane-routes.ts';
import { commonHeaders } from './response-headers.ts';

const JSON_TYPE = 'application/json; charset=utf-8';
const INTERNAL_JSON = errorJson(INTERNAL_ERROR);
const NO_BODY = Buffer.alloc(0);

/**
 * Clients ask for the same few discovers over and over: checked discovers
 * are kept by their whole URL (one lookup, and no slicing, per request), a
 * bounded number of bounded keys, dropped all at once when full (a URL is
 * checked again, never answered differently).
 */
const KNOWN_DISCOVERS_MAX = 2048;
const KNOWN_DISCOVER_URL_MAX_LENGTH = 512;

/** A heartbeat names an instance with bounded names; a longer body is the route's to read (and to refuse when over the limit). */
const HEARTBEAT_BODY_MAX = 1024;
/** Bodies naming these are the route's: its parser refuses prototype poisoning, with its own answer. */
const POISONING = /__proto__|constructor|prototype/;

/** Bodies the fast lane read and then handed to the route, which reads them from here instead of the spent socket stream. */
const handedOverBodies = new WeakMap<IncomingMessage, Buffer>();

export interface FastLaneOptions {
  readonly ctx: AppContext;
  readonly access: AccessControl;
  /** The generator fastify's requests get their ids from, so ids stay unique across both paths. */
  readonly requestId: (request: IncomingMessage) => string;
  /** Where a bug met on the fast lane is reported, as fastify's error handler reports the route's. */
  readonly logger: FastifyBaseLogger;
}

/** What a route declares about access (its `config`), read when fastify adds it. */
interface RouteAccess {
  readonly action: Action;
  /** Whether a credential the registry does not know is passed on to the instance rather than refused. */
  readonly forwardsCredentials: boolean;
}

/** A discover URL the fast lane checked: its route and what it asks for. */
interface KnownDiscover {
  readonly lane: Lane<DiscoverRoute>;
  readonly discover: LaneDiscover;
}

/** A route the fast lane answers, with its metrics (kept per route pattern, as fastify's hooks keep them). */
interface Lane<Route> {
  readonly route: Route;
  readonly timings: RouteTimings;
  /** Until fastify has added the route with an action for its permission, the fast lane leaves its requests to fastify. */
  access: RouteAccess | undefined;
}

/**
 * The fast lane: the hottest requests, discover (the Maxine API's, answered
 * with an instance as JSON or as a redirect, and Lightning mode's) and
 * heartbeat (both), served straight from node:http without fastify's
 * per-request machinery (router, request and reply objects, hook runners),
 * which measured about a fifth of their CPU per request
 * (docs/performance.md).
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
  /** By the path a discover's URL starts with, `?` included: only that exact spelling. */
  private readonly discovers = new Map<string, Lane<DiscoverRoute>>();
  /** By the whole URL. */
  private readonly knownDiscovers = new Map<string, KnownDiscover>();
  /** By the exact path of a heartbeat. */
  private readonly renewals = new Map<string, Lane<RenewRoute>>();

  constructor(private readonly options: FastLaneOptions) {
    const { requests } = options.ctx.metrics;
    for (const route of discoverRoutes(options.ctx)) {
      this.discovers.set(`${route.path}?`, { route, timings: requests.route(route.path), access: undefined });
    }
    for (const route of renewRoutes()) this.renewals.set(route.path, { route, timings: requests.route(route.path), access: undefined });
  }

  /** From now on every request goes to fastify, which answers 503 while it closes. */
  close(): void {
    this.closing = true;
  }

  /** A request listener that answers what it can and hands the rest to `fallback` (fastify's handler). */
  listener(fallback: RequestListener): RequestListener {
    return (request, response) => {
      let taken: boolean;
      try {
        taken = this.take(request, response, fallback);
      } catch (error) {
        return this.failed(request, response, error);
      }
      if (!taken) fallback(request, response);
    };
  }

  /** Answers (or starts to answer) a request the fast lane serves; false leaves it to fastify untouched. */
  private take(request: IncomingMessage, response: ServerResponse, fallback: RequestListener): boolean {
    const { method, url } = request;
    if (this.closing || url === undefined) return false;
    if (method === 'GET') {
      const known = this.knownDiscovers.get(url);
      if (known !== undefined) {
        this.discover(request, response, fallback, known, performance.now());
        return true;
      }
      const question = url.indexOf('?');
      const lane = question < 0 ? undefined : this.discovers.get(url.slice(0, question + 1));
      if (lane?.access !== undefined) {
        this.discoverChecking(request, response, fallback, lane, url, question);
        return true;
      }
    } else if (method === 'POST') {
      const lane = this.renewals.get(url);
      if (lane?.access !== undefined) {
        this.renew(request, response, fallback, lane);
        return true;
      }
    }
    return false;
  }

  /**
   * For fastify's onRoute hook: the fast lane decides access as each of its
   * routes declares it, and a route whose body the fast lane may have read
   * gets it back before its parser runs.
   */
  onRoute(route: RouteOptions): void {
    const lane = route.method === 'GET' ? this.discovers.get(`${route.url}?`) : route.method === 'POST' ? this.renewals.get(route.url) : undefined;
    if (lane === undefined) return;
    const permission = route.config?.permission;
    lane.access = permission !== undefined && isAction(permission) ? { action: permission, forwardsCredentials: route.config?.forwardsCredentials === true } : undefined;
    if (route.method !== 'POST') return;
    const handedOver: preParsingHookHandler = (request, _reply, payload, done) => {
      const body = handedOverBodies.get(request.raw);
      done(null, body === undefined ? payload : Readable.from([body]));
    };
    route.preParsing = [...[route.preParsing ?? []].flat(), handedOver];
  }

  /** Runs a later step of the fast lane (after the body or the credentials' check) as the listener runs the first. */
  private guarded(request: IncomingMessage, response: ServerResponse, step: () => void): void {
    try {
      step();
    } catch (error) {
      this.failed(request, response, error);
    }
  }

  /** An error escaped a step of the fast lane: a bug, logged and answered as the route's error handler would. */
  private failed(request: IncomingMessage, response: ServerResponse, error: unknown): void {
    this.options.logger.error({ err: error, method: request.method, url: request.url }, 'unhandled error on the fast lane');
    if (response.headersSent) {
      response.destroy();
      return;
    }
    response.writeHead(500, { 'x-request-id': this.options.requestId(request), 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(INTERNAL_JSON) });
    response.end(INTERNAL_JSON);
  }

  /** A discover whose URL the fast lane has not checked (or no longer keeps). */
  private discoverChecking(
    request: IncomingMessage,
    response: ServerResponse,
    fallback: RequestListener,
    lane: Lane<DiscoverRoute>,
    url: string,
    question: number,
  ): void {
    const started = performance.now();
    const known = this.checkedDiscover(lane, url, question);
    if (known === undefined) return fallback(request, response);
    this.discover(request, response, fallback, known, started);
  }

  private discover(request: IncomingMessage, response: ServerResponse, fallback: RequestListener, { lane, discover }: KnownDiscover, started: number): void {
    if (discover.proxied()) return fallback(request, response);
    const allowed = this.allowed(request, lane.access!, discover.discovery.serviceName);
    if (allowed === true && this.answerDiscover(request, response, lane, discover, started)) return;
    this.unanswered(request, response, fallback, allowed, undefined, () => this.answerDiscover(request, response, lane, discover, started));
  }

  /** Picks and sends; false when the pick met a bug (the route meets it again and reports it). */
  private answerDiscover(request: IncomingMessage, response: ServerResponse, lane: Lane<DiscoverRoute>, discover: LaneDiscover, started: number): boolean {
    let instance;
    try {
      instance = pickInstance(this.options.ctx, request, discover.discovery);
    } catch {
      return false;
    }
    const location = discover.redirectOf(instance);
    const body = location === undefined ? discover.bodyOf(instance) : NO_BODY;
    this.send(request, response, discover.statusOf(instance), body, location, 'GET', lane.timings, started);
    return true;
  }

  /** The discover a URL asks for on this lane, checked and kept; undefined when the route must explain what is wrong with it. */
  private checkedDiscover(lane: Lane<DiscoverRoute>, url: string, question: number): KnownDiscover | undefined {
    let discover: LaneDiscover | undefined;
    try {
      // fastify's router parses queries with the same parser, and its schema check compiles the same schema.
      discover = lane.route.read(parseQuery(url.slice(question + 1)));
    } catch {
      return undefined;
    }
    if (discover === undefined) return undefined;
    const known = { lane, discover };
    if (url.length <= KNOWN_DISCOVER_URL_MAX_LENGTH) {
      if (this.knownDiscovers.size >= KNOWN_DISCOVERS_MAX) this.knownDiscovers.clear();
      this.knownDiscovers.set(url, known);
    }
    return known;
  }

  private renew(request: IncomingMessage, response: ServerResponse, fallback: RequestListener, lane: Lane<RenewRoute>): void {
    const { headers } = request;
    const length = Number(headers['content-length']);
    const fits = length > 0 && length <= HEARTBEAT_BODY_MAX && length <= this.options.ctx.config.bodyLimitBytes;
    if (!fits || headers['transfer-encoding'] !== undefined || !isPlainJson(headers['content-type'])) {
      return fallback(request, response);
    }
    const started = performance.now();
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('error', ignoreClientGone);
    request.on('end', () =>
      this.guarded(request, response, () => this.renewRead(request, response, fallback, lane, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), started)),
    );
  }

  private renewRead(request: IncomingMessage, response: ServerResponse, fallback: RequestListener, lane: Lane<RenewRoute>, body: Buffer, started: number): void {
    const key = instanceNamed(lane.route, body);
    if (key === undefined) return this.toRoute(request, response, fallback, body);
    const allowed = this.allowed(request, lane.access!, key.service);
    if (allowed === true && this.answerRenewal(request, response, lane, key, started)) return;
    this.unanswered(request, response, fallback, allowed, body, () => this.answerRenewal(request, response, lane, key, started));
  }

  /** Renews and sends; false for an unknown instance (nothing was renewed, and the route explains it). */
  private answerRenewal(request: IncomingMessage, response: ServerResponse, lane: Lane<RenewRoute>, key: InstanceKey, started: number): boolean {
    const instance = this.options.ctx.registry.heartbeat(key);
    if (instance === undefined) return false;
    this.send(request, response, 200, lane.route.answerOf(instance), undefined, 'POST', lane.timings, started);
    return true;
  }

  /** The route answers, reading the body from here if the fast lane already read it. */
  private toRoute(request: IncomingMessage, response: ServerResponse, fallback: RequestListener, body: Buffer | undefined): void {
    if (body !== undefined) handedOverBodies.set(request, body);
    fallback(request, response);
  }

  /** Whether the request may have the route's action on `service`; a promise while credentials are verified. */
  private allowed(request: IncomingMessage, access: RouteAccess, service: string): boolean | Promise<boolean> {
    return isAllowed(this.options.access, request, access.action, service, access.forwardsCredentials);
  }

  /**
   * A request the fast lane did not answer at once. Refused, or declined by
   * `answer` (`allowed` is then a boolean), it goes to the route with the
   * `body` the fast lane read, if any. With the decision still pending,
   * `answer` runs once it allows the request, and the route takes it when
   * the decision refuses it, the server started closing meanwhile, or
   * `answer` declines. Hot paths call `answer` themselves first, so that
   * no closure is made for a request allowed at once.
   */
  private unanswered(
    request: IncomingMessage,
    response: ServerResponse,
    fallback: RequestListener,
    allowed: boolean | Promise<boolean>,
    body: Buffer | undefined,
    answer: () => boolean,
  ): void {
    if (typeof allowed === 'boolean') return this.toRoute(request, response, fallback, body);
    allowed.then(
      (yes) =>
        this.guarded(request, response, () => {
          if (!(yes && !this.closing && answer())) this.toRoute(request, response, fallback, body);
        }),
      () => this.toRoute(request, response, fallback, body),
    );
  }

  /** The response the route would send: the same headers in the same order, then the route's metrics. A redirect has a `location` and no body. */
  private send(
    request: IncomingMessage,
    response: ServerResponse,
    status: number,
    body: Buffer,
    location: string | undefined,
    method: string,
    timings: RouteTimings,
    started: number,
  ): void {
    // Tracing is off whenever the fast lane is on.
    const headers = commonHeaders(this.options.requestId(request), request, true, !this.options.ctx.registry.storeHealth().reachable);
    if (location === undefined) headers['content-type'] = JSON_TYPE;
    else headers.location = location;
    headers['content-length'] = body.length;
    response.writeHead(status, headers);
    response.end(body);
    timings.observe(method, status, (performance.now() - started) / 1000);
    this.options.ctx.metrics.fastLaneAnswered();
  }
}

/** A client that goes away mid-body leaves nothing to answer; one function for every request. */
function ignoreClientGone(): void {}

/** Whether fastify's JSON parser takes a body of this type for the route; anything else (charset variants included) is the route's. */
function isPlainJson(contentType: string | undefined): boolean {
  return contentType === 'application/json' || contentType === 'application/json; charset=utf-8';
}

/** The instance a heartbeat's body names, when the route's parser, schema and checks would take it. */
function instanceNamed(route: RenewRoute, body: Buffer): InstanceKey | undefined {
  const text = body.toString('utf8');
  if (POISONING.test(text)) return undefined;
  try {
    return route.keyOf(JSON.parse(text));
  } catch {
    return undefined;
  }
}
