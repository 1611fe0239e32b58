import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/index.ts';
import { closedPort, startUpstream, type Upstream } from '../../src/health/test-upstreams.ts';
import { startTestMaxine, type TestMaxine } from '../helpers/maxine.ts';
import { parseScrape, valueOf, type Scrape } from '../helpers/prometheus.ts';
import { startWebhookReceiver, type WebhookReceiver, type WebhookRequest } from '../helpers/webhook-receiver.ts';

/**
 * Alerting end to end: real servers evaluate the rules, real webhook
 * receivers on loopback get (and sometimes refuse) the notifications, and
 * /api/actuator/alerts and /metrics say what happened.
 */

const REGISTER = '/api/maxine/serviceops/register';
const ALERTS = '/api/actuator/alerts';
const ANONYMOUS = { authorization: '' };
const SECRET = '0123456789abcdef-pager-secret';
/** Every evaluation setting these servers share: short enough that the file runs in seconds. */
const FAST = { alertEvaluationIntervalMs: 100, alertForMs: 300 } as const;
/** A health check that decides within a few hundred milliseconds. */
const QUICK_CHECK = { type: 'http', path: '/hc', intervalMs: 150, timeoutMs: 100, fall: 2, rise: 2, jitterMs: 0 } as const;

// --- a webhook receiver -------------------------------------------------------

/** Bodies are typed loosely: the tests read whatever fields they check. */
type Received = WebhookRequest<any>;
type Receiver = WebhookReceiver<any>;

/** A receiver at http://127.0.0.1:<port> answering `script` first, then `fallback`. */
function startReceiver(fallback = 200, script: number[] = []): Promise<Receiver> {
  return startWebhookReceiver<any>({ fallback, script });
}

/** The notification bodies a receiver got, optionally only those matching `where`. */
function bodies(receiver: Receiver, where: (body: any) => boolean = () => true): any[] {
  return receiver.requests.map((r) => r.json).filter((body) => body !== undefined && where(body));
}

function about(rule: string, service: string | null = null, status?: 'firing' | 'resolved') {
  return (body: any) => body.alert?.rule === rule && (service === null || body.alert.service === service) && (status === undefined || body.status === status);
}

// --- polling ------------------------------------------------------------------------

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns something other than undefined/false; fails after `timeoutMs`. */
async function waitFor<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

// --- Maxine helpers -------------------------------------------------------------

async function alertsOf(maxine: TestMaxine, query = '', headers?: Record<string, string>): Promise<any> {
  const res = await maxine.call('GET', `${ALERTS}${query}`, undefined, headers);
  assert.equal(res.status, 200, res.text);
  return res.json;
}

async function alertAbout(maxine: TestMaxine, rule: string, service: string | null): Promise<any | undefined> {
  const { alerts } = await alertsOf(maxine);
  return alerts.find((a: any) => a.type === rule && (service === null || a.service === service));
}

async function scrape(maxine: TestMaxine): Promise<Scrape> {
  const res = await maxine.call('GET', '/metrics');
  assert.equal(res.status, 200, res.text);
  return parseScrape(res.text);
}

async function instanceHealth(maxine: TestMaxine, service: string, nodeName: string): Promise<string | undefined> {
  const res = await maxine.call('GET', `/api/maxine/serviceops/servers?format=v2&serviceName=${service}`);
  const instances: any[] = res.json?.services?.[0]?.instances ?? [];
  return instances.find((i) => i.nodeName === nodeName)?.health;
}

function register(maxine: TestMaxine, serviceName: string, nodeName: string, extra: Record<string, unknown> = {}) {
  return maxine.call('POST', REGISTER, { hostName: '127.0.0.1', nodeName, serviceName, port: 9000, timeOut: 600, ...extra });
}

function webhooks(...list: { name: string; url: string; severities?: string[]; services?: string[]; rules?: string[] }[]): string {
  return JSON.stringify(list);
}

function assertSigned(request: Received, secret: string): void {
  const timestamp = request.headers['x-maxine-timestamp'];
  const signature = request.headers['x-maxine-signature'];
  assert.equal(typeof timestamp, 'string');
  assert.match(timestamp as string, /^\d+$/);
  assert.ok(Math.abs(Number(timestamp) - Date.now() / 1000) < 30, `timestamp ${timestamp} is not now`);
  const expected = `sha256=${createHmac('sha256', secret).update(`${timestamp}.${request.raw}`).digest('hex')}`;
  assert.equal(typeof signature, 'string', 'a webhook with a secret gets a signature');
  assert.equal(signature, expected);
  assert.ok(timingSafeEqual(Buffer.from(signature as string), Buffer.from(expected)));
  // The signature covers the body: another body (or timestamp) would not match.
  assert.notEqual(signature, `sha256=${createHmac('sha256', secret).update(`${timestamp}.${request.raw} `).digest('hex')}`);
  assert.notEqual(signature, `sha256=${createHmac('sha256', secret).update(`${Number(timestamp) + 1}.${request.raw}`).digest('hex')}`);
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

// --- 1. service_instances_low ------------------------------------------------------------

describe('service_instances_low: fires after alertForMs, resolves, and is signed', () => {
  let maxine: TestMaxine;
  let receiver: Receiver;
  before(async () => {
    receiver = await startReceiver();
    maxine = await startTestMaxine({
      ...FAST,
      instanceId: 'alerts-low',
      alertErrorRatePercent: 0,
      alertMinInstancesByService: 'orders=2,payments=1',
      // The path and query of a webhook URL often hold a token: never shown back.
      alertWebhooks: webhooks({ name: 'pager', url: `${receiver.url}/hooks/t0ken-in-path?key=s3cret-query` }),
      alertWebhookSecrets: `pager=${SECRET}`,
    });
  });
  after(async () => {
    await maxine?.stop();
    await receiver?.close();
  });

  test('one instance of two: exactly one firing notification, signed, after alertForMs', async () => {
    assert.equal((await register(maxine, 'orders', 'o-1')).status, 200);
    const firing = await waitFor(() => bodies(receiver, about('service_instances_low', 'orders', 'firing'))[0], 'the orders alert to be notified');
    // Several evaluations later still one: an alert is notified once, not once per evaluation.
    await sleep(5 * FAST.alertEvaluationIntervalMs);
    assert.equal(bodies(receiver, about('service_instances_low', 'orders')).length, 1);

    assert.deepEqual(Object.keys(firing).sort(), ['alert', 'sender', 'sentAt', 'status', 'version']);
    assert.equal(firing.version, 1);
    assert.equal(firing.status, 'firing');
    assert.equal(firing.sender, 'alerts-low');
    assert.match(firing.sentAt, ISO);
    const { alert } = firing;
    assert.equal(alert.rule, 'service_instances_low');
    assert.equal(alert.severity, 'critical');
    assert.equal(alert.scope, 'cluster');
    assert.equal(alert.service, 'orders');
    assert.equal(alert.instanceId, null);
    assert.equal(alert.replica, null);
    assert.match(alert.fingerprint, /^[0-9a-f]{24}$/);
    assert.match(alert.startsAt, ISO);
    assert.equal(alert.endsAt, null);
    assert.equal(alert.details.threshold, 2);
    assert.match(alert.summary, /^orders has \d eligible instances? \(threshold 2; \d registered\)$/);

    const [request] = receiver.requests.filter((r) => r.json?.alert?.fingerprint === alert.fingerprint);
    assert.equal(request!.method, 'POST');
    assert.equal(request!.path, '/hooks/t0ken-in-path?key=s3cret-query', 'the whole URL is used to send');
    assert.equal(request!.headers['content-type'], 'application/json');
    assert.match(request!.headers['user-agent'] ?? '', /^maxine\//);
    assert.equal(request!.headers['x-maxine-event'], 'firing');
    assert.match(request!.headers['x-maxine-delivery'] as string, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assertSigned(request!, SECRET);

    // It waited alertForMs after the condition was first seen.
    const listed = await alertAbout(maxine, 'service_instances_low', 'orders');
    assert.equal(listed.state, 'firing');
    assert.equal(listed.fingerprint, alert.fingerprint);
    assert.equal(listed.firedAt, alert.startsAt);
    assert.ok(Date.parse(listed.firedAt) - Date.parse(listed.pendingSince) >= FAST.alertForMs, `${listed.pendingSince} -> ${listed.firedAt}`);
    // The details follow the catalog: one instance is registered now.
    assert.deepEqual(listed.details, { eligible: 1, threshold: 2, registered: 1 });
    assert.equal(listed.summary, 'orders has 1 eligible instance (threshold 2; 1 registered)');
  });

  test('a service named in alertMinInstancesByService fires with no instance at all', async () => {
    const payments = await waitFor(() => bodies(receiver, about('service_instances_low', 'payments', 'firing'))[0], 'the payments alert');
    assert.equal(payments.alert.severity, 'critical');
    assert.deepEqual(payments.alert.details, { eligible: 0, threshold: 1, registered: 0 });
    assert.notEqual(payments.alert.fingerprint, bodies(receiver, about('service_instances_low', 'orders'))[0].alert.fingerprint);
    const listed = await alertAbout(maxine, 'service_instances_low', 'payments');
    assert.equal(listed.state, 'firing');
    assert.equal(listed.summary, 'payments has 0 eligible instances (threshold 1; 0 registered)');
  });

  test('a second instance resolves it: exactly one resolved notification with the same fingerprint', async () => {
    const firing = bodies(receiver, about('service_instances_low', 'orders', 'firing'))[0];
    assert.equal((await register(maxine, 'orders', 'o-2')).status, 200);
    const resolved = await waitFor(() => bodies(receiver, about('service_instances_low', 'orders', 'resolved'))[0], 'the resolution');
    await sleep(5 * FAST.alertEvaluationIntervalMs);
    assert.equal(bodies(receiver, about('service_instances_low', 'orders', 'resolved')).length, 1);
    assert.equal(bodies(receiver, about('service_instances_low', 'orders', 'firing')).length, 1, 'no second firing');

    assert.equal(resolved.version, 1);
    assert.equal(resolved.sender, 'alerts-low');
    assert.equal(resolved.alert.fingerprint, firing.alert.fingerprint);
    assert.equal(resolved.alert.startsAt, firing.alert.startsAt);
    assert.match(resolved.alert.endsAt, ISO);
    assert.ok(Date.parse(resolved.alert.endsAt) >= Date.parse(resolved.alert.startsAt));
    const request = receiver.requests.find((r) => r.json === resolved)!;
    assert.equal(request.headers['x-maxine-event'], 'resolved');
    assertSigned(request, SECRET);
    const firingRequest = receiver.requests.find((r) => r.json === firing)!;
    assert.notEqual(request.headers['x-maxine-delivery'], firingRequest.headers['x-maxine-delivery'], 'a new notification is a new delivery');
  });

  test('/api/actuator/alerts shows the alert resolved with both notifications delivered, and the webhook by origin only', async () => {
    const listed = await waitFor(async () => {
      const alert = await alertAbout(maxine, 'service_instances_low', 'orders');
      const settled = alert?.notifications.length === 2 && alert.notifications.every((n: any) => n.deliveries.every((d: any) => d.state === 'delivered'));
      return settled ? alert : undefined;
    }, 'both notifications to show as delivered');
    assert.equal(listed.state, 'resolved');
    assert.match(listed.resolvedAt, ISO);
    assert.equal(listed.severity, 'critical');
    assert.equal(listed.scope, 'cluster');
    assert.deepEqual(
      listed.notifications.map((n: any) => n.status),
      ['firing', 'resolved'],
    );
    for (const notification of listed.notifications) {
      assert.equal(notification.sentBy, 'alerts-low');
      assert.match(notification.sentAt, ISO);
      assert.equal(notification.deliveries.length, 1);
      const [delivery] = notification.deliveries;
      assert.equal(delivery.webhook, 'pager');
      assert.equal(delivery.state, 'delivered');
      assert.equal(delivery.attempts, 1);
      assert.equal(delivery.statusCode, 200);
      assert.equal(delivery.error, null);
      assert.match(delivery.lastAttemptAt, ISO);
      assert.equal(delivery.nextAttemptAt, null);
    }

    const json = await alertsOf(maxine);
    assert.equal(json.notifiesClusterAlerts, true, 'a single replica leads');
    // Active first (payments), then the recently resolved.
    assert.deepEqual(
      json.alerts.map((a: any) => [a.service, a.state]),
      [
        ['payments', 'firing'],
        ['orders', 'resolved'],
      ],
    );
    assert.deepEqual(json.webhooks, [
      { name: 'pager', target: receiver.url, severities: [], services: [], rules: [], signed: true, delivered: 3, failed: 0 },
    ]);
    const text = (await maxine.call('GET', ALERTS)).text;
    for (const leak of ['t0ken-in-path', 's3cret-query', SECRET]) assert.ok(!text.includes(leak), `${leak} shown`);

    // Three notifications in all: two firings and one resolution.
    assert.equal(receiver.requests.length, 3);
  });
});

// --- 2 and 6. instance_evicted, and the route ----------------------------------------------

describe('a restart neither repeats a firing nor loses a resolution', () => {
  let receiver: Receiver;
  let dataDir: string;
  let maxine: TestMaxine | undefined;
  before(async () => {
    receiver = await startReceiver();
    dataDir = mkdtempSync(join(tmpdir(), 'maxine-alerts-restart-'));
  });
  after(async () => {
    await maxine?.stop();
    await receiver?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const start = (thresholds: string) =>
    startTestMaxine(
      {
        ...FAST,
        instanceId: 'alerts-restart',
        alertErrorRatePercent: 0,
        alertMinInstances: 0,
        alertMinInstancesByService: thresholds,
        alertWebhooks: webhooks({ name: 'pager', url: `${receiver.url}/hook` }),
      },
      dataDir,
    );

  test('the record of a notified firing survives a restart of the local store; a threshold removed meanwhile resolves at once', async () => {
    maxine = await start('orders=1,billing=1');
    for (const service of ['orders', 'billing']) {
      await waitFor(() => bodies(receiver, about('service_instances_low', service, 'firing'))[0], `the ${service} alert`);
      // The record is written once every delivery has ended.
      await waitFor(async () => (await alertAbout(maxine!, 'service_instances_low', service))?.notifications[0]?.deliveries[0]?.state === 'delivered', `${service}'s delivery`);
    }
    await sleep(3 * FAST.alertEvaluationIntervalMs);
    await maxine.stop();
    maxine = undefined;

    // billing no longer has a threshold: its condition is gone, its record is not.
    maxine = await start('orders=1');
    const resolved = await waitFor(() => bodies(receiver, about('service_instances_low', 'billing', 'resolved'))[0], 'the billing resolution');
    assert.equal(resolved.sender, 'alerts-restart');
    // orders still holds: it fires again at once on the restarted replica, without a second notification.
    const orders = await waitFor(async () => {
      const listed = await alertAbout(maxine!, 'service_instances_low', 'orders');
      return listed?.state === 'firing' ? listed : undefined;
    }, 'orders firing after the restart');
    assert.ok(Date.parse(orders.firedAt) - Date.parse(orders.pendingSince) < FAST.alertForMs, 'a recorded alert does not wait alertForMs again');
    await sleep(FAST.alertForMs + 5 * FAST.alertEvaluationIntervalMs);
    assert.equal(bodies(receiver, about('service_instances_low', 'orders', 'firing')).length, 1, 'no second firing after the restart');
    assert.equal(bodies(receiver, about('service_instances_low', 'billing')).length, 2, 'billing: one firing, one resolution');

    assert.equal((await register(maxine, 'orders', 'o-1')).status, 200);
    await waitFor(() => bodies(receiver, about('service_instances_low', 'orders', 'resolved'))[0], 'the orders resolution');
    await sleep(5 * FAST.alertEvaluationIntervalMs);
    assert.equal(bodies(receiver, about('service_instances_low', 'orders', 'resolved')).length, 1);
  });
});

describe('instance_evicted and /api/actuator/alerts', () => {
  let maxine: TestMaxine;
  let receiver: Receiver;
  let flaky: Upstream;
  let dead: Upstream;
  let viewer: Record<string, string>;
  before(async () => {
    receiver = await startReceiver();
    flaky = await startUpstream({ kind: 'status', status: 200 });
    dead = await startUpstream({ kind: 'status', status: 500 });
    maxine = await startTestMaxine({
      alertEvaluationIntervalMs: 100,
      // Far longer than the test: whatever fires here fires at once, and `ghost` stays pending.
      alertForMs: 600_000,
      instanceId: 'alerts-evict',
      alertErrorRatePercent: 0,
      alertMinInstances: 0,
      alertMinInstancesByService: 'ghost=1',
      alertWebhooks: webhooks({ name: 'ops', url: `${receiver.url}/ops` }),
    });
    const created = await maxine.call('POST', '/api/maxine/users', { userName: 'vera', password: 'vera-password-1', role: 'viewer' });
    assert.equal(created.status, 201, created.text);
    const signin = await maxine.call('POST', '/api/maxine/signin', { userName: 'vera', password: 'vera-password-1' }, ANONYMOUS);
    assert.equal(signin.status, 200, signin.text);
    viewer = { authorization: `Bearer ${signin.json.accessToken}` };
  });
  after(async () => {
    await maxine?.stop();
    await receiver?.close();
    await flaky?.close();
    await dead?.close();
  });

  test('an instance its checks make critical fires instance_evicted at once, and resolves after it passes again', async () => {
    assert.equal((await register(maxine, 'inventory', 'inv-1', { port: flaky.port, check: QUICK_CHECK })).status, 200);
    await waitFor(() => (flaky.hits.get('/hc') ?? 0) >= 2, 'two passing probes');
    assert.equal(await instanceHealth(maxine, 'inventory', 'inv-1'), 'passing');
    assert.equal(await alertAbout(maxine, 'instance_evicted', 'inventory'), undefined);

    flaky.behaviour = { kind: 'status', status: 500 };
    await waitFor(async () => (await instanceHealth(maxine, 'inventory', 'inv-1')) === 'critical', 'the instance to become critical');
    const criticalAt = Date.now();
    const firing = await waitFor(() => bodies(receiver, about('instance_evicted', 'inventory', 'firing'))[0], 'the eviction to be notified');
    // alertForMs is ten minutes: an eviction does not wait for it.
    assert.ok(Date.now() - criticalAt < 2000, `notified ${Date.now() - criticalAt} ms after the instance became critical`);
    const { alert } = firing;
    assert.equal(alert.severity, 'warning');
    assert.equal(alert.scope, 'cluster');
    assert.equal(alert.service, 'inventory');
    assert.equal(typeof alert.instanceId, 'string');
    assert.ok(alert.instanceId.length > 0);
    assert.equal(alert.replica, null);
    assert.equal(alert.details.reason, 'HTTP 500');
    assert.match(alert.details.address, new RegExp(`127\\.0\\.0\\.1:${flaky.port}`));
    assert.match(alert.summary, /^inventory instance .+ failed its health checks \(HTTP 500\) and gets no traffic$/);
    assert.equal(firing.sender, 'alerts-evict');
    const request = receiver.requests.find((r) => r.json === firing)!;
    assert.equal(request.path, '/ops');
    assert.equal(request.headers['x-maxine-signature'], undefined, 'a webhook without a secret is not signed');
    assert.match(request.headers['x-maxine-timestamp'] as string, /^\d+$/);

    const listed = await alertAbout(maxine, 'instance_evicted', 'inventory');
    assert.equal(listed.state, 'firing');
    assert.equal(listed.instanceId, alert.instanceId);
    assert.equal(listed.fingerprint, alert.fingerprint);

    flaky.behaviour = { kind: 'status', status: 200 };
    await waitFor(async () => (await instanceHealth(maxine, 'inventory', 'inv-1')) === 'passing', 'the instance to pass its rise threshold');
    const resolved = await waitFor(() => bodies(receiver, about('instance_evicted', 'inventory', 'resolved'))[0], 'the resolution');
    assert.equal(resolved.alert.fingerprint, alert.fingerprint);
    assert.match(resolved.alert.endsAt, ISO);
    await sleep(3 * 100);
    assert.equal(bodies(receiver, about('instance_evicted')).length, 2, 'one firing, one resolution');
    const after_ = await alertAbout(maxine, 'instance_evicted', 'inventory');
    assert.equal(after_.state, 'resolved');
    // Nothing about the pending ghost was sent.
    assert.equal(bodies(receiver, about('service_instances_low')).length, 0);
  });

  test('needs ops:read: anonymous callers get 401, a viewer 200', async () => {
    for (const headers of [ANONYMOUS, { authorization: 'Bearer not-a-token' }]) {
      const res = await maxine.call('GET', ALERTS, undefined, headers);
      assert.equal(res.status, 401, res.text);
      assert.equal(typeof res.json?.message, 'string');
      assert.equal(res.json.alerts, undefined);
    }
    const json = await alertsOf(maxine, '', viewer);
    assert.ok(Array.isArray(json.alerts));
    assert.ok(json.alerts.length >= 2);
    assert.deepEqual(json.webhooks.map((w: any) => [w.name, w.target, w.signed]), [['ops', receiver.url, false]]);
  });

  test('state filters and limit', async () => {
    // One more eviction that stays: a firing alert next to the pending ghost and the resolved inv-1.
    assert.equal((await register(maxine, 'inventory', 'inv-dead', { port: dead.port, check: QUICK_CHECK })).status, 200);
    await waitFor(async () => (await alertsOf(maxine, '?state=firing')).alerts.length === 1, 'the second eviction to fire');

    const byState = async (query: string) => (await alertsOf(maxine, query, viewer)).alerts.map((a: any) => `${a.state}:${a.type}:${a.service}`);
    assert.deepEqual(await byState('?state=firing'), ['firing:instance_evicted:inventory']);
    assert.deepEqual(await byState('?state=pending'), ['pending:service_instances_low:ghost']);
    assert.deepEqual(await byState('?state=resolved'), ['resolved:instance_evicted:inventory']);
    const all = ['firing:instance_evicted:inventory', 'pending:service_instances_low:ghost', 'resolved:instance_evicted:inventory'];
    assert.deepEqual(await byState(''), all, 'firing, then pending, then resolved');
    assert.deepEqual(await byState('?state=all'), all);
    assert.deepEqual(await byState('?limit=1'), all.slice(0, 1));
    assert.deepEqual(await byState('?limit=2&state=all'), all.slice(0, 2));
    assert.deepEqual(await byState('?limit=999999'), all);
    assert.deepEqual(await byState('?state=resolved&limit=1'), ['resolved:instance_evicted:inventory']);

    const pending = (await alertsOf(maxine, '?state=pending')).alerts[0];
    assert.equal(pending.firedAt, null);
    assert.equal(pending.resolvedAt, null);
    assert.deepEqual(pending.notifications, []);
    assert.deepEqual(pending.details, { eligible: 0, threshold: 1, registered: 0 });
    const firing = (await alertsOf(maxine, '?state=firing')).alerts[0];
    assert.notEqual(firing.instanceId, (await alertsOf(maxine, '?state=resolved')).alerts[0].instanceId);
    await waitFor(async () => (await alertsOf(maxine, '?state=firing')).alerts[0].notifications[0]?.deliveries[0]?.state === 'delivered', 'the second eviction to be delivered');
  });

  test('bad query input answers 400 with a JSON error, never 500', async () => {
    const bad = [
      '?state=bogus',
      '?state=FIRING',
      '?state=',
      '?limit=0',
      '?limit=abc',
      '?limit=-1',
      '?limit=1.5',
      '?limit=',
      '?limit=9999999',
      '?limit=1e3',
      '?limit=%00',
      '?unknown=1',
      '?state=firing&extra=x',
      '?__proto__=1',
      '?state=firing&state=pending',
    ];
    for (const query of bad) {
      for (const headers of [undefined, viewer]) {
        const res = await maxine.call('GET', `${ALERTS}${query}`, undefined, headers);
        assert.equal(res.status, 400, `${query}: ${res.status} ${res.text}`);
        assert.equal(typeof res.json?.message, 'string', query);
        assert.equal(res.json.code, 'VALIDATION_FAILED', query);
      }
    }
  });

  test('no spelling of the path gets anonymous callers past the check', async () => {
    const spellings = [
      ALERTS,
      '/API/ACTUATOR/ALERTS',
      '/Api/actuator/alerts',
      '/api/ACTUATOR/alerts',
      '/api/actuator/Alerts',
      '/api/actuator/alerts/',
      '/api/actuator/alerts//',
      '//api/actuator/alerts',
      '/./api/actuator/alerts',
      '/api/./actuator/alerts',
      '/api/actuator/./alerts',
      '/api/actuator/../actuator/alerts',
      '/api/x/../actuator/alerts',
      '/api/actuator/%2e%2e/actuator/alerts',
      '/api/actuator/%2E%2E/actuator/alerts',
      '/api/actuator/%2e/alerts',
      '/api/actuator%2falerts',
      '/api/actuator/%61lerts',
      '/%61pi/actuator/alerts',
      '/api/actuator/alerts%2f',
      '/api/actuator/alerts%00',
      '/api/actuator/alerts;x=1',
      '/api/actuator/alerts?state=firing',
      '/api/actuator/alerts#x',
      '/api/actuator/alerts%3Fstate=all',
    ];
    const failures: string[] = [];
    let routed = 0;
    for (const path of spellings) {
      for (const method of ['GET', 'HEAD']) {
        const res = await maxine.call(method, path, undefined, ANONYMOUS);
        if (![400, 401, 403, 404, 405].includes(res.status)) failures.push(`${method} ${path}: ${res.status}`);
        // A spelling the router takes for the route (a viewer gets in) is refused for want of credentials, not missed.
        const asViewer = await maxine.call(method, path, undefined, viewer);
        if (asViewer.status === 200 && res.status !== 401) failures.push(`${method} ${path}: ${res.status} anonymous, 200 as a viewer`);
        if (asViewer.status === 200) routed++;
        if (res.text.includes('"alerts"') || res.text.includes('inventory') || res.text.includes(receiver.url)) failures.push(`${method} ${path}: data in ${res.text.slice(0, 120)}`);
      }
    }
    assert.deepEqual(failures, []);
    assert.ok(routed >= 4, `only ${routed} spellings reached the route`);
  });
});

// --- 3. routing ----------------------------------------------------------------------------

describe('routing by severity, service and rule', () => {
  let maxine: TestMaxine;
  let critical: Receiver;
  let evictions: Receiver;
  let everything: Receiver;
  let dead: Upstream;
  before(async () => {
    [critical, evictions, everything] = await Promise.all([startReceiver(), startReceiver(), startReceiver()]);
    dead = await startUpstream({ kind: 'status', status: 500 });
    maxine = await startTestMaxine({
      ...FAST,
      instanceId: 'alerts-routing',
      alertMinInstances: 0,
      alertMinInstancesByService: 'orders-api=1,billing=1',
      alertErrorRatePercent: 50,
      alertErrorRateMinRequests: 5,
      alertErrorRateWindowMs: 5000,
      alertWebhooks: webhooks(
        { name: 'orders-critical', url: `${critical.url}/critical`, severities: ['critical'], services: ['orders*'] },
        { name: 'evictions', url: `${evictions.url}/evictions`, rules: ['instance_evicted'] },
        { name: 'everything', url: `${everything.url}/all` },
      ),
    });
  });
  after(async () => {
    await maxine?.stop();
    await Promise.all([critical?.close(), evictions?.close(), everything?.close(), dead?.close()]);
  });

  test('each webhook receives only what matches its filters', async () => {
    // Warnings about services on both sides of the orders* pattern.
    assert.equal((await register(maxine, 'orders-web', 'ow-1', { port: dead.port, check: QUICK_CHECK })).status, 200);
    assert.equal((await register(maxine, 'billing-worker', 'bw-1', { port: dead.port, check: QUICK_CHECK })).status, 200);
    // A replica alert: about no service, so only a webhook without a service filter may get it.
    // Plenty of errors, so the 2xx answers of the polling below cannot bring the rate under 50 % (and resolve it).
    for (let i = 0; i < 40; i++) assert.equal((await maxine.call('GET', '/api/maxine/serviceops/discover?serviceName=nobody&format=json')).status, 503);

    const expected = [
      'firing:error_rate_high:null',
      'firing:instance_evicted:billing-worker',
      'firing:instance_evicted:orders-web',
      'firing:service_instances_low:billing',
      'firing:service_instances_low:orders-api',
    ];
    const seen = (r: Receiver, where?: (body: any) => boolean) => bodies(r, where).map((b) => `${b.status}:${b.alert.rule}:${b.alert.service}`).sort();
    await waitFor(() => seen(everything).length >= expected.length, 'every alert at the catch-all webhook');
    // Deliveries to all matching webhooks start together; let every one finish.
    await waitFor(async () => {
      const { alerts } = await alertsOf(maxine);
      return alerts.length === 5 && alerts.every((a: any) => a.notifications.every((n: any) => n.deliveries.every((d: any) => d.state === 'delivered')));
    }, 'every delivery to settle');
    await sleep(3 * FAST.alertEvaluationIntervalMs);

    assert.deepEqual(seen(everything), expected);
    assert.deepEqual(seen(critical), ['firing:service_instances_low:orders-api']);
    assert.deepEqual(seen(evictions), ['firing:instance_evicted:billing-worker', 'firing:instance_evicted:orders-web']);
    assert.ok(critical.requests.every((r) => r.path === '/critical'));
    assert.ok(evictions.requests.every((r) => r.path === '/evictions'));

    const { alerts, webhooks: listed } = await alertsOf(maxine);
    const routedTo = (rule: string, service: string | null) =>
      alerts
        .find((a: any) => a.type === rule && a.service === service)
        .notifications.flatMap((n: any) => n.deliveries.map((d: any) => d.webhook))
        .sort();
    assert.deepEqual(routedTo('service_instances_low', 'orders-api'), ['everything', 'orders-critical']);
    assert.deepEqual(routedTo('service_instances_low', 'billing'), ['everything']);
    assert.deepEqual(routedTo('instance_evicted', 'orders-web'), ['everything', 'evictions']);
    assert.deepEqual(routedTo('instance_evicted', 'billing-worker'), ['everything', 'evictions']);
    assert.deepEqual(routedTo('error_rate_high', null), ['everything']);
    assert.deepEqual(
      listed.map((w: any) => [w.name, w.severities, w.services, w.rules, w.delivered, w.failed]),
      [
        ['orders-critical', ['critical'], ['orders*'], [], 1, 0],
        ['evictions', [], [], ['instance_evicted'], 2, 0],
        ['everything', [], [], [], 5, 0],
      ],
    );
  });
});

// --- 4. retries and delivery status ------------------------------------------------------------

describe('retries and delivery status', () => {
  let maxine: TestMaxine;
  let flaky: Receiver;
  let strict: Receiver;
  let gonePort: number;
  before(async () => {
    flaky = await startReceiver(200, [500, 500]);
    strict = await startReceiver(400);
    gonePort = await closedPort();
    maxine = await startTestMaxine({
      alertEvaluationIntervalMs: 100,
      alertForMs: 200,
      instanceId: 'alerts-retry',
      alertMinInstances: 0,
      alertMinInstancesByService: 'orders=1',
      alertErrorRatePercent: 0,
      alertWebhookBackoffMs: 50,
      alertWebhookRetries: 2,
      alertWebhooks: webhooks(
        { name: 'flaky', url: `${flaky.url}/in` },
        { name: 'strict', url: `${strict.url}/in` },
        // Nothing listens: every attempt fails to connect. Its path holds a token that must not show in errors.
        { name: 'gone', url: `http://127.0.0.1:${gonePort}/t0ken-in-path` },
      ),
      alertWebhookSecrets: `flaky=${SECRET}`,
    });
  });
  after(async () => {
    await maxine?.stop();
    await Promise.all([flaky?.close(), strict?.close()]);
  });

  test('5xx answers are retried with backoff under one delivery id; a 4xx is final', async () => {
    await waitFor(() => flaky.requests.length >= 3, 'three attempts at the flaky receiver');
    const deliveries = await waitFor(async () => {
      const alert = await alertAbout(maxine, 'service_instances_low', 'orders');
      const list: any[] = alert?.notifications[0]?.deliveries ?? [];
      return list.length === 3 && list.every((d) => d.state === 'delivered' || d.state === 'failed') ? list : undefined;
    }, 'every delivery to end');
    // No fourth attempt, no retry of the 400.
    await sleep(400);
    assert.deepEqual(
      flaky.requests.map((r) => r.answered),
      [500, 500, 200],
    );
    assert.equal(strict.requests.length, 1);

    const ids = new Set(flaky.requests.map((r) => r.headers['x-maxine-delivery']));
    assert.equal(ids.size, 1, 'one delivery id across attempts');
    assert.match([...ids][0] as string, /^[0-9a-f-]{36}$/);
    assert.equal(new Set(flaky.requests.map((r) => r.raw)).size, 1, 'the same body every attempt');
    for (const request of flaky.requests) {
      assert.equal(request.headers['x-maxine-event'], 'firing');
      assertSigned(request, SECRET);
    }
    // Backoff 50 ms ±20 %, then twice that.
    const [a, b, c] = flaky.requests.map((r) => r.at);
    assert.ok(b! - a! >= 35, `first retry after ${b! - a!} ms`);
    assert.ok(c! - b! >= 75, `second retry after ${c! - b!} ms`);
    assert.notEqual(strict.requests[0]!.headers['x-maxine-delivery'], flaky.requests[0]!.headers['x-maxine-delivery'], 'each webhook its own delivery');
    assert.equal(strict.requests[0]!.headers['x-maxine-signature'], undefined);
    assert.equal(strict.requests[0]!.raw, flaky.requests[0]!.raw, 'one body for every webhook');

    const byName = Object.fromEntries(deliveries.map((d) => [d.webhook, d]));
    assert.equal(byName.flaky.state, 'delivered');
    assert.equal(byName.flaky.attempts, 3);
    assert.equal(byName.flaky.statusCode, 200);
    assert.equal(byName.flaky.error, null);
    assert.equal(byName.flaky.nextAttemptAt, null);
    assert.equal(byName.strict.state, 'failed');
    assert.equal(byName.strict.attempts, 1);
    assert.equal(byName.strict.statusCode, 400);
    assert.match(byName.strict.error, /400/);
    assert.equal(byName.strict.nextAttemptAt, null);
    // No answer at all: retried too, alertWebhookRetries (2) times after the first attempt, then failed.
    assert.equal(byName.gone.state, 'failed');
    assert.equal(byName.gone.attempts, 3);
    assert.equal(byName.gone.statusCode, null);
    assert.match(byName.gone.error, /ECONNREFUSED/);
    assert.ok(!JSON.stringify(await alertsOf(maxine)).includes('t0ken-in-path'), 'the URL path shows nowhere, errors included');

    const { webhooks: listed } = await alertsOf(maxine);
    assert.deepEqual(
      listed.map((w: any) => [w.name, w.target, w.signed, w.delivered, w.failed]),
      [
        ['flaky', flaky.url, true, 1, 0],
        ['strict', strict.url, false, 0, 1],
        ['gone', `http://127.0.0.1:${gonePort}`, false, 0, 1],
      ],
    );

    const scraped = await scrape(maxine);
    assert.equal(valueOf(scraped, 'maxine_alert_deliveries_total', { webhook: 'flaky', outcome: 'delivered' }), 1);
    assert.equal(valueOf(scraped, 'maxine_alert_deliveries_total', { webhook: 'flaky', outcome: 'failed' }), 0);
    assert.equal(valueOf(scraped, 'maxine_alert_deliveries_total', { webhook: 'strict', outcome: 'delivered' }), 0);
    assert.equal(valueOf(scraped, 'maxine_alert_deliveries_total', { webhook: 'strict', outcome: 'failed' }), 1);
    assert.equal(valueOf(scraped, 'maxine_alert_deliveries_total', { webhook: 'gone', outcome: 'failed' }), 1);
    assert.equal(valueOf(scraped, 'maxine_alert_deliveries_total', { outcome: 'delivered' }), 1);
    assert.equal(valueOf(scraped, 'maxine_alert_deliveries_total', { outcome: 'failed' }), 2);
    assert.equal(valueOf(scraped, 'maxine_alerts_total', { rule: 'service_instances_low', severity: 'critical' }), 1);
    assert.equal(valueOf(scraped, 'maxine_alerts_firing', { rule: 'service_instances_low', severity: 'critical' }), 1);
  });
});

// --- 5. error_rate_high ------------------------------------------------------------------------

describe('error_rate_high', () => {
  const REPLICA = 'replica-under-test';
  let maxine: TestMaxine;
  let receiver: Receiver;
  before(async () => {
    receiver = await startReceiver();
    maxine = await startTestMaxine({
      alertEvaluationIntervalMs: 100,
      alertForMs: 200,
      instanceId: REPLICA,
      alertMinInstances: 0,
      alertErrorRatePercent: 50,
      alertErrorRateMinRequests: 5,
      alertErrorRateWindowMs: 5000,
      alertWebhooks: webhooks({ name: 'ops', url: `${receiver.url}/ops` }),
      alertWebhookSecrets: `ops=${SECRET}`,
    });
  });
  after(async () => {
    await maxine?.stop();
    await receiver?.close();
  });

  test('a replica answering mostly 5xx fires a replica-scoped alert, and resolves once it answers well again', async () => {
    const first = await maxine.call('GET', '/api/maxine/serviceops/discover?serviceName=unregistered&format=json');
    assert.equal(first.status, 503, 'discovering an unregistered service is a 5xx');
    for (let i = 0; i < 11; i++) assert.equal((await maxine.call('GET', '/api/maxine/serviceops/discover?serviceName=unregistered&format=json')).status, 503);

    const firing = await waitFor(() => bodies(receiver, about('error_rate_high', null, 'firing'))[0], 'error_rate_high to be notified');
    // Scraped first: every request from here on dilutes the rate.
    const scraped = await scrape(maxine);
    assert.ok(valueOf(scraped, 'maxine_alerts_total', { rule: 'error_rate_high', severity: 'warning' }) >= 1);
    assert.equal(valueOf(scraped, 'maxine_alerts_firing', { rule: 'error_rate_high', severity: 'warning' }), 1);

    assert.equal(firing.sender, REPLICA);
    const { alert } = firing;
    assert.equal(alert.severity, 'warning');
    assert.equal(alert.scope, 'replica');
    assert.equal(alert.replica, REPLICA);
    assert.equal(alert.service, null);
    assert.equal(alert.instanceId, null);
    assert.equal(alert.details.thresholdPercent, 50);
    assert.ok(Number(alert.details.failed) >= 5);
    assert.ok(Number(alert.details.ratePercent) >= 50);
    assert.match(alert.summary, new RegExp(`^replica ${REPLICA} answered [\\d.]+% of \\d+ requests with a 5xx status \\(threshold 50%\\)$`));
    assertSigned(receiver.requests.find((r) => r.json === firing)!, SECRET);

    const listed = await waitFor(async () => {
      const found = await alertAbout(maxine, 'error_rate_high', null);
      return found?.notifications[0]?.deliveries[0]?.state === 'delivered' ? found : undefined;
    }, 'the notification to show as delivered');
    assert.equal(listed.scope, 'replica');
    assert.equal(listed.replica, REPLICA);
    assert.equal(listed.fingerprint, alert.fingerprint);
    assert.equal(listed.notifications[0].sentBy, REPLICA);
    assert.equal(listed.notifications[0].deliveries[0].webhook, 'ops');
    assert.equal(listed.notifications[0].deliveries[0].attempts, 1);

    // Enough good answers bring the rate under the threshold.
    for (let i = 0; i < 20; i++) assert.equal((await maxine.call('GET', '/api/maxine/serviceops/servers')).status, 200);
    const resolved = await waitFor(() => bodies(receiver, about('error_rate_high', null, 'resolved'))[0], 'the resolution');
    assert.equal(resolved.alert.fingerprint, alert.fingerprint);
    assert.match(resolved.alert.endsAt, ISO);
    const after_ = await scrape(maxine);
    assert.equal(valueOf(after_, 'maxine_alerts_firing', { rule: 'error_rate_high', severity: 'warning' }), 0);
    assert.equal(valueOf(after_, 'maxine_alert_deliveries_total', { webhook: 'ops', outcome: 'delivered' }), 2);
  });
});

// --- 7. startup -------------------------------------------------------------------------------

describe('alert settings are checked at startup', () => {
  const load = (flags: Record<string, unknown>) => loadConfig({ flags: { dataDir: '/tmp/maxine-never-used', ...flags }, env: {} });

  test('an invalid alertWebhooks value stops loadConfig with a message naming the setting', () => {
    const cases: [string, RegExp][] = [
      ['not json', /not valid JSON/],
      ['{"name":"x","url":"http://127.0.0.1:1"}', /MAXINE_ALERT_WEBHOOKS/],
      [webhooks({ name: 'ftp', url: 'ftp://127.0.0.1/in' }), /ftp: url must be an http/],
      [webhooks({ name: 'creds', url: 'http://user:hunter2-password@127.0.0.1/in' }), /creds: url must not hold a user or password/],
      [webhooks({ name: 'bad name!', url: 'http://127.0.0.1/in' }), /name must be/],
      [webhooks({ name: 'a', url: 'http://127.0.0.1/in', severities: ['page-me'] }), /a: severities must be a list of critical \/ warning/],
      [webhooks({ name: 'a', url: 'http://127.0.0.1/in', rules: ['disk_full'] }), /a: rules must be a list of/],
      [JSON.stringify([{ name: 'a', url: 'http://127.0.0.1/in', extra: 1 }]), /unknown field "extra"/],
      [webhooks({ name: 'a', url: 'http://127.0.0.1/1' }, { name: 'a', url: 'http://127.0.0.1/2' }), /two webhooks are called a/],
    ];
    for (const [value, detail] of cases) {
      assert.throws(
        () => load({ alertWebhooks: value }),
        (error: unknown) => {
          assert.ok(error instanceof ConfigError, String(error));
          assert.match(error.message, /--alert-webhooks \/ MAXINE_ALERT_WEBHOOKS/, value);
          assert.match(error.message, detail, value);
          assert.ok(!error.message.includes('hunter2-password'), 'a password in the URL is not echoed');
          return true;
        },
        value,
      );
    }
    // The same value through the environment names the variable it came from.
    assert.throws(() => loadConfig({ flags: { dataDir: '/tmp/maxine-never-used' }, env: { MAXINE_ALERT_WEBHOOKS: '[1]' } }), /MAXINE_ALERT_WEBHOOKS.*\[from MAXINE_ALERT_WEBHOOKS\]/);
  });

  test('a short webhook secret is refused without echoing it; a valid list loads', async () => {
    assert.throws(
      () => load({ alertWebhookSecrets: 'pager=short-s3cr' }),
      (error: unknown) => error instanceof ConfigError && /--alert-webhook-secrets/.test(error.message) && !error.message.includes('short-s3cr'),
    );
    const config = load({ alertWebhooks: webhooks({ name: 'pager', url: 'https://hooks.example.com/t0ken', severities: ['critical'] }), alertWebhookSecrets: `pager=${SECRET}` });
    assert.equal(config.alertWebhooks.length, 1);
    assert.equal(config.alertWebhooks[0]!.name, 'pager');
    assert.deepEqual(config.alertWebhooks[0]!.severities, ['critical']);
    assert.equal(config.alertWebhookSecrets.get('pager'), SECRET);
    // And startTestMaxine (loadConfig, then startMaxine) refuses to start.
    await assert.rejects(startTestMaxine({ alertWebhooks: 'not json' }, '/tmp/maxine-never-used'), /--alert-webhooks/);
  });
});
