import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Dispatcher } from 'undici';
import type { Instance } from '../core/instance.ts';
import type { Agents } from './agents.ts';
import type { Admission, Breakers, Verdict } from './breaker.ts';
import type { AnsweredStatus, ProxyCounters } from './counters.ts';
import { clientResponseHeaders, upstreamRequestHeaders, withTraceContext } from './headers.ts';
import { instanceKey } from '../core/keys.ts';
import type { LoadLease, LoadTracker } from './load-tracker.ts';
import type { OutlierDetector } from './outlier.ts';
import type { ProxyPolicy } from './policy.ts';
import type { RetryBudgets } from './retry-budget.ts';

export interface ForwardArgs {
  readonly service: string;
  readonly policy: ProxyPolicy;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Path and query appended to the instance's address (which may carry a path prefix); starts with '/'. */
  readonly upstreamPath: string;
  /** Appended to X-Forwarded-For. */
  readonly clientAddress: string;
  /**
   * An instance of the service picked with its strategy, skipping the keys
   * in `exclude` (`instanceKey(service, id)`: instances already tried by
   * this request or refused by their breaker); undefined when none is left.
   */
  readonly pick: (exclude: ReadonlySet<string>) => Instance | undefined;
}

/** The per-replica state a forward reads and feeds. */
export interface ForwarderParts {
  readonly agents: Agents;
  readonly load: LoadTracker;
  readonly breakers: Breakers;
  readonly outliers: OutlierDetector;
  readonly budgets: RetryBudgets;
  readonly counters: ProxyCounters;
  /** Uniform in [0, 1), for backoff jitter. */
  readonly random: () => number;
  /** A forward failed in a way that is a bug; the client got a 502. */
  readonly onError: (error: unknown) => void;
  /** Client spans for attempts; absent when tracing is off. */
  readonly tracing?: ProxyTracing | undefined;
}

/** Tracing as the proxy needs it (src/observe/spans.ts makes one with OpenTelemetry). */
export interface ProxyTracing {
  /** Called as a forward starts, in the client request's context: its attempts' spans are children of that context. */
  exchange(): ExchangeTracing;
}

export interface ExchangeTracing {
  /** Starts the client span of one attempt. */
  attempt(info: AttemptInfo): AttemptSpan;
}

export interface AttemptInfo {
  readonly method: string;
  /** scheme://host[:port] */
  readonly origin: string;
  readonly path: string;
  readonly service: string;
  readonly instanceId: string;
  /** Attempts of this request before this one. */
  readonly resendCount: number;
}

export interface AttemptSpan {
  /** The span's context as a W3C traceparent (and tracestate), sent to the instance. */
  readonly traceparent: string;
  readonly tracestate: string | undefined;
  /** The instance's final status code. */
  response(status: number): void;
  /** The attempt produced no response for the client. */
  failed(failure: string): void;
  end(): void;
}

/** RFC 9110 9.2.2: repeating these has the same effect as sending them once. */
const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/**
 * Retries and request bodies. A body is sent twice only if it was kept: one
 * whose Content-Length is at most this (and at most maxBodyBytes) is read
 * into memory before the first attempt when a retry after sending is
 * possible at all (policy.retries > 0 and an idempotent method). Every other
 * body is streamed from the client as the instance takes it, never held,
 * and once an attempt has started reading it, it cannot be sent again: that
 * request is not retried. An attempt that never connected has read nothing,
 * so a refused connection is retried whatever the body (and the method).
 */
const REPLAY_LIMIT = 64 * 1024;

/** Why an attempt produced no response for the client. */
type Failure =
  /** No connection (refused, unreachable, DNS, refused by the lookup guard): nothing was sent. */
  | 'connect'
  /** No connection within connectTimeoutMs: nothing was sent. */
  | 'connect-timeout'
  /** Connected, then the instance kept silent for requestTimeoutMs. */
  | 'timeout'
  /** Connected, then the connection failed or the response was malformed. */
  | 'broken'
  /** The chunked request body grew past maxBodyBytes. */
  | 'too-large'
  /** undici refused the request itself (a header or path it will not send). */
  | 'unsendable'
  /** The client went away: nobody to answer. */
  | 'client-gone';

/** 'done': the response went to the client (or was cut); 'retry': a 5xx is being discarded for a retry. */
type Outcome = 'done' | 'retry' | Failure;

/** Thrown into undici to end an attempt for a reason of the proxy's own; the common ones are made once, not per request. */
class ProxyAbort extends Error {
  constructor(readonly failure: Failure) {
    super(`proxy attempt ended: ${failure}`);
  }
}
const TIMEOUT = new ProxyAbort('timeout');
const TOO_LARGE = new ProxyAbort('too-large');
const CLIENT_GONE = new ProxyAbort('client-gone');

const NOTHING: ReadonlySet<string> = new Set();

interface Target {
  readonly key: string;
  /** scheme://host[:port], which undici pools connections by. */
  readonly origin: string;
  /** The instance's path prefix without a trailing '/'. */
  readonly prefix: string;
}

/** Instances are immutable, so what a request needs from one is computed once per object. */
const targets = new WeakMap<Instance, Target>();

function targetOf(instance: Instance): Target {
  let target = targets.get(instance);
  if (target === undefined) {
    const host = instance.host.includes(':') && !instance.host.startsWith('[') ? `[${instance.host}]` : instance.host;
    target = {
      key: instanceKey(instance.service, instance.id),
      origin: `${instance.scheme}://${host}${instance.port > 0 ? `:${instance.port}` : ''}`,
      prefix: instance.path.endsWith('/') ? instance.path.slice(0, -1) : instance.path,
    };
    targets.set(instance, target);
  }
  return target;
}

function classify(error: unknown, sent: boolean): Failure {
  if (error instanceof ProxyAbort) return error.failure;
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED') return 'unsendable';
  if (!sent) return code === 'UND_ERR_CONNECT_TIMEOUT' ? 'connect-timeout' : 'connect';
  return 'broken';
}

/** A WebSocket (or other protocol) upgrade. h2c is left out: a server may ignore it and answer in HTTP/1.1. */
function isUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return upgrade !== undefined && upgrade.toLowerCase() !== 'h2c' && /(?:^|,)\s*upgrade\s*(?:,|$)/i.test(req.headers.connection ?? '');
}

/**
 * Forwards client requests to instances with undici's `dispatch`, the
 * lowest-level API: the response headers arrive in a callback, where the
 * proxy decides to relay, or to discard a 5xx and retry, before any byte
 * reaches the client, and body chunks are written straight into the
 * ServerResponse with backpressure (no intermediate Readable, no buffering).
 */
export class Forwarder {
  constructor(private readonly parts: ForwarderParts) {}

  forward(args: ForwardArgs): Promise<void> {
    const exchange = new Exchange(this.parts, args);
    return exchange.run().catch((error: unknown) => {
      this.parts.onError(error);
      try {
        exchange.answer(502, 'BAD_GATEWAY', 'The request could not be forwarded.');
      } catch {
        args.res.destroy();
      }
    });
  }
}

/** One client request and its attempts. */
class Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly policy: ProxyPolicy;
  private readonly idempotent: boolean;
  private readonly hasBody: boolean;
  private readonly chunked: boolean;
  /** Content-Length, or -1 for a chunked body. */
  private readonly length: number;
  /** null: no body; a Buffer: read ahead, replayable; 'stream': read from the client while sending. */
  private body: Buffer | 'stream' | null = null;
  /** The streamed body was started: it cannot be sent again. */
  private bodyPulled = false;
  /** The streamed body is waiting for the client's next chunk (the instance is not to blame for the time). */
  waitingForClient = false;
  clientGone = false;
  private headers: string[] | null = null;
  private attempts = 0;
  /** Keys not to pick: tried by this request, or refused by their breaker. */
  private exclude: Set<string> | null = null;
  private refused: Set<string> | null = null;
  private current: Attempt | null = null;
  /** The instance chosen for the next attempt, and its breaker's admission. */
  private chosen: Instance | null = null;
  private chosenAdmission: Admission = 'allowed';
  private readonly tracing: ExchangeTracing | null;

  constructor(
    readonly parts: ForwarderParts,
    private readonly args: ForwardArgs,
  ) {
    this.tracing = parts.tracing === undefined ? null : parts.tracing.exchange();
    this.req = args.req;
    this.res = args.res;
    this.policy = args.policy;
    this.idempotent = IDEMPOTENT.has(args.req.method ?? '');
    const headers = args.req.headers;
    this.chunked = headers['transfer-encoding'] !== undefined;
    // node's parser has already refused a malformed Content-Length.
    this.length = this.chunked ? -1 : Number(headers['content-length'] ?? 0);
    this.hasBody = this.chunked || this.length > 0;
  }

  async run(): Promise<void> {
    const { req, res, policy, parts } = this;
    parts.counters.requests++;
    res.once('close', this.onClientClose);
    if (isUpgrade(req)) {
      return this.answer(501, 'NOT_IMPLEMENTED', 'Maxine does not proxy protocol upgrades such as WebSocket.');
    }
    if (this.length > policy.maxBodyBytes) return this.tooLarge();
    if (!this.choose()) return this.unavailable();
    parts.budgets.request(this.args.service);
    if (this.hasBody) {
      if (!this.chunked && this.length <= REPLAY_LIMIT && policy.retries > 0 && this.idempotent) {
        const body = await this.readBody();
        if (body === null) return this.release();
        this.body = body;
      } else {
        this.body = 'stream';
      }
    }
    this.headers = upstreamRequestHeaders(req, this.args.clientAddress, policy.passAuthorization);
    for (;;) {
      const outcome = await this.attempt();
      if (outcome === 'done') return;
      if (outcome !== 'retry' && !this.retryAfter(outcome)) return this.fail(outcome);
      const cap = policy.retryBackoffMs * 10;
      const delay = parts.random() * Math.min(policy.retryBackoffMs * 2 ** (this.attempts - 1), cap);
      if (delay >= 1) await sleep(delay);
      if (this.clientGone) return this.release();
    }
  }

  /** Answer with Maxine's JSON error shape; if the response already started, cut the connection instead. */
  answer(status: AnsweredStatus, code: string, message: string): void {
    const res = this.res;
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    this.parts.counters.answered[status]++;
    const body = JSON.stringify({ message, code });
    const headers: OutgoingHttpHeaders = {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
    };
    // An unread request body would be taken for the next request on this connection.
    if (this.hasBody && !this.req.readableEnded) headers.connection = 'close';
    res.writeHead(status, headers).end(body);
  }

  /** Called by an attempt on a 5xx response: true when it should be discarded and the request retried. */
  retryAfter5xx(): boolean {
    return this.mayRetry(this.idempotent) && this.prepareRetry();
  }

  /** A verdict on an attempt's instance, for its breaker and the outlier detector. */
  judge(attempt: Attempt, verdict: Verdict, outlier: boolean): void {
    const { breakers, outliers } = this.parts;
    const policy = this.policy;
    breakers.record(attempt.target.key, attempt.admission === 'trial', verdict, policy.breakerFailures, policy.breakerOpenMs);
    if (verdict === 'success') outliers.success(attempt.target.key);
    else if (outlier) outliers.failure(attempt.target.key, attempt.instance.service, attempt.instance.id, policy);
  }

  /** The request body for one attempt. */
  bodyFor(): Buffer | AsyncIterable<Buffer> | null {
    return this.body === 'stream' ? this.streamBody() : this.body;
  }

  private readonly onClientClose = (): void => {
    if (this.res.writableFinished) return;
    this.clientGone = true;
    this.parts.counters.clientAborts++;
    this.current?.abort(CLIENT_GONE);
  };

  private attempt(): Promise<Outcome> {
    const instance = this.chosen!;
    this.chosen = null;
    this.attempts++;
    const target = targetOf(instance);
    const path = target.prefix + this.args.upstreamPath;
    const method = this.req.method as Dispatcher.HttpMethod;
    const span =
      this.tracing === null
        ? null
        : this.tracing.attempt({ method, origin: target.origin, path, service: instance.service, instanceId: instance.id, resendCount: this.attempts - 1 });
    const attempt = new Attempt(this, instance, target, this.chosenAdmission, this.parts.load.start(instance), span);
    this.current = attempt;
    this.parts.agents.get(this.policy.connectTimeoutMs).dispatch(
      {
        origin: target.origin,
        path,
        method,
        // With tracing on, the instance sees this attempt's span as its parent.
        headers: span === null ? this.headers! : withTraceContext(this.headers!, span.traceparent, span.tracestate),
        // Documented (Dispatcher.md: "Iterable | AsyncIterable") but missing from undici's type.
        body: this.bodyFor() as Dispatcher.DispatchOptions['body'],
        headersTimeout: 0,
        bodyTimeout: 0,
      },
      attempt,
    );
    return attempt.outcome;
  }

  /**
   * Is another attempt safe? A request that never reached an instance (no
   * connection) may always be sent again. One that may have reached it only
   * when its method is idempotent, and for a streamed body only while none
   * of it was read (it cannot be read twice). And only within the attempts
   * and the retry budget.
   */
  private retryAfter(failure: Failure): boolean {
    const unsent = failure === 'connect' || failure === 'connect-timeout';
    const safe = unsent || ((failure === 'timeout' || failure === 'broken') && this.idempotent);
    return this.mayRetry(safe) && this.prepareRetry();
  }

  private mayRetry(safe: boolean): boolean {
    if (!safe || this.clientGone || this.attempts > this.policy.retries) return false;
    if (this.body === 'stream' && this.bodyPulled) return false;
    const { budgets, counters } = this.parts;
    if (!budgets.canRetry(this.args.service, this.policy.retryBudgetPercent, this.policy.minRetriesPerSecond)) {
      counters.retriesDeniedByBudget++;
      return false;
    }
    return true;
  }

  private prepareRetry(): boolean {
    (this.exclude ??= new Set()).add(this.current!.target.key);
    if (!this.choose()) return false;
    this.parts.budgets.recordRetry(this.args.service);
    this.parts.counters.retries++;
    return true;
  }

  /**
   * Choose the next instance: one not tried yet when there is one, else one
   * already tried (another attempt there beats none), never one whose
   * breaker refuses.
   */
  private choose(): boolean {
    if (this.chooseFrom(false)) return true;
    return this.exclude !== null && this.exclude.size > (this.refused?.size ?? 0) && this.chooseFrom(true);
  }

  private chooseFrom(triedToo: boolean): boolean {
    const breakerFailures = this.policy.breakerFailures;
    for (;;) {
      const exclude = (triedToo ? this.refused : this.exclude) ?? NOTHING;
      const instance = this.args.pick(exclude);
      if (instance === undefined) return false;
      const key = targetOf(instance).key;
      // A pick that ignores `exclude` must not make this loop forever.
      if (exclude.has(key)) return false;
      const admission = this.parts.breakers.admit(key, breakerFailures);
      if (admission !== 'refused') {
        this.chosen = instance;
        this.chosenAdmission = admission;
        return true;
      }
      (this.refused ??= new Set()).add(key);
      (this.exclude ??= new Set()).add(key);
    }
  }

  /** The chosen instance will not be tried after all: give back a half-open trial. */
  private release(): void {
    if (this.chosen === null) return;
    const key = targetOf(this.chosen).key;
    this.chosen = null;
    if (this.chosenAdmission === 'trial') {
      this.parts.breakers.record(key, true, 'neutral', this.policy.breakerFailures, this.policy.breakerOpenMs);
    }
  }

  private async readBody(): Promise<Buffer | null> {
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of this.req) chunks.push(chunk as Buffer);
    } catch {
      return null;
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  }

  /** The client's body, read as the instance takes it; counts bytes against maxBodyBytes. */
  private async *streamBody(): AsyncGenerator<Buffer, void, undefined> {
    this.bodyPulled = true;
    // Ending early (the attempt failed) must not destroy the request: the client is still owed an answer.
    const chunks = this.req.iterator({ destroyOnReturn: false }) as AsyncIterator<Buffer>;
    const max = this.policy.maxBodyBytes;
    let total = 0;
    for (;;) {
      let step: IteratorResult<Buffer>;
      this.waitingForClient = true;
      try {
        step = await chunks.next();
      } catch {
        throw CLIENT_GONE;
      } finally {
        this.waitingForClient = false;
      }
      if (step.done === true) return;
      total += step.value.length;
      if (total > max) throw TOO_LARGE;
      this.current?.touch();
      yield step.value;
    }
  }

  private fail(failure: Failure): void {
    const service = this.args.service;
    switch (failure) {
      case 'connect':
        return this.answer(502, 'BAD_GATEWAY', `Could not connect to an instance of service ${service}.`);
      case 'connect-timeout':
        return this.answer(504, 'GATEWAY_TIMEOUT', `Connecting to an instance of service ${service} timed out.`);
      case 'timeout':
        return this.answer(504, 'GATEWAY_TIMEOUT', `An instance of service ${service} did not answer within ${this.policy.requestTimeoutMs} ms.`);
      case 'broken':
        return this.answer(502, 'BAD_GATEWAY', `The connection to an instance of service ${service} failed before a complete response.`);
      case 'unsendable':
        return this.answer(502, 'BAD_GATEWAY', 'The request cannot be forwarded as sent.');
      case 'too-large':
        return this.tooLarge();
      case 'client-gone':
        return;
    }
  }

  private tooLarge(): void {
    this.answer(413, 'PAYLOAD_TOO_LARGE', `The request body is larger than ${this.policy.maxBodyBytes} bytes.`);
  }

  private unavailable(): void {
    this.answer(503, 'SERVICE_UNAVAILABLE', `No instance of service ${this.args.service} is available.`);
  }
}

type Phase = 'waiting' | 'relaying' | 'discarding' | 'ended';

/**
 * One attempt on one instance: undici's handler for it. The request timer
 * runs only while the proxy waits on the instance: from the start of the
 * request until its headers, and between body chunks either way. It is
 * re-armed instead of firing while the wait is the client's (the client
 * reads the response slowly, or has not sent the next body chunk yet).
 */
class Attempt implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | null = null;
  private timer: NodeJS.Timeout | null = null;
  private phase: Phase = 'waiting';
  private clientPaused = false;
  /** The request was handed to a connected socket: it may have reached the instance. */
  private sent = false;
  private judged = false;
  private failed = false;
  private readonly startedAt = performance.now();
  private settle!: (outcome: Outcome) => void;
  readonly outcome: Promise<Outcome>;

  constructor(
    private readonly exchange: Exchange,
    readonly instance: Instance,
    readonly target: Target,
    readonly admission: Admission,
    private readonly lease: LoadLease,
    private readonly span: AttemptSpan | null,
  ) {
    this.outcome = new Promise((resolve) => {
      this.settle = resolve;
    });
  }

  abort(reason: ProxyAbort): void {
    this.controller?.abort(reason);
  }

  /** The request body made progress. */
  touch(): void {
    this.timer?.refresh();
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    this.sent = true;
    if (this.exchange.clientGone) {
      controller.abort(CLIENT_GONE);
      return;
    }
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(attemptTimedOut, this.exchange.policy.requestTimeoutMs, this);
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
    statusMessage?: string,
  ): void {
    // 1xx (103 Early Hints and the like) are informational: the final response follows.
    if (statusCode < 200 || this.phase !== 'waiting') return;
    this.span?.response(statusCode);
    const exchange = this.exchange;
    exchange.parts.load.observeLatency(this.lease, performance.now() - this.startedAt);
    this.timer?.refresh();
    if (statusCode >= 500) {
      this.judge('failure', true);
      if (exchange.retryAfter5xx()) {
        // Drained, not aborted: the connection stays reusable and the retry does not wait for it.
        this.phase = 'discarding';
        this.settle('retry');
        return;
      }
    }
    try {
      exchange.res.writeHead(statusCode, statusMessage || undefined, clientResponseHeaders(headers));
    } catch {
      // A header node refuses to send: the instance's response is malformed.
      this.judge('failure', true);
      controller.abort(new ProxyAbort('broken'));
      return;
    }
    this.judge('success', false);
    this.phase = 'relaying';
    exchange.parts.counters.relayed(statusCode);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.timer?.refresh();
    if (this.phase !== 'relaying') return;
    const res = this.exchange.res;
    if (!res.write(chunk)) {
      this.clientPaused = true;
      controller.pause();
      res.once('drain', () => this.drained());
    }
  }

  onResponseEnd(): void {
    if (this.end() === 'relaying') {
      this.exchange.res.end();
      this.settle('done');
    }
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    const failure = classify(error, this.sent);
    this.span?.failed(failure);
    const neutral = failure === 'too-large' || failure === 'client-gone' || failure === 'unsendable';
    if (failure === 'timeout') this.exchange.parts.load.observeLatency(this.lease, performance.now() - this.startedAt);
    // A timeout counts against the breaker only: a slow instance is not ejected for being slow.
    this.judge(neutral ? 'neutral' : 'failure', !neutral && failure !== 'timeout');
    const phase = this.end();
    if (phase === 'relaying') {
      // The status line is gone: cutting the connection is the only way left to say the body is incomplete.
      this.exchange.res.destroy();
      this.settle('done');
    } else if (phase === 'waiting') {
      this.settle(failure);
    }
  }

  /**
   * The first verdict is the one that counts: once the response headers
   * judged the instance, a later error (the client leaving, a body cut
   * short) does not judge it again.
   */
  private judge(verdict: Verdict, outlier: boolean): void {
    if (this.judged) return;
    this.judged = true;
    this.failed = verdict === 'failure';
    this.exchange.judge(this, verdict, outlier);
  }

  private end(): Phase {
    const phase = this.phase;
    this.phase = 'ended';
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.exchange.parts.load.finish(this.lease, this.failed);
    this.span?.end();
    return phase;
  }

  /** The request timer fired: the wait was the instance's unless the client was the one holding things up. */
  timedOut(): void {
    if (this.clientPaused || this.exchange.waitingForClient) {
      this.timer?.refresh();
      return;
    }
    this.controller?.abort(TIMEOUT);
  }

  private drained(): void {
    this.clientPaused = false;
    this.timer?.refresh();
    this.controller?.resume();
  }
}

/** A function of the module, not a closure per attempt: the timer passes the attempt. */
function attemptTimedOut(attempt: Attempt): void {
  attempt.timedOut();
}
