/**
 * Real upstreams for the health tests, on 127.0.0.1 free ports: an HTTP
 * server whose behaviour is switched by the test, counting every request and
 * the most in flight at once; a TCP listener; a port with nothing on it; a
 * port where connecting never completes.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect as tcpConnect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { trackUntilExit } from '../../test/helpers/process.ts';
import type { HealthCheck } from '../core/instance.ts';

export type Behaviour =
  | { kind: 'status'; status: number; body?: string }
  /** Never answers (until the server closes). */
  | { kind: 'hang' }
  /** Destroys the connection without an answer. */
  | { kind: 'reset' }
  /** Answers `status` after `delayMs`. */
  | { kind: 'slow'; delayMs: number; status?: number }
  /** Sends the body in pieces, `delayMs` apart. */
  | { kind: 'chunks'; chunks: string[]; delayMs: number }
  /** Alternates 200 and 500, starting with 200. */
  | { kind: 'flap' };

export interface Upstream {
  readonly port: number;
  behaviour: Behaviour;
  /** Requests received, per path and in all. */
  readonly hits: Map<string, number>;
  total(): number;
  /** Responses sent with each status. */
  readonly answered: Map<number, number>;
  /** Requests being handled now, and the most ever at once. */
  inFlight: number;
  maxInFlight: number;
  /** TCP connections accepted. */
  connections: number;
  close(): Promise<void>;
}

export async function startUpstream(behaviour: Behaviour): Promise<Upstream> {
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let flip = false;
  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };
  const upstream: Upstream = {
    port: 0,
    behaviour,
    hits: new Map(),
    total: () => [...upstream.hits.values()].reduce((a, b) => a + b, 0),
    answered: new Map(),
    inFlight: 0,
    maxInFlight: 0,
    connections: 0,
    close: async () => {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const answer = (res: ServerResponse, status: number, body = '') => {
    upstream.answered.set(status, (upstream.answered.get(status) ?? 0) + 1);
    res.writeHead(status, { 'content-type': 'text/plain' });
    res.end(body);
  };
  const server: Server = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '';
    upstream.hits.set(path, (upstream.hits.get(path) ?? 0) + 1);
    upstream.inFlight++;
    upstream.maxInFlight = Math.max(upstream.maxInFlight, upstream.inFlight);
    res.on('close', () => upstream.inFlight--);
    const b = upstream.behaviour;
    switch (b.kind) {
      case 'status':
        return answer(res, b.status, b.body);
      case 'hang':
        return;
      case 'reset':
        return req.socket.destroy();
      case 'slow':
        return later(b.delayMs, () => answer(res, b.status ?? 200, 'slow'));
      case 'chunks': {
        upstream.answered.set(200, (upstream.answered.get(200) ?? 0) + 1);
        res.writeHead(200, { 'content-type': 'text/plain' });
        const rest = [...b.chunks];
        const next = () => {
          if (res.destroyed) return;
          const chunk = rest.shift();
          if (chunk === undefined) return void res.end();
          res.write(chunk);
          later(b.delayMs, next);
        };
        return next();
      }
      case 'flap':
        flip = !flip;
        return answer(res, flip ? 200 : 500);
    }
  });
  server.on('connection', (socket: Socket) => {
    upstream.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  (upstream as { port: number }).port = (server.address() as AddressInfo).port;
  return upstream;
}

export interface TcpListener {
  readonly port: number;
  connections: number;
  close(): Promise<void>;
}

export async function startTcpListener(): Promise<TcpListener> {
  const sockets = new Set<Socket>();
  const listener: TcpListener = {
    port: 0,
    connections: 0,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = createTcpServer((socket) => {
    listener.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  (listener as { port: number }).port = (server.address() as AddressInfo).port;
  return listener;
}

/** A loopback port with nothing listening on it: connecting is refused. */
export { freePort as closedPort } from '../../test/helpers/process.ts';

/** Listens with a backlog of 1 and never returns to its event loop: the kernel queues handshakes nobody accepts. */
const UNACCEPTING_LISTENER = `
const server = require('node:net').createServer();
server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
  process.stdout.write(server.address().port + '\\n');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120000);
});`;

export interface UnansweredPort {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * A loopback port where connecting gets no answer at all, as with a host
 * that is down or a firewall that drops packets: a listener (a child
 * process, stopped by PID) whose full accept queue makes the kernel drop
 * further connection requests.
 */
export async function startUnansweredPort(): Promise<UnansweredPort> {
  const child = spawn(process.execPath, ['-e', UNACCEPTING_LISTENER], { stdio: ['ignore', 'pipe', 'inherit'] });
  trackUntilExit(child);
  const fillers: Socket[] = [];
  const close = async () => {
    for (const socket of fillers) socket.destroy();
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  };
  try {
    const [line] = (await once(child.stdout!, 'data')) as [Buffer];
    const port = Number(String(line).trim());
    // Queue connections until one stays unanswered: from then on every new one does.
    for (let i = 0; i < 16; i++) {
      const socket = tcpConnect(port, '127.0.0.1').on('error', () => undefined);
      fillers.push(socket);
      const connected = await Promise.race([once(socket, 'connect').then(() => true), sleep(300).then(() => false)]);
      if (!connected) return { port, close };
    }
    throw new Error(`the listener on ${port} kept accepting connections`);
  } catch (error) {
    await close();
    throw error;
  }
}

/** Polls until `condition` holds; fails after `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** An HTTP check of /health with everything but `overrides` at usual values. */
export function httpCheck(overrides: Partial<HealthCheck> = {}): HealthCheck {
  return {
    type: 'http',
    path: '/health',
    statusMin: 200,
    statusMax: 399,
    bodyMatch: '',
    intervalMs: 1000,
    timeoutMs: 2000,
    rise: 2,
    fall: 3,
    jitterMs: 0,
    deregisterCriticalAfterMs: 0,
    ...overrides,
  };
}
