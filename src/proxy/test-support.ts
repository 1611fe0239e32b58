/**
 * Real servers for the proxy's tests: upstream instances on 127.0.0.1 with
 * a chosen behaviour, a front server that hands every request to
 * Proxy.forward, and a client. Every server counts the requests it received
 * and is closed with its connections.
 */
import { Agent, createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Catalog } from '../core/catalog.ts';
import { NO_FILTER } from '../core/filter.ts';
import type { StrategyName } from '../core/selection/strategy.ts';
import { pickAvoiding } from '../core/selection/pick-avoiding.ts';
import { PROXY_POLICY_DEFAULTS, type ProxyPolicy } from './policy.ts';
import { Proxy } from './proxy.ts';

export interface Running {
  port: number;
  /** Requests received (counted when their headers arrive). */
  hits: number;
  close(): Promise<void>;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

function closer(server: Server): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
}

/** An upstream instance answering with `handler`. */
export async function upstream(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Running> {
  const running: Running = { port: 0, hits: 0, close: async () => undefined };
  const server = createServer((req, res) => {
    running.hits++;
    handler(req, res);
  });
  running.port = await listen(server);
  running.close = closer(server);
  return running;
}

export interface Echo {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** Answers 200 with what it received as JSON. */
export function echo(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const echoed: Echo = { method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString() };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(echoed));
  });
}

/** Answers `status` after reading the body. */
export function status(code: number, delayMs = 0): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    req.resume();
    req.on('end', () => setTimeout(() => res.writeHead(code, { 'content-type': 'text/plain' }).end(`status ${code}`), delayMs));
  };
}

/** Never answers. */
export function hang(req: IncomingMessage): void {
  req.resume();
}

/** Cuts the connection as soon as the request arrives. */
export function reset(req: IncomingMessage): void {
  req.socket.destroy();
}

/** A loopback port with nothing listening on it: connecting is refused. */
export { freePort as closedPort } from '../../test/helpers/process.ts';

export function policy(overrides: Partial<ProxyPolicy> = {}): ProxyPolicy {
  return {
    ...PROXY_POLICY_DEFAULTS,
    connectTimeoutMs: 500,
    requestTimeoutMs: 2_000,
    retries: 0,
    retryBackoffMs: 0,
    breakerFailures: 0,
    outlierConsecutiveFailures: 0,
    ...overrides,
  };
}

export interface FrontOptions {
  readonly service: string;
  readonly policy: ProxyPolicy;
  readonly strategy?: StrategyName;
  /** Headers set on the response before it is handed over (as a route does with its own). */
  readonly preset?: Readonly<Record<string, string>>;
}

/** A node:http server that forwards every request through `proxy`, picking from `catalog`. */
export async function front(proxy: Proxy, catalog: Catalog, options: FrontOptions): Promise<Running> {
  const ctx = { key: '', random: Math.random, load: proxy.load };
  const strategy = options.strategy ?? 'round-robin';
  const running: Running = { port: 0, hits: 0, close: async () => undefined };
  const server = createServer((req, res) => {
    running.hits++;
    for (const [name, value] of Object.entries(options.preset ?? {})) res.setHeader(name, value);
    void proxy.forward({
      service: options.service,
      policy: options.policy,
      req,
      res,
      upstreamPath: req.url!,
      clientAddress: req.socket.remoteAddress!,
      pick: (exclude) => pickAvoiding(catalog, options.service, NO_FILTER, strategy, ctx, exclude),
    });
  });
  running.port = await listen(server);
  running.close = closer(server);
  return running;
}

export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly ms: number;
}

export interface Send {
  readonly method?: string;
  readonly path?: string;
  readonly headers?: Record<string, string | string[]>;
  readonly body?: string | Buffer;
  /** Send the body chunked (no Content-Length). */
  readonly chunked?: boolean;
  /** Ask for a persistent connection (by default the client sends Connection: close). */
  readonly keepAlive?: boolean;
}

/** One request on a fresh connection. */
export function send(port: number, options: Send = {}): Promise<Reply> {
  const started = performance.now();
  const agent = options.keepAlive ? new Agent({ keepAlive: true }) : false;
  return new Promise<Reply>((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: options.method ?? 'GET', path: options.path ?? '/', headers: options.headers, agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString(), ms: performance.now() - started }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (options.chunked) {
      // A write before end() makes node send the body chunked.
      req.write(options.body ?? '');
      req.end();
    } else {
      if (options.body !== undefined) req.setHeader('content-length', Buffer.byteLength(options.body));
      req.end(options.body);
    }
  }).finally(() => {
    if (agent) agent.destroy();
  });
}

/** The JSON error body the proxy answers with. */
export function errorBody(reply: Reply): { message: string; code: string } {
  assertJson(reply);
  return JSON.parse(reply.body) as { message: string; code: string };
}

function assertJson(reply: Reply): void {
  if (!String(reply.headers['content-type']).startsWith('application/json')) {
    throw new Error(`expected a JSON answer, got ${String(reply.headers['content-type'])}: ${reply.body}`);
  }
}

/** A front server and proxy over one catalog; closed after the suite. */
export async function proxyFront(catalog: Catalog, p: ProxyPolicy): Promise<{ proxy: Proxy; port: number; close: () => Promise<void> }> {
  const proxy = new Proxy({ catalog, defaults: p, allowLinkLocal: false });
  const server = await front(proxy, catalog, { service: 'svc', policy: p });
  return {
    proxy,
    port: server.port,
    close: async () => {
      await server.close();
      await proxy.close();
    },
  };
}
