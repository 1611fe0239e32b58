import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { describe, test, type TestContext } from 'node:test';
import { testInstance } from '../../core/fixtures.ts';
import type { LeadershipState } from '../store.ts';
import type { ChildCommand, ChildState } from './child-replica.fixture.ts';
import { LEASE, recordFiles, sharedDir, waitFor, type Replica } from './testing.ts';

const FIXTURE = fileURLToPath(new URL('./child-replica.fixture.ts', import.meta.url));

type WithoutId<C> = C extends unknown ? Omit<C, 'id'> : never;
type Request = WithoutId<ChildCommand>;

/** A replica in another process, driven by JSON lines (see child-replica.fixture.ts). */
class ChildReplica {
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  readonly exited: Promise<number | null>;

  private constructor(
    private readonly child: ChildProcess,
    ready: () => void,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const message = JSON.parse(line) as { ready?: true; id?: number; result?: unknown; error?: { name: string; message: string } };
      if (message.ready) return ready();
      const waiter = this.waiting.get(message.id!);
      this.waiting.delete(message.id!);
      if (message.error) waiter?.reject(Object.assign(new Error(message.error.message), { name: message.error.name }));
      else waiter?.resolve(message.result);
    });
  }

  static async start(t: TestContext, dir: string, instanceId: string, options: object = {}): Promise<ChildReplica> {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, dir, instanceId, JSON.stringify(options)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let replica!: ChildReplica;
    await new Promise<void>((resolve, reject) => {
      replica = new ChildReplica(child, resolve);
      child.once('exit', (code) => reject(new Error(`the child replica exited with ${code} before it was ready`)));
    });
    return replica;
  }

  get pid(): number {
    return this.child.pid!;
  }

  call<T>(request: Request): Promise<T> {
    const id = ++this.nextId;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.child.stdin!.write(`${JSON.stringify({ ...request, id })}\n`);
    });
  }

  /** Closes the store, then stdin: the process must end by itself. */
  async close(): Promise<number | null> {
    await this.call({ op: 'close' });
    this.child.stdin!.end();
    return this.exited;
  }
}

function stateOf({ catalog }: Replica): ChildState {
  const instances = catalog.snapshot().instances.map(({ instance }) => `${instance.service}/${instance.id}`);
  return { revision: catalog.revision, resets: 0, instances: instances.sort() };
}

describe('shared-file store across processes', () => {
  test('two processes writing at once converge; the child ends by itself after close', async (t) => {
    const { dir, open } = await sharedDir(t);
    const local = await open('local');
    const child = await ChildReplica.start(t, dir, 'child');
    const localWrites = Promise.all(Array.from({ length: 200 }, (_, i) => local.store.upsert(testInstance('api', `local-${i}`), Date.now())));
    const childWrites = child.call<number>({ op: 'upsert-many', prefix: 'child', count: 200 });
    await Promise.all([localWrites, childWrites]);

    await waitFor(() => local.catalog.revision === 400, 'the local replica at revision 400');
    // The child learns of the records it did not write from the log, a moment after its own writes resolve.
    const remote = await waitForChild(() => child.call<ChildState>({ op: 'state' }), (state) => state.revision >= 400, 'the child at revision 400', 5000);
    assert.equal(remote.revision, 400);
    assert.deepEqual(remote.instances, stateOf(local).instances);
    assert.equal(remote.instances.length, 400);

    const exit = await Promise.race([child.close(), new Promise((resolve) => setTimeout(() => resolve('still running'), 5000))]);
    assert.equal(exit, 0, 'the child process ended by itself once its store was closed');
  });

  test('a leader killed with SIGKILL is replaced once its lease lapses', async (t) => {
    const { dir, open } = await sharedDir(t);
    const child = await ChildReplica.start(t, dir, 'child');
    await waitForChild(() => child.call<LeadershipState>({ op: 'leadership' }), (l) => l.isLeader, 'the child to lead');
    const local = await open('local');
    const { fencingToken } = await child.call<LeadershipState>({ op: 'leadership' });
    await waitFor(() => local.store.leadership().leaderId === 'child', 'the local replica to see the child lead');

    const killedAt = Date.now();
    process.kill(child.pid, 'SIGKILL');
    await child.exited;
    await waitFor(() => local.store.leadership().isLeader, 'the local replica to take over');
    const took = Date.now() - killedAt;
    assert.ok(took <= LEASE.leaderLeaseMs + LEASE.leaderRenewMs + 500, `took over ${took} ms after the kill`);
    assert.equal(local.store.leadership().fencingToken, fencingToken + 1);
  });

  test('a paused leader is fenced when it wakes, and resyncs past the records compacted meanwhile', async (t) => {
    const { dir, open } = await sharedDir(t);
    const child = await ChildReplica.start(t, dir, 'child');
    await waitForChild(() => child.call<LeadershipState>({ op: 'leadership' }), (l) => l.isLeader, 'the child to lead');
    const { fencingToken } = await child.call<LeadershipState>({ op: 'leadership' });
    const local = await open('local', { compaction: { everyRecords: 20, retainRecords: 5 } });
    await local.store.upsert(testInstance('api', 'before'), Date.now());
    await waitForChild(() => child.call<ChildState>({ op: 'state' }), (s) => s.revision === 1, 'the child to see the first write');

    process.kill(child.pid, 'SIGSTOP');
    try {
      await waitFor(() => local.store.leadership().isLeader, 'the local replica to take over from the paused child');
      for (let i = 0; i < 100; i++) await local.store.upsert(testInstance('api', `while-paused-${i}`), Date.now());
      // Compacted past the 100 records written, so the records after the child's position are deleted.
      const compacted = async () => Number((await recordFiles(dir))[0]!.slice(0, -'.json'.length)) >= 90;
      await waitFor(compacted, 'a compaction past position 90');
    } finally {
      process.kill(child.pid, 'SIGCONT');
    }

    await assert.rejects(child.call({ op: 'expire', token: fencingToken }), { name: 'FencedError' });
    const expected = stateOf(local);
    const resynced = await waitForChild(
      () => child.call<ChildState>({ op: 'state' }),
      (s) => s.revision === expected.revision,
      'the woken child to catch up',
    );
    assert.deepEqual(resynced.instances, expected.instances);
    assert.ok(resynced.resets >= 2, 'it resynced from the snapshot (the records it needed were deleted)');
    const view = await child.call<LeadershipState>({ op: 'leadership' });
    assert.deepEqual([view.isLeader, view.leaderId], [false, 'local']);
    assert.equal(await child.close(), 0);
  });
});

async function waitForChild<T>(ask: () => Promise<T>, done: (value: T) => boolean, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await ask();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last answer ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
