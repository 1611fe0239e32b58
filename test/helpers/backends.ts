import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { freePort, trackUntilExit } from './process.ts';

/**
 * Real backend servers for tests: redis-server and etcd from Debian's
 * packages, started on free loopback ports and stopped by PID.
 *
 * When a server binary is missing, a local run skips the suite with a loud
 * message; with MAXINE_TEST_BACKENDS=required (CI) the suite fails instead.
 */

export type BackendBinary = 'redis-server' | 'etcd';

const REQUIRED = process.env['MAXINE_TEST_BACKENDS'] === 'required';

/** The binary's path, or null after marking the test skipped (or failed, in CI). */
export function backendBinary(t: TestContext, name: BackendBinary): string | null {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const path = found.status === 0 ? found.stdout.trim() : '';
  if (path !== '') return path;
  const message = `${name} is not installed: this backend suite did not run (apt-get install ${name === 'etcd' ? 'etcd-server' : 'redis-server'})`;
  if (REQUIRED) throw new Error(`${message}; MAXINE_TEST_BACKENDS=required forbids skipping`);
  process.stderr.write(`\n!!! SKIPPED: ${message}\n\n`);
  t.skip(message);
  return null;
}

/** A temporary directory removed when the test ends. */
export function scratchDir(t: TestContext, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `maxine-${prefix}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * One server process. stop/start keep its data directory, so a restart is
 * the same server coming back; pause/resume freeze it with SIGSTOP/SIGCONT.
 */
export class ServerProcess {
  private child: ChildProcess | null = null;
  private log = '';

  constructor(
    private readonly name: string,
    private readonly command: string,
    private readonly args: readonly string[],
    private readonly ready: () => Promise<boolean>,
  ) {}

  get pid(): number {
    if (this.child?.pid === undefined) throw new Error(`${this.name} is not running`);
    return this.child.pid;
  }

  output(): string {
    return this.log;
  }

  async start(): Promise<void> {
    if (this.child !== null) throw new Error(`${this.name} is already running`);
    const child = spawn(this.command, this.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    trackUntilExit(child);
    this.child = child;
    const append = (chunk: Buffer) => {
      this.log = (this.log + chunk.toString()).slice(-20_000);
    };
    child.stdout!.on('data', append);
    child.stderr!.on('data', append);
    const deadline = Date.now() + 20_000;
    while (!(await this.ready())) {
      if (child.exitCode !== null || child.signalCode !== null) {
        this.child = null;
        throw new Error(`${this.name} exited during start-up:\n${this.log}`);
      }
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(`${this.name} did not become ready in 20 s:\n${this.log}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** SIGTERM, then SIGKILL after 5 s; resolves once the process is gone. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (child === null) return;
    this.child = null;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGCONT');
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
  }

  pause(): void {
    process.kill(this.pid, 'SIGSTOP');
  }

  resume(): void {
    process.kill(this.pid, 'SIGCONT');
  }
}

export interface RedisServer {
  readonly url: string;
  readonly password: string | undefined;
  readonly process: ServerProcess;
}

export interface RedisOptions {
  readonly password?: string;
  /** PEM files: serve TLS only (a rediss:// URL), clients not required to present a certificate. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly caFile: string };
}

/**
 * A redis-server on a free loopback port with an append-only file fsynced
 * on every write, so a stop and start loses nothing. Stopped when the test
 * ends. Null when the binary is missing and the test was skipped.
 */
export async function startRedis(t: TestContext, options: RedisOptions = {}): Promise<RedisServer | null> {
  const binary = backendBinary(t, 'redis-server');
  if (binary === null) return null;
  const dir = scratchDir(t, 'redis');
  const port = await freePort();
  const args = ['--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'];
  if (options.tls) {
    args.push('--port', '0', '--tls-port', String(port), '--tls-cert-file', options.tls.certFile);
    args.push('--tls-key-file', options.tls.keyFile, '--tls-ca-cert-file', options.tls.caFile, '--tls-auth-clients', 'no');
  } else {
    args.push('--port', String(port));
  }
  if (options.password !== undefined) args.push('--requirepass', options.password);
  const server: ServerProcess = new ServerProcess('redis-server', binary, args, async (): Promise<boolean> =>
    server.output().includes('Ready to accept connections'),
  );
  await server.start();
  t.after(() => server.stop());
  const auth = options.password === undefined ? '' : `:${encodeURIComponent(options.password)}@`;
  return { url: `${options.tls ? 'rediss' : 'redis'}://${auth}127.0.0.1:${port}`, password: options.password, process: server };
}

export interface EtcdCluster {
  /** Client URLs, one per member. */
  readonly endpoints: readonly string[];
  readonly members: readonly ServerProcess[];
}

/**
 * An etcd cluster of `size` members (default 1) on free loopback ports, each
 * with its own data directory. Stopped when the test ends.
 */
export async function startEtcd(t: TestContext, size = 1): Promise<EtcdCluster | null> {
  const binary = backendBinary(t, 'etcd');
  if (binary === null) return null;
  const dir = scratchDir(t, 'etcd');
  const names = Array.from({ length: size }, (_, i) => `m${i}`);
  const clientPorts: number[] = [];
  const peerPorts: number[] = [];
  for (let i = 0; i < size; i++) {
    clientPorts.push(await freePort());
    peerPorts.push(await freePort());
  }
  const initialCluster = names.map((name, i) => `${name}=http://127.0.0.1:${peerPorts[i]}`).join(',');
  const members = names.map((name, i) => {
    const client = `http://127.0.0.1:${clientPorts[i]}`;
    const peer = `http://127.0.0.1:${peerPorts[i]}`;
    const args = [
      '--name', name,
      '--data-dir', join(dir, name),
      '--listen-client-urls', client,
      '--advertise-client-urls', client,
      '--listen-peer-urls', peer,
      '--initial-advertise-peer-urls', peer,
      '--initial-cluster', initialCluster,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', 'maxine-test',
      '--log-level', 'warn',
    ];
    return new ServerProcess(`etcd ${name}`, binary, args, () => etcdHealthy(client));
  });
  t.after(() => Promise.all(members.map((member) => member.stop())));
  // Members of a new cluster only become healthy once a quorum is up, so start them together.
  await Promise.all(members.map((member) => member.start()));
  return { endpoints: clientPorts.map((port) => `http://127.0.0.1:${port}`), members };
}

async function etcdHealthy(client: string): Promise<boolean> {
  try {
    const response = await fetch(`${client}/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await response.json()) as { health?: string };
    return body.health === 'true';
  } catch {
    return false;
  }
}
