import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'node:http';
import { loadConfig } from '../../src/config/index.ts';
import { startMaxine, type RunningMaxine } from '../../src/server.ts';

export interface TestMaxine extends RunningMaxine {
  readonly dataDir: string;
  /** fetch relative to the server, JSON bodies sent and parsed for convenience. */
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

/** A real Maxine on a free loopback port with its own temporary data directory. */
export async function startTestMaxine(flags: Record<string, unknown> = {}, dataDir?: string): Promise<TestMaxine> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'maxine-test-'));
  const config = loadConfig({
    flags: { host: '127.0.0.1', dataDir: dir, logLevel: 'silent', ...flags },
    env: {},
  });
  // Port 0 (any free port) is not a valid operator setting, so it is set after validation.
  const running = await startMaxine({ ...config, port: 0 });
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  return {
    ...running,
    dataDir: dir,
    call: (method, path, body, headers) => call(running.url, method, path, body, headers, agent),
    stop: async () => {
      agent.destroy();
      await running.close();
      if (dataDir === undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
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
      (res) => {
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
          const responseHeaders = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') responseHeaders.set(k, v);
          resolve({ status: res.statusCode ?? 0, headers: responseHeaders, text, json });
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}
