import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { TEST_ADMIN, type TestResponse } from '../helpers/maxine.ts';
import { spawnMaxine, type MaxineProcess } from '../helpers/process.ts';
import { startUpstream } from '../../src/health/test-upstreams.ts';

/** Clients register, heartbeat and discover without credentials, as the original's do. */
const AS_CLIENT = { authorization: '' };

/**
 * Failure behaviour of replicas sharing a store, with real processes: three
 * `maxine serve` children on loopback ports and a real backend. The same
 * scenarios run for every shared store.
 */

export interface ClusterBackend {
  readonly name: string;
  /** Start the backend for one test; null when it is unavailable and the test was skipped. */
  start(t: TestContext): Promise<RunningBackend | null>;
}

export interface RunningBackend {
  /** Environment that points a replica at this backend (mode, address, prefix). */
  readonly env: Readonly<Record<string, string>>;
  /** Stop the backend process (or make the shared directory unusable), keeping its data. */
  stop(): Promise<void>;
  /** Bring it back as it was. */
  restart(): Promise<void>;
}

const LEASE_MS = 2000;
const RENEW_MS = 500;

export interface Replica extends MaxineProcess {
  readonly instanceId: string;
  readonly dataDir: string;
}

/** Kills a replica by PID (resumed first, in case a test froze it) and removes its data directory. */
export async function killReplica(replica: Replica): Promise<void> {
  if (replica.child.exitCode === null && replica.child.signalCode === null) {
    replica.child.kill('SIGCONT');
    replica.child.kill('SIGKILL');
    await replica.exited;
  }
  rmSync(replica.dataDir, { recursive: true, force: true });
}

interface ClusterView {
  isLeader: boolean;
  hasLeader: boolean;
  fencingToken: number | null;
  leaderInstanceId: string | null;
  revision: number;
  reachable: boolean;
}

/** Polls `probe` until it gives a value; a probe that throws is tried again, and its last error is told if time runs out. */
export async function waitFor<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    const value = await probe().catch((error: unknown) => {
      lastError = error;
      return undefined;
    });
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      const last = lastError === undefined ? '' : ` (the last probe that failed: ${lastError instanceof Error ? lastError.message : String(lastError)})`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function register(replica: Replica, serviceName: string, nodeName: string, timeOut = 3600): Promise<TestResponse> {
  return replica.call('POST', '/api/maxine/serviceops/register', { hostName: '127.0.0.1', nodeName, serviceName, port: 8000, timeOut }, AS_CLIENT);
}

/** Waits until every replica has applied the same changes (within 5 s). */
async function sameRevision(replicas: readonly Replica[]): Promise<void> {
  await waitFor(
    async () => {
      const revisions = await Promise.all(replicas.map(async (replica) => (await cluster(replica)).revision));
      return revisions.every((revision) => revision === revisions[0]) ? true : undefined;
    },
    'every replica at the same revision',
    5000,
  );
}

async function cluster(replica: Replica): Promise<ClusterView> {
  return (await replica.call('GET', '/api/actuator/cluster')).json as ClusterView;
}

/** What a replica lists, without its own lease knowledge (expiresAt differs between replicas by design). */
async function listing(replica: Replica): Promise<{ revision: number; instances: string[] }> {
  const { status, json, text } = await replica.call('GET', '/api/maxine/serviceops/servers?format=v2');
  if (status !== 200) throw new Error(`${replica.instanceId} answered its listing with ${status}: ${text}`);
  const instances: string[] = [];
  for (const service of json.services) {
    for (const i of service.instances) instances.push(`${i.serviceName}/${i.nodeName}@${i.revision ?? ''}`);
  }
  return { revision: (await cluster(replica)).revision, instances: instances.sort() };
}

async function leaderOf(replicas: readonly Replica[], timeoutMs: number, minToken = 0): Promise<{ replica: Replica; token: number }> {
  return waitFor(
    async () => {
      const views = await Promise.all(replicas.map(cluster));
      const leaders = views.flatMap((view, i) => (view.isLeader && (view.fencingToken ?? 0) > minToken ? [{ replica: replicas[i]!, token: view.fencingToken! }] : []));
      return leaders.length === 1 ? leaders[0] : undefined;
    },
    'exactly one leader',
    timeoutMs,
  );
}

/**
 * The scenarios in two groups, each its own test file per backend: every
 * scenario starts real replicas, and one file holding all six would run
 * close to the runner's per-file time limit on a busy machine.
 */
export type ScenarioGroup = 'replication' | 'leadership';

export function runClusterScenarios(backend: ClusterBackend, group: ScenarioGroup): void {
  const suite = `cluster (${backend.name})`;
  const scenario = (of: ScenarioGroup, name: string, fn: (t: TestContext) => Promise<void>) => {
    if (of === group) test(name, fn);
  };

  /** Replicas of the running test; killed first when it ends, before the backend and its files go. */
  const started = new Set<Replica>();

  async function startReplica(running: RunningBackend, instanceId: string): Promise<Replica> {
    const dataDir = mkdtempSync(join(tmpdir(), `maxine-${instanceId}-`));
    const child = await spawnMaxine(['--data-dir', dataDir, '--log-level', 'warn'], {
      ...running.env,
      MAXINE_INSTANCE_ID: instanceId,
      MAXINE_LEADER_ELECTION_LEASE_MS: String(LEASE_MS),
      MAXINE_LEADER_ELECTION_RENEW_MS: String(RENEW_MS),
    }).catch((error: unknown) => {
      rmSync(dataDir, { recursive: true, force: true });
      throw error;
    });
    const replica = { ...child, instanceId, dataDir };
    started.add(replica);
    return replica;
  }

  async function killAll(): Promise<void> {
    for (const replica of started) await killReplica(replica);
    started.clear();
  }

  async function setUp(t: TestContext, size = 3): Promise<{ running: RunningBackend; replicas: Replica[] } | null> {
    // Registered before the backend's own clean-up, so it runs first.
    t.after(killAll);
    const running = await backend.start(t);
    if (running === null) return null;
    const replicas: Replica[] = [];
    for (let i = 0; i < size; i++) replicas.push(await startReplica(running, `${backend.name}-r${i + 1}`));
    return { running, replicas };
  }

  scenario('replication', `${suite}: a registration on one replica is discoverable on another within 1 s`, async (t) => {
    const env = await setUp(t);
    if (env === null) return;
    const [a, , c] = env.replicas as [Replica, Replica, Replica];
    const delays: number[] = [];
    for (let i = 0; i < 200; i++) {
      const serviceName = `vis-${i}`;
      assert.equal((await register(a, serviceName, 'n')).status, 200);
      const acked = Date.now();
      await waitFor(
        async () => ((await c.call('GET', `/api/maxine/serviceops/discover?serviceName=${serviceName}&format=json`, undefined, AS_CLIENT)).status === 200 ? true : undefined),
        `${serviceName} on replica C`,
        5000,
      );
      delays.push(Date.now() - acked);
    }
    delays.sort((x, y) => x - y);
    const p50 = delays[Math.floor(delays.length * 0.5)]!;
    const p99 = delays[Math.floor(delays.length * 0.99)]!;
    console.log(`[${backend.name}] register on A -> discoverable on C: p50 ${p50} ms, p99 ${p99} ms, max ${delays.at(-1)} ms`);
    assert.ok(p99 <= 1000, `p99 ${p99} ms`);

    // Runtime configuration is shared state too: a change on A holds on C.
    // C reads it as a signed-in user: sign in first, so that the time measured is the change's alone.
    assert.equal((await c.call('GET', '/api/maxine/control/config')).status, 200);
    const put = await a.call('PUT', '/api/maxine/control/config', { heartBeatTimeout: 42 });
    assert.deepEqual(put.json, { heartBeatTimeout: 'Success' });
    const changedAt = Date.now();
    await waitFor(
      async () => ((await c.call('GET', '/api/maxine/control/config')).json.heartBeatTimeout === 42 ? true : undefined),
      'the config change on replica C',
      5000,
    );
    const configDelay = Date.now() - changedAt;
    console.log(`[${backend.name}] config change on A -> seen on C after ${configDelay} ms`);
    assert.ok(configDelay <= 1000, `config change took ${configDelay} ms`);
  });

  scenario('replication', `${suite}: sessions and users changed on several replicas at once stay consistent`, async (t) => {
    const env = await setUp(t);
    if (env === null) return;
    const [a, b, c] = env.replicas as [Replica, Replica, Replica];
    // A client behind a load balancer signs in on A and refreshes on B at once:
    // B may not have the session yet, so it may ask to retry, but never ends it.
    const signin = await a.call('POST', '/api/maxine/signin', TEST_ADMIN, AS_CLIENT);
    assert.equal(signin.status, 200, signin.text);
    let refreshToken = (signin.json as { refreshToken: string }).refreshToken;
    const signedInAt = Date.now();
    for (;;) {
      const res = await b.call('POST', '/api/maxine/refresh', { refreshToken }, AS_CLIENT);
      if (res.status === 200) {
        refreshToken = (res.json as { refreshToken: string }).refreshToken;
        break;
      }
      assert.equal(res.status, 409, `a fresh session refreshed on another replica: ${res.status} ${res.text}`);
      assert.equal(res.headers.get('retry-after'), '1');
      assert.ok(Date.now() - signedInAt < 3000, 'replica B still asks to retry after 3 s');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // Signing out on C, which may not have seen that refresh yet, ends the session; C then refuses its token.
    const signout = await c.call('POST', '/api/maxine/signout', { refreshToken }, AS_CLIENT);
    assert.equal(signout.status, 200, signout.text);
    assert.equal((await c.call('POST', '/api/maxine/refresh', { refreshToken }, AS_CLIENT)).status, 401);

    // A sign-out on B and a refresh of the same token on C at once: whichever the store records first, the session
    // ends. C must not bring it back by rotating a record B's sign-out already deleted (C may not have seen that yet).
    let raced = ((await a.call('POST', '/api/maxine/signin', TEST_ADMIN, AS_CLIENT)).json as { refreshToken: string }).refreshToken;
    for (let tries = 0; ; tries++) {
      const res = await c.call('POST', '/api/maxine/refresh', { refreshToken: raced }, AS_CLIENT);
      if (res.status === 200) {
        raced = (res.json as { refreshToken: string }).refreshToken;
        break;
      }
      assert.ok(res.status === 409 && tries < 150, `refreshing a new session on C: ${res.status} ${res.text}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const [out, refreshed] = await Promise.all([
      b.call('POST', '/api/maxine/signout', { refreshToken: raced }, AS_CLIENT),
      c.call('POST', '/api/maxine/refresh', { refreshToken: raced }, AS_CLIENT),
    ]);
    console.log(`[${backend.name}] sign-out on B and refresh on C at once: ${out.status} and ${refreshed.status}`);
    assert.ok([200, 401].includes(out.status) && [200, 401].includes(refreshed.status), `${out.status} ${out.text}; ${refreshed.status} ${refreshed.text}`);
    const newest = refreshed.status === 200 ? (refreshed.json as { refreshToken: string }).refreshToken : raced;
    // Once every replica has both writes, none refreshes the session.
    await sameRevision(env.replicas);
    for (const replica of env.replicas) {
      const after = await replica.call('POST', '/api/maxine/refresh', { refreshToken: newest }, AS_CLIENT);
      assert.equal(after.status, 401, `after the race, replica ${replica.instanceId} still refreshed the session (${after.status})`);
    }

    // Users too: deleting a user on B while C changes its role must not bring the user back.
    assert.equal((await a.call('POST', '/api/maxine/users', { userName: 'racer', password: 'racer-password-1', role: 'viewer' })).status, 201);
    await waitFor(
      async () => {
        const listed = await Promise.all([b, c].map(async (replica) => (await replica.call('GET', '/api/maxine/users')).json as { users: { userName: string }[] }));
        return listed.every((list) => list.users.some((user) => user.userName === 'racer')) ? true : undefined;
      },
      'B and C to have the new user',
      5000,
    );
    const [deleted, promoted] = await Promise.all([b.call('DELETE', '/api/maxine/users/racer'), c.call('PUT', '/api/maxine/users/racer/role', { role: 'operator' })]);
    console.log(`[${backend.name}] user deleted on B and promoted on C at once: ${deleted.status} and ${promoted.status}`);
    // One of the two is recorded first; the other is refused (409), or finds the user gone (404).
    assert.ok([200, 409].includes(deleted.status) && [200, 404, 409].includes(promoted.status), `${deleted.text}; ${promoted.text}`);
    assert.ok(deleted.status === 200 || promoted.status === 200, 'one of them is made');
    await sameRevision(env.replicas);
    for (const replica of env.replicas) {
      const { users } = (await replica.call('GET', '/api/maxine/users')).json as { users: { userName: string; role: string }[] };
      const racer = users.find((user) => user.userName === 'racer');
      if (deleted.status === 200) assert.equal(racer, undefined, `replica ${replica.instanceId} still has the deleted user`);
      else assert.equal(racer?.role, 'operator', `replica ${replica.instanceId}: the promotion recorded first stands`);
    }
  });

  scenario('leadership', `${suite}: SIGKILL of the leader under registrations: a new leader in time, nothing acknowledged lost, expiry goes on`, async (t) => {
    const env = await setUp(t);
    if (env === null) return;
    const { replica: leader, token } = await leaderOf(env.replicas, 10_000);
    const acknowledged: string[] = [];
    let stop = false;
    let next = 0;
    const writer = (replica: Replica) => async () => {
      while (!stop) {
        const n = next++;
        try {
          const res = await register(replica, `svc-${n % 20}`, `n${n}`);
          if (res.status === 200) acknowledged.push(`svc-${n % 20}/n${n}`);
        } catch {
          if (replica === leader) return; // it is gone
        }
      }
    };
    const writers = env.replicas.flatMap((replica) => [writer(replica)(), writer(replica)()]);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    leader.child.kill('SIGKILL');
    const killedAt = Date.now();
    const survivors = env.replicas.filter((r) => r !== leader);
    const next_ = await leaderOf(survivors, LEASE_MS + 5000, token);
    const failover = Date.now() - killedAt;
    console.log(`[${backend.name}] new leader ${next_.replica.instanceId} (token ${next_.token}) ${failover} ms after SIGKILL of ${leader.instanceId}`);
    assert.ok(failover <= LEASE_MS + 2000, `failover took ${failover} ms`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    stop = true;
    await Promise.all(writers);
    assert.ok(acknowledged.length > 50, `only ${acknowledged.length} registrations acknowledged`);

    // Acknowledged on one replica means durable there; the others apply it from the feed within the
    // replication bound (1 s, scenario above). Missing after that bound is lost.
    for (const replica of survivors) {
      const missing = async () => {
        const present = new Set((await listing(replica)).instances.map((entry) => entry.split('@')[0]));
        return acknowledged.filter((key) => !present.has(key));
      };
      const deadline = Date.now() + 2000;
      let lost = await missing();
      while (lost.length > 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        lost = await missing();
      }
      console.log(`[${backend.name}] ${replica.instanceId}: acknowledged ${acknowledged.length}, lost ${lost.length}`);
      assert.deepEqual(lost, []);
    }

    const [survivor] = survivors as [Replica];
    assert.equal((await register(survivor, 'short-lived', 'once', 1)).status, 200);
    const registeredAt = Date.now();
    await waitFor(
      async () => ((await survivor.call('GET', '/api/maxine/serviceops/discover?serviceName=short-lived&format=json', undefined, AS_CLIENT)).status !== 200 ? true : undefined),
      'the new leader to expire a lapsed lease',
      10_000,
    );
    const expiredAfter = Date.now() - registeredAt;
    console.log(`[${backend.name}] a 1 s lease expired ${expiredAfter} ms after registration under the new leader`);
    // etcd leases have a floor of about 2 s; the deadline plus one second otherwise.
    assert.ok(expiredAfter <= 3500, `expiry took ${expiredAfter} ms`);
  });

  scenario('replication', `${suite}: with the backend stopped, reads go on flagged stale and writes get 503; all converge after`, async (t) => {
    const env = await setUp(t);
    if (env === null) return;
    for (let i = 0; i < 10; i++) assert.equal((await register(env.replicas[i % 3]!, 'steady', `n${i}`)).status, 200);
    await waitFor(
      async () => {
        const counts = (await Promise.all(env.replicas.map(listing))).map((l) => l.instances.length);
        if (counts.every((n) => n === 10)) return true;
        throw new Error(`the replicas listed ${counts.join(', ')}`);
      },
      'every replica to list 10',
      5000,
    );

    await env.running.stop();
    const stoppedAt = Date.now();
    let flagged = false;
    while (Date.now() - stoppedAt < 10_000) {
      for (const replica of env.replicas) {
        const res = await replica.call('GET', '/api/maxine/serviceops/discover?serviceName=steady&format=json', undefined, AS_CLIENT);
        assert.equal(res.status, 200, `discover on ${replica.instanceId} while the backend is down`);
        if (Date.now() - stoppedAt > 3000) {
          assert.equal(res.headers.get('x-maxine-stale'), 'true', `${replica.instanceId} flags its answers stale`);
          flagged = true;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.ok(flagged);
    const refused = await register(env.replicas[1]!, 'steady', 'during-outage');
    assert.equal(refused.status, 503);
    assert.match(refused.json.message, /store/i);
    const metrics = (await env.replicas[0]!.call('GET', '/api/actuator/metrics')).json;
    assert.equal(metrics.store.reachable, false);

    await env.running.restart();
    const restartedAt = Date.now();
    await waitFor(
      async () => ((await register(env.replicas[2]!, 'steady', 'after-outage')).status === 200 ? true : undefined),
      'writes to be accepted again',
      10_000,
    );
    const converged = await waitFor(
      async () => {
        const listings = await Promise.all(env.replicas.map(listing));
        const first = JSON.stringify(listings[0]);
        const stale = await Promise.all(env.replicas.map(async (r) => (await r.call('GET', '/api/actuator/health')).headers.get('x-maxine-stale')));
        return listings.every((l) => JSON.stringify(l) === first) && stale.every((h) => h === null) ? listings[0] : undefined;
      },
      'every replica to converge',
      10_000,
    );
    const took = Date.now() - restartedAt;
    console.log(`[${backend.name}] converged at revision ${converged.revision} ${took} ms after the backend came back`);
    assert.ok(took <= 5000, `convergence took ${took} ms`);
    assert.equal(converged.instances.length, 11);
  });

  scenario('replication', `${suite}: a replica started later catches up from a snapshot and then the feed`, async (t) => {
    const env = await setUp(t, 2);
    if (env === null) return;
    for (let i = 0; i < 50; i++) assert.equal((await register(env.replicas[i % 2]!, `late-${i % 5}`, `n${i}`)).status, 200);
    const late = await startReplica(env.running, `${backend.name}-late`);
    // Its first protected call signs in, and a sign-in is a KV write (the session's record) that moves the revision: before the comparison.
    await cluster(late);
    assert.equal((await register(env.replicas[0]!, 'late-after', 'n')).status, 200);
    const expected = await listing(env.replicas[0]!);
    await waitFor(async () => (JSON.stringify(await listing(late)) === JSON.stringify(expected) ? true : undefined), 'the late replica to catch up', 5000);
    assert.equal(expected.instances.length, 51);
  });

  scenario('leadership', `${suite}: only the leader probes; its verdicts reach every replica; a new leader takes the probing over`, async (t) => {
    const env = await setUp(t);
    if (env === null) return;
    const target = await startUpstream({ kind: 'status', status: 200 });
    t.after(() => target.close());
    const { replica: leader, token } = await leaderOf(env.replicas, 10_000);
    const intervalMs = 200;
    const registered = await env.replicas[1]!.call('POST', '/api/maxine/serviceops/register', {
      hostName: '127.0.0.1',
      nodeName: 'probed',
      serviceName: 'checked',
      port: target.port,
      timeOut: 3600,
      check: { type: 'http', path: '/hc', intervalMs, timeoutMs: 150, fall: 2, rise: 2, jitterMs: 0 },
    }, AS_CLIENT);
    assert.equal(registered.status, 200);
    const probesIn = async (windowMs: number) => {
      const before = target.hits.get('/hc') ?? 0;
      await new Promise((resolve) => setTimeout(resolve, windowMs));
      return (target.hits.get('/hc') ?? 0) - before;
    };
    await waitFor(async () => ((target.hits.get('/hc') ?? 0) > 0 ? true : undefined), 'the first probe', 5000);
    const probes = await probesIn(2000);
    console.log(`[${backend.name}] probes of one instance in 2 s at a ${intervalMs} ms interval, three replicas: ${probes}`);
    // One prober makes about 10; three would make about 30.
    assert.ok(probes >= 6 && probes <= 14, `${probes} probes in 2 s`);
    for (const replica of env.replicas) {
      const upstreams = (await replica.call('GET', '/api/actuator/upstreams?serviceName=checked')).json;
      assert.equal(upstreams.checks.leading, replica === leader, `${replica.instanceId} leading`);
      assert.equal(upstreams.services[0].instances[0].probe === null, replica !== leader, `${replica.instanceId} probe state`);
    }

    const healthEverywhere = (replicas: readonly Replica[], health: string) =>
      waitFor(
        async () => {
          const seen = await Promise.all(
            replicas.map(async (r) => (await r.call('GET', '/api/maxine/serviceops/servers?format=v2&serviceName=checked')).json.services[0]?.instances[0]?.health),
          );
          return seen.every((h) => h === health) ? true : undefined;
        },
        `every replica to list the instance ${health}`,
        LEASE_MS + 8000,
      );
    target.behaviour = { kind: 'status', status: 503 };
    await healthEverywhere(env.replicas, 'critical');

    leader.child.kill('SIGKILL');
    const survivors = env.replicas.filter((r) => r !== leader);
    await leaderOf(survivors, LEASE_MS + 5000, token);
    target.behaviour = { kind: 'status', status: 200 };
    await healthEverywhere(survivors, 'passing');
    const after = await probesIn(2000);
    console.log(`[${backend.name}] probes in 2 s under the new leader: ${after}`);
    assert.ok(after >= 6 && after <= 14, `${after} probes in 2 s under the new leader`);
  });

  scenario('leadership', `${suite}: a leader frozen past its lease and resumed cannot expire or evict anything`, async (t) => {
    const env = await setUp(t);
    if (env === null) return;
    const { replica: leader, token } = await leaderOf(env.replicas, 10_000);
    const others = env.replicas.filter((r) => r !== leader) as [Replica, Replica];
    // Registered with a 3 s lease and kept alive through another replica only.
    assert.equal((await register(others[0], 'kept', 'alive', 3)).status, 200);
    let heartbeats = 0;
    let failures = 0;
    let stop = false;
    const beating = (async () => {
      while (!stop) {
        const res = await others[0].call('POST', '/api/maxine/serviceops/heartbeat', { serviceName: 'kept', nodeName: 'alive' }, AS_CLIENT);
        heartbeats++;
        if (res.status !== 200) failures++;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    })();

    leader.child.kill('SIGSTOP');
    const next = await leaderOf(others, LEASE_MS + 5000, token);
    await new Promise((resolve) => setTimeout(resolve, 4000)); // the frozen leader's view is now well past the lease
    leader.child.kill('SIGCONT');
    await new Promise((resolve) => setTimeout(resolve, 3000));
    stop = true;
    await beating;

    assert.equal(failures, 0, `${failures} of ${heartbeats} heartbeats found the instance gone`);
    for (const replica of env.replicas) {
      const res = await replica.call('GET', '/api/maxine/serviceops/discover?serviceName=kept&format=json', undefined, AS_CLIENT);
      assert.equal(res.status, 200, `${replica.instanceId} still has the instance`);
    }
    const resumed = await cluster(leader);
    assert.equal(resumed.isLeader, false, 'the resumed replica knows it is no longer the leader');
    assert.equal(resumed.leaderInstanceId, next.replica.instanceId);
  });
}
