import { connect as netConnect, isIP, type LookupFunction, type Socket } from 'node:net';
import { Agent, type Dispatcher } from 'undici';
import { isLinkLocalOrMetadataIp } from '../core/addresses.ts';
import type { HealthCheck, Instance } from '../core/instance.ts';
import { guardedLookup } from '../net/guarded-lookup.ts';

/**
 * One probe's verdict: `pass`; `warn` for HTTP 429 (the instance answers but
 * sheds load, as Consul judges it); `fail` for everything else. `reason` is
 * short and meant for people ("HTTP 503", "timed out after 2000 ms").
 */
export type ProbeResult = 'pass' | 'warn' | 'fail';

export interface ProbeOutcome {
  readonly result: ProbeResult;
  readonly reason: string;
  readonly durationMs: number;
}

/** Where a check probes an instance, worked out once per instance version. */
export type ProbeTarget =
  | { readonly type: 'http'; readonly origin: string; readonly hostname: string; readonly path: string; readonly url: string }
  | { readonly type: 'tcp'; readonly host: string; readonly port: number; readonly url: string };

/** Most body read when the check looks for text in it. */
export const BODY_LIMIT = 64 * 1024;

/** A body that is not inspected is read and thrown away up to this much, then the connection is dropped. */
const DISCARD_LIMIT = 64 * 1024;

export interface ProberOptions {
  /** MAXINE_ALLOW_LINK_LOCAL_INSTANCES: contact link-local and metadata addresses too. */
  readonly allowLinkLocal: boolean;
  /**
   * How long an idle probe connection is kept for the next probe of the same
   * origin. It should outlast the usual interval (plus jitter), else every
   * probe is a new connection; an instance's own `Keep-Alive: timeout` hint
   * shortens it. Default 15 s (the default interval is 10 s + 1 s jitter).
   */
  readonly keepAliveTimeoutMs?: number;
  /**
   * Most probe connections kept open. Beyond it a probe to an origin that
   * has no open connection asks for `Connection: close`, so the instances
   * that have one keep it (no churn) and the rest connect per probe.
   * Default 16384 (enough for 10,000 instances at one socket each).
   */
  readonly maxSockets?: number;
  readonly clock?: () => number;
}

export interface ProberStats {
  /** Probe connections open now (idle or busy). */
  readonly sockets: number;
  /** Connections opened since the start. */
  readonly connects: number;
}

/**
 * Runs probes. HTTP probes go through undici Agents of their own (never the
 * proxy's or the global dispatcher). A probe answers at its deadline
 * whatever stage it is in; a connection attempt nobody answers (a host that
 * is down, a firewall dropping packets) is ended by the connect timeout of
 * the agent it went through, one agent per timeout class (at most twice the
 * check's timeout), instead of lingering for long. Connections are kept alive between probes
 * within `keepAliveTimeoutMs` (one per instance in the steady state: an
 * instance is never probed twice at once), at most `maxSockets` of them in
 * all, every name resolved through the guarded lookup. Redirects are not
 * followed: a 3xx is judged by the status range.
 */
export class Prober {
  /** By connect timeout (connectTimeoutFor): a dozen at most, however many timeouts the checks use. */
  private readonly agents = new Map<number, Agent>();
  private readonly lookup: LookupFunction;
  private readonly allowLinkLocal: boolean;
  private readonly maxSockets: number;
  private readonly keepAliveMs: number;
  private readonly clock: () => number;
  /** Open connections per origin, following the agents' connect/disconnect events. */
  private readonly open = new Map<string, number>();
  private socketCount = 0;
  private connects = 0;
  private readonly tcpSockets = new Set<Socket>();

  constructor(options: ProberOptions) {
    this.allowLinkLocal = options.allowLinkLocal;
    this.lookup = guardedLookup(options.allowLinkLocal);
    this.maxSockets = options.maxSockets ?? 16_384;
    this.clock = options.clock ?? Date.now;
    this.keepAliveMs = options.keepAliveTimeoutMs ?? 15_000;
    if (!(Number.isSafeInteger(this.maxSockets) && this.maxSockets >= 1)) throw new RangeError(`maxSockets must be a positive integer, not ${this.maxSockets}`);
    if (!(Number.isSafeInteger(this.keepAliveMs) && this.keepAliveMs >= 1)) {
      throw new RangeError(`keepAliveTimeoutMs must be a positive integer, not ${this.keepAliveMs}`);
    }
  }

  stats(): ProberStats {
    return { sockets: this.socketCount, connects: this.connects };
  }

  async close(): Promise<void> {
    for (const socket of this.tcpSockets) socket.destroy();
    await Promise.all([...this.agents.values()].map((agent) => agent.destroy()));
  }

  probe(target: ProbeTarget, check: HealthCheck): Promise<ProbeOutcome> {
    return target.type === 'http' ? this.http(target, check) : this.tcpProbe(target, check);
  }

  /**
   * One request dispatched with a handler that judges the response as it
   * arrives: no response stream or abort signal per probe, which were most
   * of a probe's cost on the probe thread.
   */
  private http(target: Extract<ProbeTarget, { type: 'http' }>, check: HealthCheck): Promise<ProbeOutcome> {
    return new Promise<ProbeOutcome>((resolve) => {
      const probe = new HttpProbe(check, this.clock, resolve);
      try {
        this.refuseLiteral(target.hostname);
        // Beyond the socket cap, an origin without a connection of its own does not get one kept for it.
        const reset = this.socketCount >= this.maxSockets && !this.open.has(target.origin);
        this.agentFor(connectTimeoutFor(check.timeoutMs)).dispatch(
          { origin: target.origin, path: target.path, method: 'GET', headers: PROBE_HEADERS, reset, headersTimeout: 0, bodyTimeout: 0 },
          probe,
        );
      } catch (error) {
        probe.failed(error);
      }
    });
  }

  private agentFor(connectTimeoutMs: number): Agent {
    let agent = this.agents.get(connectTimeoutMs);
    if (agent === undefined) {
      agent = new Agent({
        // Per origin no limit of its own: the checker's concurrency bounds the probes in flight, and
        // instances sharing an origin (path-prefixed ones behind one server) must not queue behind each other.
        connections: null,
        pipelining: 1,
        keepAliveTimeout: this.keepAliveMs,
        // Caps an instance's own (longer) Keep-Alive hint; shorter hints are honoured.
        keepAliveMaxTimeout: this.keepAliveMs,
        // The probe's own deadline bounds headers and body.
        headersTimeout: 0,
        bodyTimeout: 0,
        connect: { lookup: this.lookup, timeout: connectTimeoutMs },
      });
      // The events carry the origin as a URL; requests name it as a string without the trailing '/'.
      agent.on('connect', (origin) => this.counted(originOf(origin), +1));
      agent.on('disconnect', (origin) => this.counted(originOf(origin), -1));
      this.agents.set(connectTimeoutMs, agent);
    }
    return agent;
  }

  private async tcpProbe(target: Extract<ProbeTarget, { type: 'tcp' }>, check: HealthCheck): Promise<ProbeOutcome> {
    const started = this.clock();
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), check.timeoutMs);
    let outcome: { result: ProbeResult; reason: string };
    try {
      outcome = await this.tcp(target, controller.signal);
    } catch (error) {
      outcome = { result: 'fail', reason: controller.signal.aborted ? timedOut(check) : failureReason(error) };
    } finally {
      clearTimeout(timer);
    }
    return { ...outcome, durationMs: Math.max(0, this.clock() - started) };
  }

  private tcp(target: Extract<ProbeTarget, { type: 'tcp' }>, signal: AbortSignal) {
    this.refuseLiteral(target.host);
    return new Promise<{ result: ProbeResult; reason: string }>((resolve, reject) => {
      const socket = netConnect({ host: target.host, port: target.port, lookup: this.lookup });
      const onAbort = () => {
        socket.destroy();
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.tcpSockets.add(socket);
      socket.once('close', () => {
        this.tcpSockets.delete(socket);
        signal.removeEventListener('abort', onAbort);
        // Destroyed by close(): no connect or error event comes. (After either, this rejection is a no-op.)
        reject(new Error('probe stopped'));
      });
      socket.once('connect', () => {
        signal.removeEventListener('abort', onAbort);
        socket.destroy();
        resolve({ result: 'pass', reason: 'connected' });
      });
      socket.once('error', (error) => {
        signal.removeEventListener('abort', onAbort);
        socket.destroy();
        reject(error);
      });
    });
  }

  /** The guarded lookup only sees names; a literal address is refused here the same way. */
  private refuseLiteral(hostname: string): void {
    if (this.allowLinkLocal) return;
    const bare = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
    if (isIP(bare) !== 0 && isLinkLocalOrMetadataIp(bare)) {
      const refused: NodeJS.ErrnoException = new Error(`${bare} is a link-local or metadata address, which Maxine does not contact`);
      refused.code = 'EADDRNOTAVAIL';
      throw refused;
    }
  }

  private counted(origin: string, delta: number): void {
    const n = (this.open.get(origin) ?? 0) + delta;
    if (n <= 0) this.open.delete(origin);
    else this.open.set(origin, n);
    this.socketCount = Math.max(0, this.socketCount + delta);
    if (delta > 0) this.connects++;
  }
}

/**
 * The connect timeout of the agent a check's probes go through: the smallest
 * 50 ms doubling not below its timeout (60 s at most), so that checks with
 * many different timeouts share a dozen agents, not one each.
 */
export function connectTimeoutFor(timeoutMs: number): number {
  let classMs = 50;
  while (classMs < timeoutMs && classMs < 60_000) classMs *= 2;
  return Math.min(classMs, 60_000);
}

const PROBE_HEADERS = { 'user-agent': 'maxine-health-check', accept: '*/*' };

/** Why a probe's request is cut short once its verdict is known or its time is up (never shown: the verdict is). */
const SETTLED = new Error('probe settled');

function timedOut(check: HealthCheck): string {
  return `timed out after ${check.timeoutMs} ms`;
}

function onProbeDeadline(probe: HttpProbe): void {
  probe.deadline();
}

/**
 * One HTTP probe as an undici dispatch handler. The verdict is given once:
 * by the status when the body is not inspected (once the body is read, so
 * the connection stays reusable; beyond DISCARD_LIMIT it is dropped), by the
 * body match, by an error, or by the deadline, whichever comes first. A
 * request still running then is cut short: at once, or, when the deadline
 * came before the connection, as soon as undici hands the request over.
 */
class HttpProbe implements Dispatcher.DispatchHandler {
  private readonly started: number;
  private readonly timer: NodeJS.Timeout;
  private controller: Dispatcher.DispatchController | null = null;
  private settled = false;
  private status = 0;
  /** The body match, when the status is in range and the check has one. */
  private wanted: Buffer | null = null;
  private seen: Buffer | null = null;
  private bodyBytes = 0;

  constructor(
    private readonly check: HealthCheck,
    private readonly clock: () => number,
    private readonly resolve: (outcome: ProbeOutcome) => void,
  ) {
    this.started = clock();
    this.timer = setTimeout(onProbeDeadline, check.timeoutMs, this);
  }

  deadline(): void {
    this.settle('fail', timedOut(this.check));
    // Before undici hands the request over (still connecting), onRequestStart stops it instead.
    if (this.controller !== null && !this.controller.aborted) this.controller.abort(SETTLED);
  }

  failed(error: unknown): void {
    this.settle('fail', failureReason(error));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.settled) controller.abort(SETTLED);
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number): void {
    this.status = statusCode;
    const { statusMin, statusMax, bodyMatch } = this.check;
    if (statusCode >= statusMin && statusCode <= statusMax && bodyMatch !== '') this.wanted = Buffer.from(bodyMatch, 'utf8');
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const wanted = this.wanted;
    if (wanted === null) {
      this.bodyBytes += chunk.length;
      if (this.bodyBytes > DISCARD_LIMIT) this.judgeStatus(controller);
      return;
    }
    const before = this.seen?.length ?? 0;
    // A copy: the chunk belongs to undici once this returns.
    let seen = Buffer.concat(this.seen === null ? [chunk] : [this.seen, chunk]);
    if (seen.length > BODY_LIMIT) seen = seen.subarray(0, BODY_LIMIT);
    this.seen = seen;
    // Only where a match could newly end: from just before the new bytes.
    if (seen.indexOf(wanted, Math.max(0, before - wanted.length + 1)) >= 0) {
      this.settle('pass', `HTTP ${this.status}`);
      this.discardRest();
    } else if (seen.length >= BODY_LIMIT) {
      this.bodyMismatch();
      this.discardRest();
    }
  }

  onResponseEnd(controller: Dispatcher.DispatchController): void {
    if (this.wanted === null) this.judgeStatus(controller);
    else this.bodyMismatch();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.failed(error);
  }

  private judgeStatus(controller: Dispatcher.DispatchController): void {
    const { statusMin, statusMax } = this.check;
    const status = this.status;
    const result = status >= statusMin && status <= statusMax ? 'pass' : status === 429 ? 'warn' : 'fail';
    this.settle(result, `HTTP ${status}`);
    // A body past the discard limit is not read on: the connection goes with it.
    if (this.bodyBytes > DISCARD_LIMIT) controller.abort(SETTLED);
  }

  /** The verdict is in: the rest of the body is read like one not inspected, so the connection stays reusable. */
  private discardRest(): void {
    this.wanted = null;
    this.seen = null;
    this.bodyBytes = 0;
  }

  private bodyMismatch(): void {
    const match = this.check.bodyMatch;
    const shown = match.length > 40 ? `${match.slice(0, 40)}...` : match;
    this.settle('fail', `body does not contain ${JSON.stringify(shown)}`);
  }

  private settle(result: ProbeResult, reason: string): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.resolve({ result, reason, durationMs: Math.max(0, this.clock() - this.started) });
  }
}

/**
 * Where a check probes an instance: `instance.address + check.path` for
 * HTTP; the instance's host and port for TCP. Port 0 (no port in the
 * address) means the scheme's: 80 or 443.
 */
export function probeTarget(instance: Instance, check: HealthCheck): ProbeTarget {
  if (check.type === 'tcp') {
    const host = instance.host.startsWith('[') && instance.host.endsWith(']') ? instance.host.slice(1, -1) : instance.host;
    const port = instance.port > 0 ? instance.port : instance.scheme === 'https' ? 443 : 80;
    const shown = host.includes(':') ? `[${host}]` : host;
    return { type: 'tcp', host, port, url: `tcp://${shown}:${port}` };
  }
  const url = new URL(instance.address + check.path);
  return { type: 'http', origin: url.origin, hostname: url.hostname, path: `${url.pathname}${url.search}`, url: url.href };
}

function originOf(origin: URL | string): string {
  return typeof origin === 'string' ? new URL(origin).origin : origin.origin;
}

const ERROR_REASONS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection reset',
  UND_ERR_SOCKET: 'connection closed by the instance',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  UND_ERR_HEADERS_TIMEOUT: 'timed out waiting for headers',
  UND_ERR_BODY_TIMEOUT: 'timed out reading the body',
  UND_ERR_RES_EXCEEDED_MAX_SIZE: 'response too large',
  HPE_INVALID_CONSTANT: 'not an HTTP response',
};

/** A short reason for a failed probe; the error's own message (trimmed) when it is not a known kind. */
export function failureReason(error: unknown): string {
  let current: unknown = error;
  // undici wraps socket errors; the cause carries the system code.
  for (let depth = 0; depth < 3 && current instanceof Error; depth++) {
    const code = (current as NodeJS.ErrnoException).code;
    if (code === 'EADDRNOTAVAIL') return trim(current.message);
    if (code !== undefined && code in ERROR_REASONS) return ERROR_REASONS[code]!;
    if (code !== undefined && (code.startsWith('ERR_TLS') || code.includes('CERT') || code.startsWith('ERR_SSL'))) {
      return trim(`TLS: ${current.message}`);
    }
    if (code !== undefined && code.startsWith('HPE_')) return 'not an HTTP response';
    current = current.cause;
  }
  return trim(error instanceof Error ? error.message : String(error));
}

function trim(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ');
  return oneLine.length > 200 ? `${oneLine.slice(0, 197)}...` : oneLine;
}
