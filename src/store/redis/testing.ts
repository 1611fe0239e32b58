import type { TestContext } from 'node:test';
import { createClient } from 'redis';
import { CheckedCatalog } from '../conformance/checked-catalog.ts';
import { createRedisStore, type RedisStore, type RedisStoreOptions } from './redis-store.ts';
import { keysFor } from './scripts.ts';

/** Test helpers for the redis store: replicas on a test server and direct access to the keys behind them. */

export const TEST_PREFIX = 'test:';

export interface TestReplica {
  readonly store: RedisStore;
  readonly catalog: CheckedCatalog;
  readonly instanceId: string;
  readonly warnings: string[];
}

let replicas = 0;

/** Opens a replica on `url` (a fresh catalog unless one is given); closed when the test ends. */
export async function openReplica(
  t: TestContext,
  url: string,
  overrides: Partial<RedisStoreOptions> = {},
  catalog = new CheckedCatalog(),
): Promise<TestReplica> {
  const warnings: string[] = [];
  const instanceId = `replica-${++replicas}`;
  const store = createRedisStore({
    url,
    keyPrefix: TEST_PREFIX,
    instanceId,
    leaderLeaseMs: 1000,
    leaderRenewMs: 250,
    renewFlushMs: 50,
    onWarning: (message) => warnings.push(message),
    ...overrides,
  });
  await store.open(catalog, catalog);
  t.after(() => store.close());
  return { store, catalog, instanceId, warnings };
}

function plainClient(url: string) {
  return createClient({ url });
}

/** Runs `use` with a plain connection to the server, closed afterwards. */
export async function withRedis<T>(url: string, use: (client: ReturnType<typeof plainClient>) => Promise<T>): Promise<T> {
  const client = plainClient(url);
  client.on('error', () => {});
  await client.connect();
  try {
    return await use(client);
  } finally {
    client.destroy();
  }
}

/** Drops the whole feed history (what a long disconnection behind a trimmed stream looks like). */
export function trimFeed(url: string, keyPrefix: string): Promise<void> {
  return withRedis(url, async (client) => {
    await client.sendCommand(['XTRIM', keysFor(keyPrefix).feed, 'MAXLEN', '0']);
  });
}

export async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Retries `attempt` until it resolves (the backend coming back), failing after `timeoutMs`. */
export async function eventually<T>(attempt: () => Promise<T>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${(err as Error).message}`, { cause: err });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
