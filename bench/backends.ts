/**
 * The backends of the shared stores, started for a benchmark run: Debian's
 * redis-server and etcd on free loopback ports, and the backends' own raw
 * write rates measured with their own tools (redis-benchmark) or the same
 * client Maxine uses (etcd3), as the reference for registration throughput.
 */
import { spawnSync } from 'node:child_process';
import { Etcd3 } from 'etcd3';
import { Child, removeTempDir, sleep, tempDir } from './children.ts';
import { freePort } from './servers.ts';

export interface Backend {
  /** Flags that point `maxine serve` at this backend. */
  readonly storeArgs: readonly string[];
  stop(): Promise<void>;
}

function binary(name: string): string {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  if (found.status !== 0) throw new Error(`${name} is not installed (apt-get install redis-server etcd-server)`);
  return found.stdout.trim();
}

async function until(child: Child, ready: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await ready())) {
    if (!child.isRunning || Date.now() > deadline) throw new Error(`${what} did not start: ${child.describe()}`);
    await sleep(50);
  }
}

export async function startRedisBackend(): Promise<Backend & { readonly port: number }> {
  const dir = tempDir('maxine-bench-redis-');
  const port = await freePort();
  // No persistence: the raw SET rate and Maxine's writes then pay the same (in-memory) cost.
  const child = new Child('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--save', '', '--appendonly', 'no'], binary('redis-server'));
  const stop = async () => {
    await child.stop();
    removeTempDir(dir);
  };
  try {
    await until(child, async () => child.stdout.includes('Ready to accept connections'), 'redis-server');
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, storeArgs: ['--registry-state-mode', 'redis', '--redis-url', `redis://127.0.0.1:${port}`], stop };
}

export async function startEtcdBackend(): Promise<Backend & { readonly endpoint: string }> {
  const dir = tempDir('maxine-bench-etcd-');
  const [client, peer] = [await freePort(), await freePort()];
  const endpoint = `http://127.0.0.1:${client}`;
  const child = new Child(
    'etcd',
    [
      '--data-dir', dir,
      '--listen-client-urls', endpoint,
      '--advertise-client-urls', endpoint,
      '--listen-peer-urls', `http://127.0.0.1:${peer}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
      '--initial-cluster', `default=http://127.0.0.1:${peer}`,
      '--log-level', 'warn',
    ],
    binary('etcd'),
  );
  const stop = async () => {
    await child.stop();
    removeTempDir(dir);
  };
  const healthy = async () => {
    try {
      return ((await (await fetch(`${endpoint}/health`)).json()) as { health?: string }).health === 'true';
    } catch {
      return false;
    }
  };
  try {
    await until(child, healthy, 'etcd');
  } catch (error) {
    await stop();
    throw error;
  }
  return { endpoint, storeArgs: ['--registry-state-mode', 'etcd', '--etcd-endpoints', endpoint], stop };
}

/** redis-benchmark's SET rate with `clients` connections and no pipelining, as Maxine sends one write at a time per request. */
export function redisRawWriteRate(port: number, clients: number, requests: number): number {
  const run = spawnSync(binary('redis-benchmark'), ['-h', '127.0.0.1', '-p', String(port), '-t', 'set', '-n', String(requests), '-c', String(clients), '-r', '100000', '-q'], {
    encoding: 'utf8',
  });
  const match = /SET: ([\d.]+) requests per second/.exec(run.stdout);
  if (run.status !== 0 || match === null) throw new Error(`redis-benchmark failed: ${run.stderr || run.stdout}`);
  return Number(match[1]);
}

/** Puts per second from `concurrency` workers through the etcd3 client Maxine uses, on distinct keys. */
export async function etcdRawWriteRate(endpoint: string, concurrency: number, puts: number): Promise<number> {
  const client = new Etcd3({ hosts: [endpoint] });
  try {
    const value = JSON.stringify({ hostName: '10.0.0.1', port: 8000, serviceName: 'raw', padding: 'x'.repeat(200) });
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < puts) await client.put(`bench/raw/${next++}`).value(value);
      }),
    );
    return puts / ((performance.now() - started) / 1000);
  } finally {
    client.close();
  }
}
