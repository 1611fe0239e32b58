import { connect as netConnect, isIP, type LookupFunction, type Socket } from 'node:net';
import { Agent } from 'undici';
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
 * Runs probes. HTTP probes share one undici Agent of their own (never the
 * proxy's or the global dispatcher), connections kept alive between probes
 * within `keepAliveTimeoutMs` (one per instance in the steady state: an
 * instance is never probed twice at once), at most `maxSockets` of them
 * kept, every name resolved through the guarded lookup. Redirects are not followed: a 3xx is judged
 * by the status range.
 */
export class Prober {
  private readonly agent: Agent;
  private readonly lookup: LookupFunction;
  private readonly allowLinkLocal: boolean;
  private readonly maxSockets: number;
  private readonly clock: () => number;
  /** Open connections per origin, following the agent's connect/disconnect events. */
  private readonly open = new Map<string, number>();
  private socketCount = 0;
  private connects = 0;
  private readonly tcpSockets = new Set<Socket>();

  constructor(options: ProberOptions) {
    this.allowLinkLocal = options.allowLinkLocal;
    this.lookup = guardedLookup(options.allowLinkLocal);
    this.maxSockets = options.maxSockets ?? 16_384;
    this.clock = options.clock ?? Date.now;
    const keepAlive = options.keepAliveTimeoutMs ?? 15_000;
    if (!(Number.isSafeInteger(this.maxSockets) && this.maxSockets >= 1)) throw new RangeError(`maxSockets must be a positive integer, not ${this.maxSockets}`);
    if (!(Number.isSafeInteger(keepAlive) && keepAlive >= 1)) throw new RangeError(`keepAliveTimeoutMs must be a positive integer, not ${keepAlive}`);
    this.agent = new Agent({
      // Per origin no limit of its own: the checker's concurrency bounds the probes in flight, and
      // instances sharing an origin (path-prefixed ones behind one server) must not queue behind each other.
      connections: null,
      pipelining: 1,
      keepAliveTimeout: keepAlive,
      // Caps an instance's own (longer) Keep-Alive hint; shorter hints are honoured.
      keepAliveMaxTimeout: keepAlive,
      // The probe's own deadline (an abort signal) bounds connect + headers + body; these are backstops.
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
      connect: { lookup: this.lookup, timeout: 60_000 },
    });
    // The events carry the origin as a URL; requests name it as a string without the trailing '/'.
    this.agent.on('connect', (origin) => this.counted(originOf(origin), +1));
    this.agent.on('disconnect', (origin) => this.counted(originOf(origin), -1));
  }

  stats(): ProberStats {
    return { sockets: this.socketCount, connects: this.connects };
  }

  async close(): Promise<void> {
    for (const socket of this.tcpSockets) socket.destroy();
    await this.agent.destroy();
  }

  async probe(target: ProbeTarget, check: HealthCheck): Promise<ProbeOutcome> {
    const started = this.clock();
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), check.timeoutMs);
    let outcome: { result: ProbeResult; reason: string };
    try {
      outcome = target.type === 'http' ? await this.http(target, check, controller.signal) : await this.tcp(target, controller.signal);
    } catch (error) {
      outcome = { result: 'fail', reason: controller.signal.aborted ? `timed out after ${check.timeoutMs} ms` : failureReason(error) };
    } finally {
      clearTimeout(timer);
    }
    return { ...outcome, durationMs: Math.max(0, this.clock() - started) };
  }

  private async http(target: Extract<ProbeTarget, { type: 'http' }>, check: HealthCheck, signal: AbortSignal) {
    this.refuseLiteral(target.hostname);
    // Beyond the socket cap, an origin without a connection of its own does not get one kept for it.
    const reset = this.socketCount >= this.maxSockets && !this.open.has(target.origin);
    const response = await this.agent.request({
      origin: target.origin,
      path: target.path,
      method: 'GET',
      headers: { 'user-agent': 'maxine-health-check', accept: '*/*' },
      signal,
      reset,
    });
    const status = response.statusCode;
    const inRange = status >= check.statusMin && status <= check.statusMax;
    if (!inRange || check.bodyMatch === '') {
      await response.body.dump({ limit: DISCARD_LIMIT, signal });
      if (inRange) return { result: 'pass' as const, reason: `HTTP ${status}` };
      return { result: status === 429 ? ('warn' as const) : ('fail' as const), reason: `HTTP ${status}` };
    }
    const wanted = Buffer.from(check.bodyMatch, 'utf8');
    let seen = Buffer.alloc(0);
    let found = false;
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      const before = seen.length;
      seen = Buffer.concat([seen, chunk]);
      if (seen.length > BODY_LIMIT) seen = seen.subarray(0, BODY_LIMIT);
      // Only where a match could newly end: from just before the new bytes.
      if (seen.indexOf(wanted, Math.max(0, before - wanted.length + 1)) >= 0) {
        found = true;
        break;
      }
      if (seen.length >= BODY_LIMIT) break;
    }
    // Leaving the loop early destroys the body and its connection; a body read to its end keeps the connection.
    if (found) return { result: 'pass' as const, reason: `HTTP ${status}` };
    const shown = check.bodyMatch.length > 40 ? `${check.bodyMatch.slice(0, 40)}...` : check.bodyMatch;
    return { result: 'fail' as const, reason: `body does not contain ${JSON.stringify(shown)}` };
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
