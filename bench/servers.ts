/** Starting Maxine and the bare reference server, and talking to Maxine before the load. */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import { basename, join } from 'node:path';
import type { CapturedAnswer, CapturedReply } from './bare-server.ts';
import { Child, removeTempDir, sleep, tempDir } from './children.ts';

/** A request as the load generator sends it. */
export interface RequestShape {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
}

export interface Server {
  readonly url: string;
  stop(): Promise<void>;
}

export interface MaxineServer extends Server {
  readonly dataDir: string;
  readonly pid: number;
  /** An admin's access token, for the scenarios' looks at protected state (`getJson`). */
  readonly token: string;
}

/** The admin every benchmarked Maxine starts with; the load itself runs without credentials, as clients do. */
const BENCH_ADMIN = { userName: 'bench-admin', password: randomBytes(12).toString('base64url') };

const STARTUP_TIMEOUT_MS = 30_000;
/** Under a launcher (valgrind) a process runs several times slower, start-up and first sign-in included. */
const LAUNCHED_SLOWDOWN = 10;

function slowdownUnder(launcher: readonly string[]): number {
  return launcher.length > 0 ? LAUNCHED_SLOWDOWN : 1;
}

/**
 * Maxine as users run it (bin/maxine.js serve), defaults except loopback,
 * port, data dir, log level and `extraArgs` (the store to use when not
 * local, or settings a scenario is about, e.g. active health checks);
 * node run by `launcher` (a command and its arguments) when one is given.
 */
export async function startMaxine(extraArgs: readonly string[] = [], launcher: readonly string[] = []): Promise<MaxineServer> {
  const dataDir = tempDir('maxine-bench-');
  const port = await freePort();
  const slowdown = slowdownUnder(launcher);
  const child = launchedChild('maxine', launcher, [
    'bin/maxine.js',
    'serve',
    '--host', '127.0.0.1',
    '--port', String(port),
    '--data-dir', dataDir,
    '--log-level', 'warn',
    '--admin-username', BENCH_ADMIN.userName,
    '--admin-password', BENCH_ADMIN.password,
    ...extraArgs,
  ]);
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    await child.stop();
    removeTempDir(dataDir);
  };
  try {
    await waitForHttp(child, `${url}/api/actuator/health`, STARTUP_TIMEOUT_MS * slowdown);
    const signin = await fetch(`${url}/api/maxine/signin`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(BENCH_ADMIN),
      signal: AbortSignal.timeout(10_000 * slowdown),
    });
    if (signin.status !== 200) throw new Error(`signing in to the benchmarked Maxine failed: ${signin.status} ${await signin.text()}`);
    const { accessToken } = (await signin.json()) as { accessToken: string };
    return { url, dataDir, pid: child.pid, token: accessToken, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The bare reference server, replaying `replies` (captured from Maxine); node run by `launcher` when one is given. */
export function startBare(replies: readonly CapturedReply[], launcher: readonly string[] = []): Promise<Server & { readonly pid: number }> {
  return startReplayer(['--import', 'tsx', 'bench/bare-server.ts'], replies, launcher);
}

/** The same replies through a minimal fastify app in plain JavaScript (bench/minimal-fastify.mjs): the framework's floor. */
export function startMinimalFastify(replies: readonly CapturedReply[]): Promise<Server & { readonly pid: number }> {
  return startReplayer(['bench/minimal-fastify.mjs'], replies);
}

/** Runs node with `nodeArgs` (ending with the script) and the replies file; the script prints {"port": n} first. */
async function startReplayer(nodeArgs: readonly string[], replies: readonly CapturedReply[], launcher: readonly string[] = []): Promise<Server & { readonly pid: number }> {
  const dir = tempDir('maxine-bench-replay-');
  const file = join(dir, 'replies.json');
  writeFileSync(file, JSON.stringify(replies));
  const name = basename(nodeArgs.at(-1)!).replace(/\.m?[jt]s$/, '');
  const child = launchedChild(name, launcher, [...nodeArgs, file]);
  const stop = async () => {
    await child.stop();
    removeTempDir(dir);
  };
  const deadline = Date.now() + STARTUP_TIMEOUT_MS * slowdownUnder(launcher);
  while (!child.stdout.includes('\n')) {
    if (!child.isRunning || Date.now() > deadline) {
      await stop();
      throw new Error(`${name} did not start: ${child.describe()}`);
    }
    await sleep(50);
  }
  const { port } = JSON.parse(child.stdout.split('\n')[0]!) as { port: number };
  return { url: `http://127.0.0.1:${port}`, pid: child.pid, stop };
}

export interface Upstream {
  /** The 127.0.0.1 ports it listens on. */
  readonly ports: readonly number[];
  readonly pid: number;
  /** Stops it; resolves with how many requests it answered per path ('/hello', '/health', 'other'). */
  stop(): Promise<Record<string, number>>;
}

/**
 * A stand-in service (bench/upstream-server.ts) in a child process of its
 * own, listening on `ports` free 127.0.0.1 ports, answering GET /hello and
 * /health with 200 and a fixed ~100-byte JSON body, anything else 404.
 */
export async function startUpstream(ports = 1): Promise<Upstream> {
  const child = new Child('upstream-server', ['--import', 'tsx', 'bench/upstream-server.ts', String(ports)]);
  let served: Record<string, number> | undefined;
  const stop = async (): Promise<Record<string, number>> => {
    await child.stop();
    if (served === undefined) {
      const line = child.stdout.split('\n').find((l) => l.startsWith('{"served"'));
      served = line === undefined ? {} : (JSON.parse(line) as { served: Record<string, number> }).served;
    }
    return served;
  };
  const listening = await firstLine<{ ports: number[] }>(child, 'the upstream server', stop);
  return { ports: listening.ports, pid: child.pid, stop };
}

/** The JSON a child prints as its first line once it listens; `stop` runs if it never does. */
async function firstLine<T>(child: Child, what: string, stop: () => Promise<unknown>): Promise<T> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (!child.stdout.includes('\n')) {
    if (!child.isRunning || Date.now() > deadline) {
      await stop();
      throw new Error(`${what} did not start: ${child.describe()}`);
    }
    await sleep(50);
  }
  return JSON.parse(child.stdout.split('\n')[0]!) as T;
}

export interface MinimalProxy extends Server {
  readonly pid: number;
}

/** bench/minimal-proxy.ts in a child process, forwarding everything to `upstreamOrigin` (http://127.0.0.1:port). */
export async function startMinimalProxy(upstreamOrigin: string): Promise<MinimalProxy> {
  const child = new Child('minimal-proxy', ['--import', 'tsx', 'bench/minimal-proxy.ts', upstreamOrigin]);
  const stop = () => child.stop();
  const { port } = await firstLine<{ port: number }>(child, 'the minimal proxy', stop);
  return { url: `http://127.0.0.1:${port}`, pid: child.pid, stop };
}

/** GET `url` and parse its JSON; fails on anything but a 200. For the occasional look at Maxine's state, not for load. */
export async function getJson<T>(url: string, token?: string): Promise<T> {
  const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

/**
 * The headers node:http writes on its own, for Maxine as for the replaying
 * servers: not kept with an answer, or they would be sent twice. Keep-Alive,
 * which node:http writes too, is read for its timeout instead: the replaying
 * server is given the same setting.
 */
const WRITTEN_BY_NODE = new Set(['date', 'connection', 'transfer-encoding']);
const KEEP_ALIVE_TIMEOUT = /^timeout=(\d+)$/;

/**
 * Sends each request `times` times to Maxine and keeps what it answered, for
 * the bare server to replay: status, headers in the order and spelling they
 * came on the wire (node:http rather than fetch, which sorts them), body.
 */
export async function captureReplies(url: string, shapes: readonly RequestShape[], times: number): Promise<CapturedReply[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const replies: CapturedReply[] = [];
    for (const shape of shapes) {
      const answers: CapturedAnswer[] = [];
      let status = 0;
      let keepAliveSeconds: number | undefined;
      for (let i = 0; i < times; i++) {
        const answer = await exchange(agent, url + shape.path, shape);
        if (answer.status < 200 || answer.status > 299) {
          throw new Error(`Maxine answered ${shape.method} ${shape.path} with ${answer.status}: ${answer.body.toString('utf8')}`);
        }
        status = answer.status;
        const headers: [string, string][] = [];
        for (let h = 0; h < answer.rawHeaders.length; h += 2) {
          const [name, value] = [answer.rawHeaders[h]!, answer.rawHeaders[h + 1]!];
          const lowerCase = name.toLowerCase();
          if (lowerCase === 'keep-alive') {
            const timeout = KEEP_ALIVE_TIMEOUT.exec(value)?.[1];
            if (timeout !== undefined) keepAliveSeconds = Number(timeout);
          } else if (!WRITTEN_BY_NODE.has(lowerCase)) headers.push([name, value]);
        }
        answers.push({ headers, body: answer.body.toString('base64') });
      }
      replies.push({
        method: shape.method,
        path: shape.path,
        ...(shape.body === undefined ? {} : { requestBody: shape.body }),
        status,
        answers,
        ...(keepAliveSeconds === undefined ? {} : { keepAliveSeconds }),
      });
    }
    return replies;
  } finally {
    agent.destroy();
  }
}

/** One request as `shape` describes it; its answer's status, raw headers and body. */
function exchange(agent: Agent, url: string, shape: RequestShape): Promise<{ status: number; rawHeaders: string[]; body: Buffer }> {
  return new Promise((resolve, reject) => {
    // With its length, as the load generator sends it (node:http would otherwise send the body chunked).
    const length = shape.body === undefined ? {} : { 'content-length': Buffer.byteLength(shape.body) };
    const req = request(url, { method: shape.method, agent, timeout: 30_000, headers: { ...shape.headers, ...length } });
    req.on('timeout', () => req.destroy(new Error(`${shape.method} ${url}: no answer within 30 s`)));
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }));
    });
    req.end(shape.body);
  });
}

export interface Registration {
  readonly hostName: string;
  readonly nodeName: string;
  readonly serviceName: string;
  readonly port: number;
  /** Seconds. */
  readonly timeOut: number;
  readonly weight: number;
}

/**
 * Registers `count` instances through the HTTP API with at most `concurrency`
 * requests in flight; fails on the first non-200. Returns the elapsed ms.
 * node:http with a keep-alive agent rather than fetch: fetch costs the client
 * about four times the CPU per request, and on two cores the client's CPU is
 * taken from Maxine.
 */
export async function registerAll(
  url: string,
  count: number,
  registration: (index: number) => Registration,
  concurrency = 64,
): Promise<number> {
  const started = performance.now();
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  let next = 0;
  const worker = async () => {
    while (next < count) await post(agent, `${url}/api/maxine/serviceops/register`, JSON.stringify(registration(next++)));
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  } finally {
    agent.destroy();
  }
  return performance.now() - started;
}

function post(agent: Agent, url: string, body: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'POST',
      agent,
      timeout: 30_000,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    });
    req.on('timeout', () => req.destroy(new Error(`POST ${url} ${body}: no answer within 30 s`)));
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('error', reject);
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`POST ${url} ${body} answered ${res.statusCode}: ${text}`))));
    });
    req.end(body);
  });
}

/**
 * Waits until Maxine has written a snapshot that finished after `sinceMs`
 * (epoch ms): after a bulk registration the periodic snapshot of the whole
 * catalog is due within --snapshot-interval-ms (30 s by default), a one-off
 * that would otherwise land in the middle of a measured round.
 * Returns false if none came within `timeoutMs`.
 */
export async function waitForSnapshot(dataDir: string, sinceMs: number, timeoutMs: number): Promise<boolean> {
  const snapshot = join(dataDir, 'snapshot.json');
  const inProgress = join(dataDir, 'snapshot.json.tmp');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (existsSync(snapshot) && statSync(snapshot).mtimeMs > sinceMs && !existsSync(inProgress)) return true;
    await sleep(250);
  }
  return false;
}

/**
 * CPU seconds (user + system, every thread) a running process has used so
 * far, from /proc/<pid>/stat (Linux; in USER_HZ ticks of 10 ms). Steadier
 * than req/s on a shared machine: it says what the process itself spent.
 */
export function cpuSeconds(pid: number): number {
  return statCpuSeconds(`/proc/${pid}/stat`);
}

/** The CPU time of a process's main thread alone (its JavaScript thread), without worker threads and helpers. */
export function mainThreadCpuSeconds(pid: number): number {
  return statCpuSeconds(`/proc/${pid}/task/${pid}/stat`);
}

function statCpuSeconds(file: string): number {
  const stat = readFileSync(file, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces: state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** A port free on 127.0.0.1 right now (Maxine's CLI is told a port; it does not report one it picked). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** `node <args>`, or `<launcher...> node <args>`. */
function launchedChild(name: string, launcher: readonly string[], args: readonly string[]): Child {
  if (launcher.length === 0) return new Child(name, args);
  return new Child(name, [...launcher.slice(1), process.execPath, ...args], launcher[0]);
}

/** Polls until the child answers HTTP at `url` (any status), or fails if it exits or takes too long. */
async function waitForHttp(child: Child, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!child.isRunning) throw new Error(`${child.name} exited during start-up (${await child.exited}): ${child.describe()}`);
    try {
      await (await fetch(url, { signal: AbortSignal.timeout(1000) })).arrayBuffer();
      return;
    } catch {
      await sleep(100);
    }
  }
  throw new Error(`${child.name} did not answer within ${timeoutMs / 1000} s: ${child.describe()}`);
}
