import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { TestResponse } from '../helpers/maxine.ts';
import { spawnMaxine } from '../helpers/process.ts';
import { startWebhookReceiver, type WebhookRequest } from '../helpers/webhook-receiver.ts';
import { REDIS, SHARED_FILE } from './backends.ts';
import { killReplica, waitFor, type ClusterBackend, type Replica, type RunningBackend } from './scenarios.ts';

/**
 * Alerts across real replicas: three `maxine serve` children sharing a store,
 * notifying a real webhook receiver on loopback. Cluster alerts must reach
 * the receiver once (from the leader), survive a change of leader without a
 * repeat, and be resolved by the new leader; replica alerts come from each
 * replica that sees them.
 */

/** Clients register without credentials, as the original's do. */
const AS_CLIENT = { authorization: '' };

const LEASE_MS = 2000;
const RENEW_MS = 500;
/** alert-for-ms of the shared-file scenarios. */
const FOR_MS = 300;
/**
 * alert-for-ms of the redis scenario: longer, because on a busy machine
 * (two cores, two test files at once) the redis feed reader sometimes
 * reports "cannot read the feed: no answer within 2000 ms" for about a
 * second, and with 300 ms that blip fires a store_unreachable of its own.
 */
const REDIS_FOR_MS = 2000;
const INTERVAL_MS = 100;
const WEBHOOK = 'receiver';
const SECRET = 'cluster-alerts-test-secret';

interface WebhookBody {
  version: number;
  status: 'firing' | 'resolved';
  sender: string;
  sentAt: string;
  alert: {
    fingerprint: string;
    rule: string;
    severity: string;
    scope: 'cluster' | 'replica';
    service: string | null;
    instanceId: string | null;
    replica: string | null;
    summary: string;
    details: Record<string, unknown>;
    startsAt: string;
    endsAt: string | null;
  };
}

/** A request the receiver got, with its body as a notification (a placeholder about rule '(unparsable)' when it is not JSON). */
interface Received extends WebhookRequest<WebhookBody> {
  readonly body: WebhookBody;
}

interface Receiver {
  readonly url: string;
  readonly origin: string;
  readonly received: Received[];
  /** Notifications of one rule (and status), in order of arrival, from the `from`th received on. */
  of(rule: string, status?: 'firing' | 'resolved', from?: number): Received[];
  /** Waits until at least `count` notifications of one rule and status have arrived (from the `from`th on); resolves with all of them. */
  arrival(rule: string, status: 'firing' | 'resolved', count: number, timeoutMs: number, from?: number): Promise<Received[]>;
}

const UNPARSABLE: WebhookBody = { version: -1, status: 'firing', sender: '', sentAt: '', alert: { rule: '(unparsable)' } as WebhookBody['alert'] };

/** A webhook receiver on loopback recording every request, closed when the test ends; it answers 200 to everything. */
async function startReceiver(t: TestContext): Promise<Receiver> {
  // A path and a query, as real webhook URLs carry tokens there.
  const hook = await startWebhookReceiver<WebhookBody>({ path: '/hooks/maxine?token=t0ken' });
  t.after(() => hook.close());
  const received = (): Received[] => hook.requests.map((r) => ({ ...r, body: r.json === undefined ? UNPARSABLE : r.json }));
  const of = (rule: string, status?: 'firing' | 'resolved', from = 0) =>
    received().slice(from).filter((r) => r.body.alert?.rule === rule && (status === undefined || r.body.status === status));
  return {
    url: hook.url,
    origin: hook.origin,
    get received() {
      return received();
    },
    of,
    arrival: (rule, status, count, timeoutMs, from = 0) =>
      waitFor(async () => (of(rule, status, from).length >= count ? of(rule, status, from) : undefined), `${count} ${rule} ${status} notification(s)`, timeoutMs),
  };
}

/** What every notification must look like on the wire: a signed JSON POST whose headers agree with its body. */
function assertWellFormed(r: Received): void {
  assert.equal(r.method, 'POST');
  assert.equal(r.path, '/hooks/maxine?token=t0ken');
  assert.match(String(r.headers['content-type']), /^application\/json/);
  assert.match(String(r.headers['user-agent']), /^maxine\//);
  assert.match(String(r.headers['x-maxine-delivery']), /^[0-9a-f-]{36}$/);
  assert.equal(r.headers['x-maxine-event'], r.body.status);
  assert.equal(r.body.version, 1);
  const timestamp = String(r.headers['x-maxine-timestamp']);
  assert.match(timestamp, /^\d+$/);
  const expected = `sha256=${createHmac('sha256', SECRET).update(`${timestamp}.${r.raw}`).digest('hex')}`;
  assert.equal(r.headers['x-maxine-signature'], expected, 'the HMAC signature over <timestamp>.<body>');
}

interface AlertView {
  type: string;
  fingerprint: string;
  severity: string;
  scope: 'cluster' | 'replica';
  state: 'pending' | 'firing' | 'resolved';
  service: string | null;
  instanceId: string | null;
  replica: string | null;
  summary: string;
  details: Record<string, unknown>;
  firedAt: string | null;
  resolvedAt: string | null;
  notifications: { status: 'firing' | 'resolved'; sentBy: string; sentAt: string; deliveries: { webhook: string; state: string; statusCode: number | null; attempts: number }[] }[];
}

interface AlertsView {
  alerts: AlertView[];
  notifiesClusterAlerts: boolean;
  webhooks: { name: string; target: string; signed: boolean; delivered: number; failed: number }[];
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function register(replica: Replica, serviceName: string, nodeName: string): Promise<TestResponse> {
  return replica.call('POST', '/api/maxine/serviceops/register', { hostName: '127.0.0.1', nodeName, serviceName, port: 8000, timeOut: 3600 }, AS_CLIENT);
}

async function alertsOf(replica: Replica): Promise<AlertsView> {
  const res = await replica.call('GET', '/api/actuator/alerts');
  assert.equal(res.status, 200, `GET /api/actuator/alerts on ${replica.instanceId}: ${res.text}`);
  return res.json as AlertsView;
}

async function leaderOf(replicas: readonly Replica[], timeoutMs: number, minToken = 0): Promise<{ replica: Replica; token: number }> {
  return waitFor(
    async () => {
      const views = await Promise.all(replicas.map(async (r) => (await r.call('GET', '/api/actuator/cluster')).json));
      const leaders = views.flatMap((view, i) => (view.isLeader && (view.fencingToken ?? 0) > minToken ? [{ replica: replicas[i]!, token: view.fencingToken as number }] : []));
      return leaders.length === 1 ? leaders[0] : undefined;
    },
    'exactly one leader',
    timeoutMs,
  );
}

/**
 * Three replicas on `backend`, all pointing at the receiver; killed by PID
 * (then the backend stopped, then the receiver closed) when the test ends.
 * Null when the backend is unavailable and the test was skipped (or, with
 * MAXINE_TEST_BACKENDS=required, failed).
 */
async function cluster(
  t: TestContext,
  backend: ClusterBackend,
  prefix: string,
  options: { extraArgs?: readonly string[]; leaseMs?: number; renewMs?: number; forMs?: number } = {},
): Promise<{ running: RunningBackend; replicas: Replica[]; receiver: Receiver } | null> {
  const started: Replica[] = [];
  // Registered first, so the replicas die before the backend and the receiver go.
  t.after(async () => {
    for (const replica of started) await killReplica(replica);
  });
  const running = await backend.start(t);
  if (running === null) return null;
  const receiver = await startReceiver(t);
  const args = [
    '--log-level', 'warn',
    '--alert-for-ms', String(options.forMs ?? FOR_MS),
    '--alert-evaluation-interval-ms', String(INTERVAL_MS),
    '--alert-webhooks', JSON.stringify([{ name: WEBHOOK, url: receiver.url }]),
    '--alert-webhook-secrets', `${WEBHOOK}=${SECRET}`,
    '--alert-webhook-backoff-ms', '100',
    ...(options.extraArgs ?? []),
  ];
  // One after another, as the other cluster tests do: three cold starts at once can take long on a busy machine.
  for (const i of [1, 2, 3]) {
    const instanceId = `${prefix}-r${i}`;
    const dataDir = mkdtempSync(join(tmpdir(), `maxine-${instanceId}-`));
    const child = await spawnMaxine(['--data-dir', dataDir, ...args], {
      ...running.env,
      MAXINE_INSTANCE_ID: instanceId,
      MAXINE_LEADER_ELECTION_LEASE_MS: String(options.leaseMs ?? LEASE_MS),
      MAXINE_LEADER_ELECTION_RENEW_MS: String(options.renewMs ?? RENEW_MS),
    }).catch((error: unknown) => {
      rmSync(dataDir, { recursive: true, force: true });
      throw error;
    });
    started.push({ ...child, instanceId, dataDir });
  }
  return { running, replicas: [...started], receiver };
}

/** On failure, the replicas' own words (warnings and errors only) and what the receiver got, so a red run says why. */
async function explained(replicas: () => readonly Replica[], receiver: () => Receiver | undefined, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (error) {
    const logs = replicas().map((r) => `--- ${r.instanceId}\n${r.output().split('\n').slice(-20).map((line) => line.slice(0, 300)).join('\n')}`);
    const got = (receiver()?.received ?? []).map((r) => `${r.at} ${r.body.status} ${r.body.alert?.rule} ${r.body.alert?.fingerprint} replica=${r.body.alert?.replica} from ${r.body.sender}: ${r.body.alert?.summary}`);
    if (error instanceof Error) error.message += `\n\nreceived:\n${got.join('\n') || '(nothing)'}\n\nreplica output:\n${logs.join('\n')}`;
    throw error;
  }
}

test('alerts (shared-file): a cluster alert is notified once by the leader, not repeated by the next leader, and resolved by it', { timeout: 90_000 }, async (t) => {
  let replicas: Replica[] = [];
  let receiver: Receiver | undefined;
  await explained(() => replicas, () => receiver, async () => {
    const env = await cluster(t, SHARED_FILE, 'alerts-sf', { extraArgs: ['--alert-min-instances-by-service', 'orders=2'] });
    if (env === null) return;
    ({ replicas, receiver } = env);
    const rx = env.receiver;
    const { replica: leader, token } = await leaderOf(replicas, 10_000);
    const followers = replicas.filter((r) => r !== leader);

    // `orders` is named with a threshold of its own, so it is watched even
    // before it has any instance: the alert may fire before this
    // registration already; either way it is one alert, and one instance is
    // still below 2. The instance is registered on a follower, never on the
    // leader that is killed below.
    assert.equal((await register(followers[0]!, 'orders', 'o1')).status, 200);

    const [firing] = await rx.arrival('service_instances_low', 'firing', 1, 10_000);
    const fingerprint = firing!.body.alert.fingerprint;
    assertWellFormed(firing!);
    assert.equal(firing!.body.sender, leader.instanceId, 'the leader sends cluster alerts');
    assert.deepEqual(
      { rule: firing!.body.alert.rule, scope: firing!.body.alert.scope, severity: firing!.body.alert.severity, service: firing!.body.alert.service, replica: firing!.body.alert.replica, instanceId: firing!.body.alert.instanceId, endsAt: firing!.body.alert.endsAt },
      { rule: 'service_instances_low', scope: 'cluster', severity: 'critical', service: 'orders', replica: null, instanceId: null, endsAt: null },
    );
    assert.equal(firing!.body.alert.details.threshold, 2);

    // Every replica evaluates it (and counts the follower's registration); each shows the leader's notification.
    await waitFor(
      async () => {
        const views = await Promise.all(replicas.map(alertsOf));
        for (const [i, view] of views.entries()) {
          const alert = view.alerts.find((a) => a.fingerprint === fingerprint);
          if (alert?.state !== 'firing' || alert.details.registered !== 1 || alert.notifications.length === 0) return undefined;
          assert.equal(alert.type, 'service_instances_low');
          assert.equal(alert.scope, 'cluster');
          assert.equal(alert.service, 'orders');
          assert.equal(alert.notifications.length, 1, `${replicas[i]!.instanceId}: one notification`);
          const [n] = alert.notifications;
          assert.equal(n!.status, 'firing');
          assert.equal(n!.sentBy, leader.instanceId, `${replicas[i]!.instanceId} shows the leader as the sender`);
          assert.equal(n!.deliveries.length, 1);
          assert.deepEqual({ webhook: n!.deliveries[0]!.webhook, state: n!.deliveries[0]!.state, statusCode: n!.deliveries[0]!.statusCode }, { webhook: WEBHOOK, state: 'delivered', statusCode: 200 });
          assert.equal(view.notifiesClusterAlerts, replicas[i] === leader, `${replicas[i]!.instanceId} notifiesClusterAlerts`);
          assert.equal(view.webhooks.length, 1);
          assert.deepEqual({ name: view.webhooks[0]!.name, target: view.webhooks[0]!.target, signed: view.webhooks[0]!.signed }, { name: WEBHOOK, target: rx.origin, signed: true });
        }
        return true;
      },
      'every replica to show the alert firing with the leader\'s notification',
      5000,
    );
    // A few more evaluations on every replica: still the one notification, not one per replica.
    await sleep(10 * INTERVAL_MS);
    assert.equal(rx.of('service_instances_low').length, 1, 'one notification for the whole cluster');

    leader.child.kill('SIGKILL');
    await leader.exited;
    const survivors = followers;
    const { replica: next } = await leaderOf(survivors, LEASE_MS + 5000, token);
    // The new leader has had time to reconcile several times over.
    await sleep(5 * INTERVAL_MS + LEASE_MS);
    assert.deepEqual(
      rx.of('service_instances_low').map((r) => `${r.body.status} from ${r.body.sender}`),
      [`firing from ${leader.instanceId}`],
      'the new leader does not notify the firing again',
    );
    const carried = await alertsOf(next);
    assert.equal(carried.notifiesClusterAlerts, true);
    const still = carried.alerts.find((a) => a.fingerprint === fingerprint);
    assert.equal(still?.state, 'firing');
    assert.deepEqual(still!.notifications.map((n) => `${n.status} by ${n.sentBy}`), [`firing by ${leader.instanceId}`], "the new leader shows the old leader's record");

    // The second instance (on the survivor that is not leading) resolves it.
    const other = survivors.find((r) => r !== next)!;
    assert.equal((await register(other, 'orders', 'o2')).status, 200);
    const [resolved] = await rx.arrival('service_instances_low', 'resolved', 1, 10_000);
    assertWellFormed(resolved!);
    assert.equal(resolved!.body.sender, next.instanceId, 'the new leader sends the resolution');
    assert.equal(resolved!.body.alert.fingerprint, fingerprint);
    assert.equal(resolved!.body.alert.startsAt, firing!.body.alert.startsAt, 'the resolution names when the alert first fired');
    assert.notEqual(resolved!.body.alert.endsAt, null);
    assert.ok(Date.parse(resolved!.body.alert.endsAt!) >= Date.parse(firing!.body.alert.startsAt));

    await sleep(10 * INTERVAL_MS);
    assert.deepEqual(
      rx.of('service_instances_low').map((r) => `${r.body.status} ${r.body.alert.fingerprint} from ${r.body.sender}`),
      [`firing ${fingerprint} from ${leader.instanceId}`, `resolved ${fingerprint} from ${next.instanceId}`],
      'exactly one firing and one resolution for the whole cluster',
    );
    for (const replica of survivors) {
      const alert = (await alertsOf(replica)).alerts.find((a) => a.fingerprint === fingerprint);
      assert.equal(alert?.state, 'resolved', `${replica.instanceId} shows it resolved`);
    }
    const own = (await alertsOf(next)).alerts.find((a) => a.fingerprint === fingerprint)!;
    assert.ok(own.notifications.some((n) => n.status === 'resolved' && n.sentBy === next.instanceId), 'the new leader shows its resolution');
  });
});

test('alerts (shared-file): a cluster alert resolved while there is no leader is notified by the next leader', { timeout: 90_000 }, async (t) => {
  let replicas: Replica[] = [];
  let receiver: Receiver | undefined;
  await explained(() => replicas, () => receiver, async () => {
    // A longer lease than elsewhere: the leaderless window must comfortably hold a registration and a few evaluations.
    const leaseMs = 4000;
    const env = await cluster(t, SHARED_FILE, 'alerts-gap', { extraArgs: ['--alert-min-instances-by-service', 'orders=2'], leaseMs, renewMs: 1000 });
    if (env === null) return;
    ({ replicas, receiver } = env);
    const rx = env.receiver;
    const { replica: leader, token } = await leaderOf(replicas, 10_000);
    const survivors = replicas.filter((r) => r !== leader);
    assert.equal((await register(survivors[0]!, 'orders', 'o1')).status, 200);
    const [firing] = await rx.arrival('service_instances_low', 'firing', 1, 10_000);
    const fingerprint = firing!.body.alert.fingerprint;
    assert.equal(firing!.body.sender, leader.instanceId);
    // The record has reached the survivors before the leader dies.
    await waitFor(
      async () => ((await Promise.all(survivors.map(alertsOf))).every((v) => v.alerts.find((a) => a.fingerprint === fingerprint)?.notifications[0]?.sentBy === leader.instanceId) ? true : undefined),
      "the survivors to hold the leader's record",
      5000,
    );

    leader.child.kill('SIGKILL');
    await leader.exited;
    // Within the dead leader's lease: nobody leads, and the condition goes away.
    assert.equal((await register(survivors[1]!, 'orders', 'o2')).status, 200);
    const resolvedAt = await waitFor(
      async () => {
        const views = await Promise.all(survivors.map(alertsOf));
        const alerts = views.map((v) => v.alerts.find((a) => a.fingerprint === fingerprint));
        return alerts.every((a) => a?.state === 'resolved') ? alerts.map((a) => a!.resolvedAt!) : undefined;
      },
      'the survivors to see the alert resolved',
      leaseMs,
    );
    const leaders = await Promise.all(survivors.map(async (r) => (await r.call('GET', '/api/actuator/cluster')).json.isLeader as boolean));
    assert.deepEqual(leaders, [false, false], 'resolved before any survivor leads');
    assert.equal(rx.of('service_instances_low', 'resolved').length, 0, 'nobody notifies without the leadership');

    const { replica: next } = await leaderOf(survivors, leaseMs + 5000, token);
    const [resolved] = await rx.arrival('service_instances_low', 'resolved', 1, 5000);
    assertWellFormed(resolved!);
    assert.equal(resolved!.body.sender, next.instanceId);
    assert.equal(resolved!.body.alert.fingerprint, fingerprint);
    assert.equal(resolved!.body.alert.startsAt, firing!.body.alert.startsAt);
    assert.equal(resolved!.body.alert.endsAt, resolvedAt[survivors.indexOf(next)], "the resolution says when the new leader saw the condition end, not when it took over");
    await sleep(10 * INTERVAL_MS);
    assert.deepEqual(
      rx.of('service_instances_low').map((r) => `${r.body.status} from ${r.body.sender}`),
      [`firing from ${leader.instanceId}`, `resolved from ${next.instanceId}`],
      'one firing, one resolution',
    );
  });
});

test('alerts (redis): with redis stopped every replica notifies its own store_unreachable once, and its resolution once redis is back', { timeout: 90_000 }, async (t) => {
  let replicas: Replica[] = [];
  let receiver: Receiver | undefined;
  await explained(() => replicas, () => receiver, async () => {
    const env = await cluster(t, REDIS, 'alerts-redis', { forMs: REDIS_FOR_MS });
    if (env === null) return;
    ({ replicas, receiver } = env);
    await leaderOf(replicas, 10_000);
    // Signed in (tokens cached) while the store is up, and a quiet start: no replica has a store_unreachable under way.
    await waitFor(
      async () => ((await Promise.all(replicas.map(alertsOf))).every((v) => !v.alerts.some((a) => a.type === 'store_unreachable' && a.state !== 'resolved')) ? true : undefined),
      'no store_unreachable pending or firing before the stop',
      10_000,
    );
    // Only what arrives from here on is about the outage (a blip before it, notified and resolved, is no concern here).
    const rx = env.receiver;
    const from = rx.received.length;

    const stoppedAt = Date.now();
    await env.running.stop();
    const firings = await rx.arrival('store_unreachable', 'firing', replicas.length, 10_000 + REDIS_FOR_MS, from);
    for (const replica of replicas) {
      const own = firings.filter((r) => r.body.alert.replica === replica.instanceId);
      assert.equal(own.length, 1, `${replica.instanceId}: one firing`);
      const [f] = own;
      assertWellFormed(f!);
      assert.equal(f!.body.sender, replica.instanceId, 'a replica alert is sent by the replica it is about');
      assert.deepEqual(
        { scope: f!.body.alert.scope, severity: f!.body.alert.severity, service: f!.body.alert.service, instanceId: f!.body.alert.instanceId, endsAt: f!.body.alert.endsAt },
        { scope: 'replica', severity: 'critical', service: null, instanceId: null, endsAt: null },
      );
      assert.ok(f!.at - stoppedAt >= REDIS_FOR_MS - 5, `${replica.instanceId} fired ${f!.at - stoppedAt} ms after the stop, before alert-for-ms`);
    }
    assert.equal(new Set(firings.map((r) => r.body.alert.fingerprint)).size, replicas.length, 'each replica has its own fingerprint');

    // Each replica shows its own store_unreachable (and only its own), notified by itself.
    for (const replica of replicas) {
      const view = await alertsOf(replica);
      assert.deepEqual(new Set(view.alerts.filter((a) => a.type === 'store_unreachable').map((a) => a.replica)), new Set([replica.instanceId]), `${replica.instanceId} shows only its own`);
      const mine = view.alerts.filter((a) => a.type === 'store_unreachable' && a.state !== 'resolved');
      assert.equal(mine.length, 1, `${replica.instanceId} shows one store_unreachable under way`);
      assert.equal(mine[0]!.state, 'firing');
      assert.equal(mine[0]!.fingerprint, firings.find((r) => r.body.alert.replica === replica.instanceId)!.body.alert.fingerprint);
      assert.deepEqual(mine[0]!.notifications.map((n) => `${n.status} by ${n.sentBy}: ${n.deliveries.map((d) => d.state).join(',')}`), [`firing by ${replica.instanceId}: delivered`]);
    }
    // Down a while longer: no repeats.
    await sleep(10 * INTERVAL_MS);
    assert.equal(rx.of('store_unreachable', 'firing', from).length, replicas.length, 'no second firing while redis stays down');

    await env.running.restart();
    const resolutions = await rx.arrival('store_unreachable', 'resolved', replicas.length, 15_000, from);
    // A few evaluations more, in case anything flaps after the reconnection.
    await sleep(10 * INTERVAL_MS + RENEW_MS);
    for (const replica of replicas) {
      const fingerprint = firings.find((r) => r.body.alert.replica === replica.instanceId)!.body.alert.fingerprint;
      const all = rx.received.slice(from).filter((r) => r.body.alert?.fingerprint === fingerprint);
      assert.deepEqual(all.map((r) => `${r.body.status} from ${r.body.sender}`), [`firing from ${replica.instanceId}`, `resolved from ${replica.instanceId}`], `${replica.instanceId}: one firing, then one resolution`);
      const [, r] = all;
      assertWellFormed(r!);
      assert.equal(r!.body.alert.rule, 'store_unreachable');
      assert.notEqual(r!.body.alert.endsAt, null);
      const view = await alertsOf(replica);
      const mine = view.alerts.filter((a) => a.type === 'store_unreachable');
      assert.ok(mine.every((a) => a.state === 'resolved'), `${replica.instanceId}: nothing about the store under way`);
      // Resolved alerts are listed newest first: the outage's.
      assert.deepEqual(mine[0]!.notifications.map((n) => `${n.status} by ${n.sentBy}`), [`firing by ${replica.instanceId}`, `resolved by ${replica.instanceId}`]);
    }
    assert.equal(resolutions.length, replicas.length);
    assert.equal(rx.of('store_unreachable', undefined, from).length, 2 * replicas.length, 'nothing else about the store');
    // The other replica alerts the outage brings (no_leader, leadership_lost) are allowed; all are well-formed and sent by their subject.
    for (const r of rx.received) {
      assertWellFormed(r);
      if (r.body.alert.scope === 'replica') assert.equal(r.body.sender, r.body.alert.replica, `${r.body.alert.rule} sent by its replica`);
    }
  });
});
