import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request, type IncomingMessage } from 'node:http';
import { loadConfig } from '../../src/config/index.ts';
import type { TracingEnv } from '../../src/observe/tracing.ts';
import { startMaxine, type RunningMaxine } from '../../src/server.ts';

/** The admin every test server starts with (MAXINE_ADMIN_USERNAME / _PASSWORD). */
export const TEST_ADMIN = { userName: 'admin', password: 'test-admin-password' } as const;

export interface TestMaxine extends RunningMaxine {
  readonly dataDir: string;
  /** TEST_ADMIN's access token. */
  readonly adminToken: string;
  /**
   * A request relative to the server, JSON bodies sent and parsed for
   * convenience. Sent as TEST_ADMIN unless `headers` has an `authorization`
   * of its own; an empty one sends the request without credentials.
   */
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<TestResponse>;
  /** Stop the server and remove its data directory. */
  stop(): Promise<void>;
}

export interface TestResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly json: any;
}

/**
 * A real Maxine on a free loopback port with its own temporary data
 * directory. `env` holds its OTEL_* variables: by default none, whatever the
 * environment of the test run.
 */
export async function startTestMaxine(flags: Record<string, unknown> = {}, dataDir?: string, env: TracingEnv = {}): Promise<TestMaxine> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'maxine-test-'));
  const config = loadConfig({
    flags: { host: '127.0.0.1', dataDir: dir, logLevel: 'silent', adminUsername: TEST_ADMIN.userName, adminPassword: TEST_ADMIN.password, ...flags },
    env: {},
  });
  // Port 0 (any free port) is not a valid operator setting, so it is set after validation.
  const running = await startMaxine({ ...config, port: 0 }, env);
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  const signin = await call(running.url, 'POST', '/api/maxine/signin', TEST_ADMIN, {}, agent);
  if (signin.status !== 200) throw new Error(`signing in as the test admin failed: ${signin.status} ${signin.text}`);
  const adminToken = signin.json.accessToken as string;
  return {
    ...running,
    dataDir: dir,
    adminToken,
    call: (method, path, body, headers = {}) => call(running.url, method, path, body, withCredentials(headers, adminToken), agent),
    stop: async () => {
      agent.destroy();
      await running.close();
      if (dataDir === undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
}

function withCredentials(headers: Record<string, string>, token: string): Record<string, string> {
  if (!('authorization' in headers)) return { ...headers, authorization: `Bearer ${token}` };
  if (headers.authorization !== '') return headers;
  const { authorization: _none, ...rest } = headers;
  return rest;
}

/**
 * One HTTP request over node:http, so the path reaches the server exactly as
 * written (fetch would normalise `..` and `%2e%2e` before sending).
 */
export function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  agent?: Agent,
): Promise<TestResponse> {
  const url = new URL(base);
  const payload = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  const sent: Record<string, string> = { ...headers };
  if (payload !== undefined) {
    sent['content-type'] ??= 'application/json';
    sent['content-length'] = String(payload.length);
  }
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, method, path, headers: sent, agent },
      (res) => readResponse(res).then(resolve, reject),
    );
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** A response's status, headers and body, the body parsed as JSON when it is JSON. */
export function readResponse(res: IncomingMessage): Promise<TestResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try {
        json = text === '' ? undefined : JSON.parse(text);
      } catch {
        json = undefined;
      }
      const headers = new Headers();
      for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v);
      resolve({ status: res.statusCode ?? 0, headers, text, json });
    });
    res.on('error', reject);
  });
}
