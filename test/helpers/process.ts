import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { call, TEST_ADMIN, type TestResponse } from './maxine.ts';

const BIN = fileURLToPath(new URL('../../bin/maxine.js', import.meta.url));

/** A free loopback port (bound and released; good enough for tests that start right after). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * Children still running when the test process exits (a test that timed out
 * skips its after hooks) are killed then, so none outlives the run.
 */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export function trackUntilExit(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
}

export interface MaxineProcess {
  readonly child: ChildProcess;
  readonly url: string;
  /** A request as TEST_ADMIN (created from MAXINE_ADMIN_* at start), as TestMaxine.call sends it. */
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<TestResponse>;
  readonly output: () => string;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  readonly exited: Promise<number | string>;
}

/** `maxine serve` as a real child process on loopback, resolved once it answers health checks. */
export async function spawnMaxine(args: string[], env: NodeJS.ProcessEnv = {}): Promise<MaxineProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [BIN, 'serve', '--host', '127.0.0.1', '--port', String(port), ...args], {
    env: { ...process.env, MAXINE_ADMIN_USERNAME: TEST_ADMIN.userName, MAXINE_ADMIN_PASSWORD: TEST_ADMIN.password, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  trackUntilExit(child);
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`maxine exited during start-up:\n${output}`);
    try {
      const res = await fetch(`${url}/api/actuator/health`);
      if (res.ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`maxine did not become healthy in 20 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  let token: Promise<string> | undefined;
  const request = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    if ('authorization' in headers) return call(url, method, path, body, headers.authorization === '' ? {} : headers);
    token ??= signIn(url).catch((error: unknown) => {
      token = undefined;
      throw error;
    });
    return call(url, method, path, body, { ...headers, authorization: `Bearer ${await token}` });
  };
  return { child, url, call: request, output: () => output, exited };
}

/**
 * On a follower the admin exists once the leader has created it and the feed
 * has brought it over, so sign-in is retried for a while.
 */
async function signIn(url: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const res = await call(url, 'POST', '/api/maxine/signin', TEST_ADMIN);
    if (res.status === 200) return res.json.accessToken as string;
    if (Date.now() > deadline) throw new Error(`signing in as the test admin failed: ${res.status} ${res.text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
