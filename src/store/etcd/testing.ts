import { connect, createServer, type Server, type Socket } from 'node:net';
import type { TestContext } from 'node:test';
import { Etcd3 } from 'etcd3';
import { CheckedCatalog } from '../conformance/checked-catalog.ts';
import { StoreUnavailableError } from '../store.ts';
import { createEtcdStore, type EtcdStore, type EtcdStoreOptions } from './etcd-store.ts';

/**
 * Test helpers for the etcd store: replicas (a store and a real catalog) on
 * a test etcd, and direct access to etcd for what only an operator does
 * (compaction).
 */

export interface Replica {
  readonly store: EtcdStore;
  readonly catalog: CheckedCatalog;
  readonly warnings: string[];
}

let replicas = 0;

/** Opens a replica on `endpoints`, closed when the test ends. */
export async function openReplica(
  t: TestContext,
  endpoints: readonly string[],
  options: Partial<EtcdStoreOptions> = {},
  catalog = new CheckedCatalog(),
): Promise<Replica> {
  const warnings: string[] = [];
  const store = createEtcdStore({
    instanceId: `replica-${++replicas}`,
    leaderLeaseMs: 2000,
    leaderRenewMs: 500,
    renewFlushMs: 50,
    onWarning: (message) => warnings.push(message),
    ...options,
    endpoints,
  });
  await store.open(catalog, catalog);
  t.after(() => store.close());
  return { store, catalog, warnings };
}

/** Compacts etcd's history up to its current revision (physically), as `etcdctl compact --physical` does. */
export async function compactHistory(endpoints: readonly string[]): Promise<number> {
  const client = new Etcd3({ hosts: [...endpoints] });
  try {
    const { header } = await client.kv.range({ key: Buffer.from('maxine-compaction-probe') });
    await client.kv.compact({ revision: header.revision, physical: true });
    return Number(header.revision);
  } finally {
    client.close();
  }
}

/** Retries a write refused with StoreUnavailableError (a 503, as a client would) until `timeoutMs`. */
export async function untilAccepted<T>(write: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await write();
    } catch (err) {
      if (!(err instanceof StoreUnavailableError) || Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

export async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * A TCP proxy in front of one etcd member, so a test can cut one replica off
 * (every connection dropped, new ones refused) while the others carry on,
 * and point it at another etcd meanwhile.
 */
export class CuttableProxy {
  private readonly sockets = new Set<Socket>();
  private connected = true;

  private constructor(
    private readonly server: Server,
    readonly endpoint: string,
    private target: URL,
  ) {}

  static async start(t: TestContext, target: string): Promise<CuttableProxy> {
    let proxy: CuttableProxy | undefined;
    const server = createServer((client) => proxy!.accept(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('the proxy has no port');
    proxy = new CuttableProxy(server, `http://127.0.0.1:${address.port}`, new URL(target));
    t.after(() => proxy.close());
    return proxy;
  }

  cut(): void {
    this.connected = false;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  /** Accept connections again, forwarding them to `target` when given. */
  reconnect(target?: string): void {
    if (target !== undefined) this.target = new URL(target);
    this.connected = true;
  }

  private accept(client: Socket): void {
    if (!this.connected) {
      client.destroy();
      return;
    }
    const upstream = connect(Number(this.target.port), this.target.hostname);
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      this.sockets.add(from);
      from.pipe(to);
      from.on('error', () => to.destroy());
      from.on('close', () => {
        this.sockets.delete(from);
        to.destroy();
      });
    }
  }

  private close(): Promise<void> {
    this.cut();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
