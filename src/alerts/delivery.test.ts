import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, test } from 'node:test';
import { startWebhookReceiver } from '../../test/helpers/webhook-receiver.ts';
import { WebhookDispatcher, type DeliveryStatus, type DispatcherOptions } from './delivery.ts';
import { notificationBody, Webhook, type AlertPayload, type WebhookSpec } from './webhooks.ts';

/** A fixed clock: bodies, timestamps and signatures are known in advance. */
const NOW = Date.UTC(2024, 4, 1, 12, 0, 0, 750);
const NOW_SEC = Math.floor(NOW / 1000);

const ALERT: AlertPayload = {
  fingerprint: '65c4f9d3fad08843d79b366c',
  rule: 'service_instances_low',
  severity: 'critical',
  scope: 'cluster',
  service: 'orders',
  instanceId: null,
  replica: null,
  summary: 'orders has 0 eligible instances (threshold 2; 0 registered)',
  details: { eligible: 0, threshold: 2, registered: 0 },
  startsAt: '2024-05-01T11:59:00.000Z',
  endsAt: null,
};

interface Received {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** performance.now() when the body was complete. */
  readonly at: number;
  /** The watched delivery's state when the request arrived. */
  readonly stateSeen: string | undefined;
}

type Answer = (res: ServerResponse, n: number) => void;

interface Receiver {
  readonly url: string;
  readonly requests: Received[];
  /** The delivery whose state each request records. */
  watch: DeliveryStatus | undefined;
  close(): Promise<void>;
}

const receivers: Receiver[] = [];
/** Dispatchers not closed yet: a test that closes one itself goes through close(), and afterEach closes the rest. */
const dispatchers = new Set<WebhookDispatcher>();

async function close(d: WebhookDispatcher): Promise<void> {
  dispatchers.delete(d);
  await d.close();
}

afterEach(async () => {
  try {
    for (const d of [...dispatchers]) await close(d);
  } finally {
    for (const r of receivers.splice(0)) await r.close();
  }
});

/** A real HTTP receiver on 127.0.0.1; `answer` gets each request's response and its 0-based index. */
async function receiver(answer: Answer, path = '/hook'): Promise<Receiver> {
  const requests: Received[] = [];
  const hook = await startWebhookReceiver({
    path,
    respond: (res, request, n) => {
      requests.push({ method: request.method, url: request.path, headers: request.headers, body: request.raw, at: performance.now(), stateSeen: created.watch?.state });
      answer(res, n);
    },
  });
  const created: Receiver = { url: hook.url, requests, watch: undefined, close: () => hook.close() };
  receivers.push(created);
  return created;
}

function status(code: number, headers: Record<string, string> = {}): (res: ServerResponse) => void {
  return (res) => {
    res.writeHead(code, { 'content-type': 'text/plain', ...headers });
    res.end(`status ${code}`);
  };
}

/** Answers the n-th request with the n-th status; the last one repeats. */
function sequence(...codes: number[]): Answer {
  return (res, n) => status(codes[Math.min(n, codes.length - 1)]!)(res);
}

/** A port on 127.0.0.1 that was open a moment ago and is closed now: connections are refused. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function webhook(name: string, url: string, secret: string | null = null, filters: Partial<WebhookSpec> = {}): Webhook {
  return new Webhook({ name, url, severities: [], services: [], rules: [], ...filters }, secret);
}

function dispatcher(webhooks: readonly Webhook[], options: Partial<DispatcherOptions> = {}): WebhookDispatcher {
  const created = new WebhookDispatcher({
    webhooks,
    retries: 3,
    backoffMs: 5,
    timeoutMs: 2000,
    sender: 'replica-1',
    userAgent: 'maxine-test/1.0',
    clock: () => NOW,
    ...options,
  });
  dispatchers.add(created);
  return created;
}

async function waitFor(what: string, predicate: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('WebhookDispatcher: what a receiver gets', () => {
  test('a signed POST of the JSON body, with delivery, event and timestamp headers', async () => {
    const hook = await receiver(status(200), '/services/T0/B0?token=abc');
    const secret = 'correct horse battery staple';
    const d = dispatcher([webhook('ops', hook.url, secret)]);
    const { deliveries, settled } = d.send('firing', ALERT, d.webhooks);
    assert.equal(deliveries.length, 1);
    assert.equal(deliveries[0]!.state, 'sending', 'returned at once, while the first attempt runs');
    assert.equal(deliveries[0]!.attempts, 1);
    await settled;

    assert.equal(hook.requests.length, 1);
    const [request] = hook.requests;
    assert.ok(request);
    assert.equal(request.method, 'POST');
    assert.equal(request.url, '/services/T0/B0?token=abc', 'the path and query are kept');
    assert.equal(request.headers['content-type'], 'application/json');
    assert.equal(request.headers['user-agent'], 'maxine-test/1.0');
    assert.equal(request.headers['x-maxine-event'], 'firing');
    assert.match(String(request.headers['x-maxine-delivery']), UUID);
    assert.equal(request.headers['x-maxine-timestamp'], String(NOW_SEC));

    assert.deepEqual(JSON.parse(request.body), { version: 1, status: 'firing', alert: ALERT, sender: 'replica-1', sentAt: '2024-05-01T12:00:00.750Z' });
    assert.equal(request.body, notificationBody('firing', ALERT, 'replica-1', NOW));

    // Verified the way a receiver would: HMAC-SHA256 over "<timestamp>.<raw body>".
    const expected = 'sha256=' + createHmac('sha256', secret).update(`${request.headers['x-maxine-timestamp']}.${request.body}`).digest('hex');
    assert.equal(request.headers['x-maxine-signature'], expected);
    assert.notEqual(expected, 'sha256=' + createHmac('sha256', 'wrong').update(`${NOW_SEC}.${request.body}`).digest('hex'));

    assert.deepEqual(deliveries[0], { webhook: 'ops', state: 'delivered', attempts: 1, statusCode: 200, error: null, lastAttemptAt: NOW, nextAttemptAt: null });
    assert.deepEqual(d.countsOf('ops'), { delivered: 1, failed: 0 });
  });

  test('a resolution is sent as x-maxine-event resolved with status resolved', async () => {
    const hook = await receiver(status(204));
    const d = dispatcher([webhook('ops', hook.url)]);
    const resolved: AlertPayload = { ...ALERT, endsAt: '2024-05-01T12:00:00.000Z' };
    const { deliveries, settled } = d.send('resolved', resolved, d.webhooks);
    await settled;
    assert.equal(deliveries[0]!.state, 'delivered');
    assert.equal(deliveries[0]!.statusCode, 204);
    const [request] = hook.requests;
    assert.equal(request?.headers['x-maxine-event'], 'resolved');
    const body = JSON.parse(request!.body) as { status: string; alert: AlertPayload };
    assert.equal(body.status, 'resolved');
    assert.equal(body.alert.endsAt, '2024-05-01T12:00:00.000Z');
  });

  test('no signature header when the webhook has no secret', async () => {
    const hook = await receiver(status(200));
    const d = dispatcher([webhook('plain', hook.url)]);
    await d.send('firing', ALERT, d.webhooks).settled;
    assert.equal(hook.requests.length, 1);
    assert.equal(hook.requests[0]!.headers['x-maxine-signature'], undefined);
    assert.equal(hook.requests[0]!.headers['x-maxine-timestamp'], String(NOW_SEC), 'the timestamp is sent all the same');
  });

  test('each webhook gets its own delivery, id and signature', async () => {
    const one = await receiver(status(200));
    const two = await receiver(status(202));
    const d = dispatcher([webhook('one', one.url, 'secret-1'), webhook('two', two.url, 'secret-2')]);
    const { deliveries, settled } = d.send('firing', ALERT, d.webhooks);
    await settled;
    assert.deepEqual(
      deliveries.map((x) => [x.webhook, x.state, x.statusCode]),
      [
        ['one', 'delivered', 200],
        ['two', 'delivered', 202],
      ],
    );
    const [a, b] = [one.requests[0]!, two.requests[0]!];
    assert.notEqual(a.headers['x-maxine-delivery'], b.headers['x-maxine-delivery']);
    assert.equal(a.body, b.body, 'one body per notification');
    assert.equal(a.headers['x-maxine-signature'], 'sha256=' + createHmac('sha256', 'secret-1').update(`${NOW_SEC}.${a.body}`).digest('hex'));
    assert.equal(b.headers['x-maxine-signature'], 'sha256=' + createHmac('sha256', 'secret-2').update(`${NOW_SEC}.${b.body}`).digest('hex'));
    assert.deepEqual(d.countsOf('one'), { delivered: 1, failed: 0 });
    assert.deepEqual(d.countsOf('two'), { delivered: 1, failed: 0 });
  });

  test('only the webhooks passed to send are called; no webhooks settles at once', async () => {
    const one = await receiver(status(200));
    const two = await receiver(status(200));
    const hooks = [webhook('one', one.url), webhook('two', two.url)];
    const d = dispatcher(hooks);
    await d.send('firing', ALERT, [hooks[1]!]).settled;
    assert.equal(one.requests.length, 0);
    assert.equal(two.requests.length, 1);
    const none = d.send('firing', ALERT, []);
    assert.deepEqual(none.deliveries, []);
    await none.settled;
    assert.deepEqual(d.countsOf('one'), { delivered: 0, failed: 0 });
    assert.deepEqual(d.countsOf('unknown'), { delivered: 0, failed: 0 });
  });
});

describe('WebhookDispatcher: retries', () => {
  test('5xx is retried with the same delivery id and body until it succeeds', async () => {
    const hook = await receiver(sequence(500, 503, 200));
    const d = dispatcher([webhook('ops', hook.url, 'k')], { retries: 3 });
    const { deliveries, settled } = d.send('firing', ALERT, d.webhooks);
    hook.watch = deliveries[0];
    await settled;
    assert.equal(hook.requests.length, 3);
    assert.deepEqual(
      hook.requests.map((r) => r.stateSeen),
      ['sending', 'retrying', 'retrying'],
    );
    const ids = new Set(hook.requests.map((r) => r.headers['x-maxine-delivery']));
    assert.equal(ids.size, 1, 'one delivery id across its attempts');
    assert.match(String([...ids][0]), UUID);
    assert.equal(new Set(hook.requests.map((r) => r.body)).size, 1);
    assert.equal(new Set(hook.requests.map((r) => r.headers['x-maxine-signature'])).size, 1);
    assert.deepEqual(deliveries[0], { webhook: 'ops', state: 'delivered', attempts: 3, statusCode: 200, error: null, lastAttemptAt: NOW, nextAttemptAt: null });
    assert.deepEqual(d.countsOf('ops'), { delivered: 1, failed: 0 });
  });

  test('408 and 429 are retried too', async () => {
    const hook = await receiver(sequence(408, 429, 201));
    const d = dispatcher([webhook('ops', hook.url)], { retries: 2 });
    const { deliveries, settled } = d.send('firing', ALERT, d.webhooks);
    await settled;
    assert.equal(deliveries[0]!.state, 'delivered');
    assert.equal(deliveries[0]!.attempts, 3);
    assert.equal(deliveries[0]!.statusCode, 201);
  });

  test('retries run out: failed after retries + 1 attempts, with the last status', async () => {
    const hook = await receiver(sequence(502));
    const d = dispatcher([webhook('ops', hook.url)], { retries: 2 });
    const { deliveries, settled } = d.send('firing', ALERT, d.webhooks);
    await settled;
    assert.equal(hook.requests.length, 3);
    assert.deepEqual(deliveries[0], { webhook: 'ops', state: 'failed', attempts: 3, statusCode: 502, error: 'answered 502', lastAttemptAt: NOW, nextAttemptAt: null });
    assert.deepEqual(d.countsOf('ops'), { delivered: 0, failed: 1 });
  });

  test('retries 0: one attempt only', async () => {
    const hook = await receiver(sequence(500));
    const d = dispatcher([webhook('ops', hook.url)], { retries: 0 });
    const { deliveries, settled } = d.send('firing', ALERT, d.webhooks);
    await settled;
    assert.equal(hook.requests.length, 1);
    assert.equal(deliveries[0]!.state, 'failed');
    assert.equal(deliveries[0]!.attempts, 1);
  });

  for (const code of [400, 401, 404, 410, 422]) {
    test(`${code} is final: one attempt, failed`, async () => {
      const hook = await receiver(sequence(code, 200));
      const d = dispatcher([webhook('ops', hook.url)], { retries: 3 });
      const { deliveries, settled } = d.send('firing', ALERT, d.webhooks);
      await settled;
      assert.equal(hook.requests.length, 1);
      assert.deepEqual(deliveries[0], { webhook: 'ops', state: 'failed', attempts: 1, statusCode: code, error: `answered ${code}`, lastAttemptAt: NOW, nextAttemptAt: null });
      assert.deepEqual(d.countsOf('ops'), { delivered: 0, failed: 1 });
    });
  }

  test('a redirect is not followed: a final non-2xx answer', async () => {
    const target = await receiver(status(200));
    const hook = await receiver(status(302, { location: target.url }));
    const d = dispatcher([webhook('ops', hook.url)], { retries: 3 });
    const { deliveries, settled } = d.send('firing', ALERT, d.webhooks);
    await settled;
    assert.equal(hook.requests.length, 1);
    assert.equal(target.requests.length, 0, 'the Location was not visited');
    assert.deepEqual(deliveries[0], { webhook: 'ops', state: 'failed', attempts: 1, statusCode: 302, error: 'answered 302', lastAttemptAt: NOW, nextAttemptAt: null });
  });

  test('429 with Retry-After: the next attempt waits at least that long', async () => {
    const hook = await receiver((res, n) => (n === 0 ? status(429, { 'retry-after': '1' })(res) : status(200)(res)));
    const d = dispatcher([webhook('ops', hook.url)], { retries: 2, backoffMs: 5 });
    const { deliveries, settled } = d.send('firing', ALERT, d.webhooks);
    const delivery = deliveries[0]!;
    await waitFor('the retry to be scheduled', () => delivery.nextAttemptAt !== null);
    assert.equal(delivery.state, 'retrying');
    assert.equal(delivery.statusCode, 429);
    assert.equal(delivery.error, 'answered 429');
    assert.equal(delivery.attempts, 1);
    assert.equal(delivery.nextAttemptAt, NOW + 1000, 'Retry-After (1 s) beats the 5 ms backoff');
    await settled;
    assert.equal(hook.requests.length, 2);
    const gap = hook.requests[1]!.at - hook.requests[0]!.at;
    assert.ok(gap >= 900, `second attempt ${gap.toFixed(0)} ms after the first`);
    assert.equal(delivery.state, 'delivered');
    assert.equal(delivery.attempts, 2);
  });

  test('a Retry-After in the HTTP-date form is ignored: the backoff applies', async () => {
    const later = new Date(Date.now() + 60_000).toUTCString();
    const hook = await receiver((res, n) => (n === 0 ? status(503, { 'retry-after': later })(res) : status(200)(res)));
    const d = dispatcher([webhook('ops', hook.url)], { retries: 1, backoffMs: 300 });
    const { deliveries, settled } = d.send('firing', ALERT, d.webhooks);
    const delivery = deliveries[0]!;
    await waitFor('the retry to be scheduled', () => delivery.nextAttemptAt !== null);
    const wait = delivery.nextAttemptAt! - NOW;
    assert.ok(wait >= 240 && wait <= 360, `next attempt planned ${wait} ms on: 300 ms ± 20 %, not the date`);
    await settled;
    assert.equal(delivery.state, 'delivered');
    assert.equal(delivery.attempts, 2);
  });

  test('the backoff doubles with each retry (± 20 % jitter)', async () => {
    const hook = await receiver(sequence(500, 500, 200));
    const d = dispatcher([webhook('ops', hook.url)], { retries: 2, backoffMs: 100 });
    const { deliveries, settled } = d.send('firing', ALERT, d.webhooks);
    const delivery = deliveries[0]!;
    const planned: number[] = [];
    const watcher = setInterval(() => {
      const next = delivery.nextAttemptAt;
      if (next !== null && planned.at(-1) !== next - NOW) planned.push(next - NOW);
    }, 2);
    try {
      await settled;
    } finally {
      clearInterval(watcher);
    }
    assert.equal(delivery.attempts, 3);
    assert.equal(planned.length, 2, `planned waits ${planned.join(', ')}`);
    assert.ok(planned[0]! >= 80 && planned[0]! <= 120, `first wait ${planned[0]}`);
    assert.ok(planned[1]! >= 160 && planned[1]! <= 240, `second wait ${planned[1]}`);
  });

  test('connection refused is retried, then failed after retries + 1 attempts', async () => {
    const port = await closedPort();
    const d = dispatcher([webhook('gone', `http://127.0.0.1:${port}/hook`)], { retries: 2, backoffMs: 5 });
    const { deliveries, settled } = d.send('firing', ALERT, d.webhooks);
    await settled;
    const [delivery] = deliveries;
    assert.equal(delivery?.state, 'failed');
    assert.equal(delivery?.attempts, 3);
    assert.equal(delivery?.statusCode, null);
    assert.match(delivery?.error ?? '', /^ECONNREFUSED: /);
    assert.equal(delivery?.nextAttemptAt, null);
    assert.deepEqual(d.countsOf('gone'), { delivered: 0, failed: 1 });
  });

  // undici times response headers with its coarse timers (about 1 s resolution), so each attempt here takes ~1 s, not 200 ms.
  test('a receiver that never answers times out, and the timeout is retried', async () => {
    const hook = await receiver(() => {
      /* never answers */
    });
    const d = dispatcher([webhook('slow', hook.url)], { retries: 1, backoffMs: 5, timeoutMs: 200 });
    const { deliveries, settled } = d.send('firing', ALERT, d.webhooks);
    await settled;
    const [delivery] = deliveries;
    assert.equal(hook.requests.length, 2, 'the request arrived each time');
    assert.equal(delivery?.state, 'failed');
    assert.equal(delivery?.attempts, 2);
    assert.equal(delivery?.statusCode, null);
    assert.match(delivery?.error ?? '', /^UND_ERR_HEADERS_TIMEOUT: .*timeout/i);
    assert.deepEqual(d.countsOf('slow'), { delivered: 0, failed: 1 });
  });
});

describe('WebhookDispatcher: close', () => {
  test('close() cancels a delivery waiting for its retry, and closing again is harmless', { timeout: 10_000 }, async () => {
    const hook = await receiver(sequence(503));
    const d = dispatcher([webhook('ops', hook.url)], { retries: 5, backoffMs: 60_000 });
    const { deliveries, settled } = d.send('firing', ALERT, d.webhooks);
    const delivery = deliveries[0]!;
    await waitFor('the retry to be scheduled', () => delivery.nextAttemptAt !== null);
    assert.equal(delivery.state, 'retrying');
    await close(d);
    await d.close();
    await settled;
    assert.equal(hook.requests.length, 1);
    assert.deepEqual(delivery, { webhook: 'ops', state: 'cancelled', attempts: 1, statusCode: 503, error: 'answered 503', lastAttemptAt: NOW, nextAttemptAt: null });
    assert.deepEqual(d.countsOf('ops'), { delivered: 0, failed: 0 }, 'a cancelled delivery is neither');
  });

  test('close() cancels a request in flight', { timeout: 10_000 }, async () => {
    const hook = await receiver(() => {
      /* never answers */
    });
    const d = dispatcher([webhook('ops', hook.url)], { retries: 5, timeoutMs: 30_000 });
    const { deliveries, settled } = d.send('firing', ALERT, d.webhooks);
    await waitFor('the request to arrive', () => hook.requests.length === 1);
    await close(d);
    await settled;
    assert.equal(deliveries[0]!.state, 'cancelled');
    assert.equal(deliveries[0]!.attempts, 1);
    assert.equal(deliveries[0]!.statusCode, null);
    assert.deepEqual(d.countsOf('ops'), { delivered: 0, failed: 0 });
  });

  test('a send after close() is cancelled without an attempt', async () => {
    const hook = await receiver(status(200));
    const d = dispatcher([webhook('ops', hook.url)]);
    await close(d);
    const { deliveries, settled } = d.send('firing', ALERT, d.webhooks);
    await settled;
    assert.equal(deliveries[0]!.state, 'cancelled');
    assert.equal(deliveries[0]!.attempts, 0);
    assert.equal(hook.requests.length, 0);
  });
});

describe('Webhook', () => {
  const critical = { severity: 'critical', rule: 'service_instances_low', service: 'orders' } as const;
  const warning = { severity: 'warning', rule: 'instance_evicted', service: 'payments-eu' } as const;
  const replicaAlert = { severity: 'critical', rule: 'store_unreachable', service: null } as const;
  const url = 'https://hooks.example.com/x';

  test('no filters: everything matches, replica alerts included', () => {
    const w = webhook('all', url);
    assert.equal(w.matches(critical), true);
    assert.equal(w.matches(warning), true);
    assert.equal(w.matches(replicaAlert), true);
  });

  test('severities', () => {
    const w = webhook('pager', url, null, { severities: ['critical'] });
    assert.equal(w.matches(critical), true);
    assert.equal(w.matches(replicaAlert), true);
    assert.equal(w.matches(warning), false);
  });

  test('rules', () => {
    const w = webhook('evictions', url, null, { rules: ['instance_evicted', 'no_leader'] });
    assert.equal(w.matches(warning), true);
    assert.equal(w.matches(critical), false);
    assert.equal(w.matches({ ...replicaAlert, rule: 'no_leader' }), true);
    assert.equal(w.matches(replicaAlert), false);
  });

  test('service patterns; alerts about no service reach only webhooks without a services filter', () => {
    const w = webhook('team', url, null, { services: ['orders', 'payments-*'] });
    assert.equal(w.matches(critical), true);
    assert.equal(w.matches(warning), true);
    assert.equal(w.matches({ ...critical, service: 'orders-eu' }), false, 'an exact name is not a prefix');
    assert.equal(w.matches({ ...critical, service: 'billing' }), false);
    assert.equal(w.matches(replicaAlert), false);
    assert.equal(webhook('any', url, null, { services: ['*'] }).matches(replicaAlert), false, 'even * needs a service');
  });

  test('all filters must match', () => {
    const w = webhook('narrow', url, null, { severities: ['warning'], rules: ['instance_evicted'], services: ['payments-*'] });
    assert.equal(w.matches(warning), true);
    assert.equal(w.matches({ ...warning, severity: 'critical' }), false);
    assert.equal(w.matches({ ...warning, rule: 'service_instances_low' }), false);
    assert.equal(w.matches({ ...warning, service: 'orders' }), false);
  });

  test('routesFor picks the matching webhooks in configured order', () => {
    const hooks = [webhook('pager', url, null, { severities: ['critical'] }), webhook('team', url, null, { services: ['orders'] }), webhook('all', url)];
    const d = dispatcher(hooks);
    assert.deepEqual(
      d.routesFor(ALERT).map((w) => w.name),
      ['pager', 'team', 'all'],
    );
    const replicaPayload: AlertPayload = { ...ALERT, severity: 'warning', rule: 'error_rate_high', scope: 'replica', service: null, replica: 'r1' };
    assert.deepEqual(
      d.routesFor(replicaPayload).map((w) => w.name),
      ['all'],
    );
  });

  test('target is the origin only: no path, query or credentials', () => {
    assert.equal(webhook('a', 'https://hooks.example.com:8443/services/T000/B000/XXXX?token=secret').target, 'https://hooks.example.com:8443');
    assert.equal(webhook('b', 'https://hooks.example.com:443/x').target, 'https://hooks.example.com', 'the default port is dropped');
    assert.equal(webhook('c', 'http://user:pa55@127.0.0.1:9000/hook#frag').target, 'http://127.0.0.1:9000');
    assert.equal(webhook('d', 'https://hooks.example.com/x').name, 'd');
  });

  test('signed and signature', () => {
    const plain = webhook('plain', url);
    assert.equal(plain.signed, false);
    assert.equal(plain.signature(NOW_SEC, '{}'), null);
    const signed = webhook('signed', url, 'k');
    assert.equal(signed.signed, true);
    assert.equal(signed.signature(1700000000, '{"a":1}'), 'sha256=' + createHmac('sha256', 'k').update('1700000000.{"a":1}').digest('hex'));
    assert.notEqual(signed.signature(1700000001, '{"a":1}'), signed.signature(1700000000, '{"a":1}'), 'the timestamp is signed');
  });

  test('notificationBody: version 1, status, alert, sender, sentAt as ISO-8601', () => {
    assert.deepEqual(JSON.parse(notificationBody('resolved', ALERT, 'r9', 0)), { version: 1, status: 'resolved', alert: ALERT, sender: 'r9', sentAt: '1970-01-01T00:00:00.000Z' });
  });
});
