import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { testInstance } from '../core/fixtures.ts';
import type { HealthCheck } from '../core/instance.ts';
import { BODY_LIMIT, Prober, connectTimeoutFor, failureReason, probeTarget } from './probe.ts';
import { closedPort, httpCheck, sleep, startTcpListener, startUnansweredPort, startUpstream, type TcpListener, type Upstream } from './test-upstreams.ts';

const tcpCheck = (timeoutMs = 500): HealthCheck => httpCheck({ type: 'tcp', path: '', statusMin: 0, statusMax: 0, timeoutMs });

function at(port: number, check: HealthCheck, extra: Parameters<typeof testInstance>[2] = {}) {
  return probeTarget(testInstance('svc', `i${port}`, { port, ...extra }), check);
}

describe('probeTarget', () => {
  test('the probed URL is the address (with its path prefix) plus the check path', () => {
    const check = httpCheck({ path: '/health?deep=1' });
    assert.deepEqual(probeTarget(testInstance('svc', 'a', { host: 'api.example', port: 8080, path: '/v1' }), check), {
      type: 'http',
      origin: 'http://api.example:8080',
      hostname: 'api.example',
      path: '/v1/health?deep=1',
      url: 'http://api.example:8080/v1/health?deep=1',
    });
  });

  test('port 0 means the scheme default port', () => {
    assert.equal(probeTarget(testInstance('svc', 'a', { port: 0, scheme: 'https' }), httpCheck()).url, 'https://127.0.0.1/health');
    assert.deepEqual(probeTarget(testInstance('svc', 'a', { port: 0, scheme: 'https' }), tcpCheck()), {
      type: 'tcp',
      host: '127.0.0.1',
      port: 443,
      url: 'tcp://127.0.0.1:443',
    });
    assert.equal(probeTarget(testInstance('svc', 'a', { port: 0, host: '::1' }), tcpCheck()).url, 'tcp://[::1]:80');
  });
});

describe('HTTP and TCP probes against real upstreams', () => {
  let prober: Prober;
  let upstream: Upstream;
  let tcp: TcpListener;
  let nothing: number;

  before(async () => {
    prober = new Prober({ allowLinkLocal: false });
    upstream = await startUpstream({ kind: 'status', status: 200 });
    tcp = await startTcpListener();
    nothing = await closedPort();
  });
  after(async () => {
    await prober.close();
    await upstream.close();
    await tcp.close();
  });

  const probe = (check: HealthCheck, port = upstream.port) => prober.probe(at(port, check), check);

  test('a status in the range passes; 429 warns; anything else fails', async () => {
    upstream.behaviour = { kind: 'status', status: 200 };
    assert.deepEqual((({ result, reason }) => ({ result, reason }))(await probe(httpCheck())), { result: 'pass', reason: 'HTTP 200' });
    upstream.behaviour = { kind: 'status', status: 503 };
    const failed = await probe(httpCheck());
    assert.equal(failed.result, 'fail');
    assert.equal(failed.reason, 'HTTP 503');
    upstream.behaviour = { kind: 'status', status: 429 };
    assert.equal((await probe(httpCheck())).result, 'warn');
    assert.equal((await probe(httpCheck({ statusMin: 200, statusMax: 499 }))).result, 'pass', 'a 429 the range accepts passes');
    upstream.behaviour = { kind: 'status', status: 204 };
    assert.equal((await probe(httpCheck({ statusMin: 204, statusMax: 204 }))).result, 'pass');
    upstream.behaviour = { kind: 'status', status: 200 };
    assert.equal((await probe(httpCheck({ statusMin: 204, statusMax: 204 }))).reason, 'HTTP 200');
  });

  test('redirects are not followed: a 3xx is judged by the range', async () => {
    const before = upstream.total();
    upstream.behaviour = { kind: 'status', status: 302 };
    assert.equal((await probe(httpCheck())).result, 'pass');
    const strict = await probe(httpCheck({ statusMin: 200, statusMax: 299 }));
    assert.deepEqual([strict.result, strict.reason], ['fail', 'HTTP 302']);
    assert.equal(upstream.total() - before, 2, 'one request per probe');
  });

  test('the body must contain bodyMatch, also across chunks; only the first 64 KiB are read', async () => {
    upstream.behaviour = { kind: 'chunks', chunks: ['{"status":"U', 'P","db":"ok"}'], delayMs: 20 };
    assert.equal((await probe(httpCheck({ bodyMatch: '"status":"UP"' }))).result, 'pass');
    upstream.behaviour = { kind: 'status', status: 200, body: '{"status":"DOWN"}' };
    const missing = await probe(httpCheck({ bodyMatch: 'ok' }));
    assert.deepEqual([missing.result, missing.reason], ['fail', 'body does not contain "ok"']);
    upstream.behaviour = { kind: 'chunks', chunks: ['x'.repeat(BODY_LIMIT), 'ok'], delayMs: 5 };
    assert.equal((await probe(httpCheck({ bodyMatch: 'ok' }))).result, 'fail', 'a match beyond 64 KiB is not seen');
    upstream.behaviour = { kind: 'status', status: 500, body: 'ok' };
    assert.equal((await probe(httpCheck({ bodyMatch: 'ok' }))).reason, 'HTTP 500', 'the status is judged first');
  });

  test('a probe that does not finish within timeoutMs fails as timed out, headers or body', async () => {
    upstream.behaviour = { kind: 'hang' };
    const hung = await probe(httpCheck({ timeoutMs: 150 }));
    assert.deepEqual([hung.result, hung.reason], ['fail', 'timed out after 150 ms']);
    assert.ok(hung.durationMs >= 140, `took ${hung.durationMs} ms`);
    upstream.behaviour = { kind: 'chunks', chunks: ['a', 'b', 'c', 'd'], delayMs: 100 };
    const slowBody = await probe(httpCheck({ timeoutMs: 150 }));
    assert.deepEqual([slowBody.result, slowBody.reason], ['fail', 'timed out after 150 ms']);
    upstream.behaviour = { kind: 'slow', delayMs: 50 };
    assert.equal((await probe(httpCheck({ timeoutMs: 400 }))).result, 'pass', 'slow but in time');
  });

  test('the timeout covers connecting: an instance that never answers the connection fails in time, HTTP or TCP', async (t) => {
    const unanswered = await startUnansweredPort();
    t.after(() => unanswered.close());
    for (const check of [httpCheck({ timeoutMs: 200 }), tcpCheck(200)]) {
      const started = Date.now();
      const outcome = await probe(check, unanswered.port);
      assert.deepEqual([outcome.result, outcome.reason], ['fail', 'timed out after 200 ms'], check.type);
      assert.ok(Date.now() - started < 1000, `${check.type}: answered after ${Date.now() - started} ms`);
    }
  });

  test('a reset connection and a closed port fail with a short reason', async () => {
    upstream.behaviour = { kind: 'reset' };
    const reset = await probe(httpCheck());
    assert.equal(reset.result, 'fail');
    assert.match(reset.reason, /^connection (reset|closed by the instance)$/);
    const refused = await probe(httpCheck(), nothing);
    assert.deepEqual([refused.result, refused.reason], ['fail', 'connection refused']);
  });

  test('a TCP check passes on connect and closes; fails on a closed port', async () => {
    const before = tcp.connections;
    const ok = await probe(tcpCheck(), tcp.port);
    assert.deepEqual([ok.result, ok.reason], ['pass', 'connected']);
    assert.equal(tcp.connections, before + 1);
    const refused = await probe(tcpCheck(), nothing);
    assert.deepEqual([refused.result, refused.reason], ['fail', 'connection refused']);
  });

  test('link-local and metadata literals are not contacted', async () => {
    const check = httpCheck();
    const outcome = await prober.probe(probeTarget(testInstance('svc', 'meta', { host: '169.254.169.254', port: 80 }), check), check);
    assert.equal(outcome.result, 'fail');
    assert.match(outcome.reason, /link-local or metadata/);
    const tcpOutcome = await prober.probe(probeTarget(testInstance('svc', 'meta6', { host: 'fe80::1', port: 80 }), tcpCheck()), tcpCheck());
    assert.match(tcpOutcome.reason, /link-local or metadata/);
  });
});

describe('probe connections', () => {
  test('are kept alive: repeated probes of one instance use one connection', async () => {
    const upstream = await startUpstream({ kind: 'status', status: 200, body: 'ok' });
    const prober = new Prober({ allowLinkLocal: false });
    try {
      // Probes of one instance are an interval apart; back to back, undici may see the socket still busy.
      for (let i = 0; i < 5; i++) {
        assert.equal((await probe(prober, upstream.port, httpCheck())).result, 'pass');
        await sleep(10);
      }
      for (let i = 0; i < 5; i++) {
        assert.equal((await probe(prober, upstream.port, httpCheck({ bodyMatch: 'ok' }))).result, 'pass');
        await sleep(10);
      }
      assert.equal(upstream.connections, 1);
      assert.equal(prober.stats().sockets, 1);
    } finally {
      await prober.close();
      await upstream.close();
    }
  });

  test('beyond maxSockets, an origin without a connection gets none kept', async () => {
    const first = await startUpstream({ kind: 'status', status: 200 });
    const second = await startUpstream({ kind: 'status', status: 200 });
    const prober = new Prober({ allowLinkLocal: false, maxSockets: 1 });
    try {
      for (let i = 0; i < 3; i++) {
        await probe(prober, first.port, httpCheck());
        await probe(prober, second.port, httpCheck());
        await sleep(10);
      }
      assert.equal(first.connections, 1, 'the origin holding the one kept socket keeps it');
      assert.equal(second.connections, 3, 'the other connects per probe');
    } finally {
      await prober.close();
      await first.close();
      await second.close();
    }
  });
});

function probe(prober: Prober, port: number, check: HealthCheck) {
  return prober.probe(at(port, check), check);
}

test('failureReason names the usual errors briefly', () => {
  const coded = (code: string, message = 'x') => Object.assign(new Error(message), { code });
  assert.equal(failureReason(coded('ECONNREFUSED')), 'connection refused');
  assert.equal(failureReason(new Error('outer', { cause: coded('EHOSTUNREACH') })), 'host unreachable');
  assert.equal(failureReason(coded('ERR_TLS_CERT_ALTNAME_INVALID', 'bad cert')), 'TLS: bad cert');
  assert.equal(failureReason(new Error('a'.repeat(500))).length, 200);
});

test('checks share connect timeout classes: at least their timeout, at most twice it, a dozen in all', () => {
  assert.deepEqual([50, 51, 100, 150, 2000, 2001, 10_000, 60_000].map(connectTimeoutFor), [50, 100, 100, 200, 3200, 3200, 12_800, 60_000]);
  const classes = new Set<number>();
  for (let ms = 50; ms <= 60_000; ms++) {
    const connectMs = connectTimeoutFor(ms);
    assert.ok(connectMs >= ms && connectMs < 2 * ms, `${ms} ms -> ${connectMs} ms`);
    classes.add(connectMs);
  }
  assert.equal(classes.size, 12);
});

test('the Prober refuses options it cannot use', () => {
  assert.throws(() => new Prober({ allowLinkLocal: false, keepAliveTimeoutMs: 0 }), /keepAliveTimeoutMs must be a positive integer/);
  assert.throws(() => new Prober({ allowLinkLocal: false, maxSockets: 0.5 }), /maxSockets must be a positive integer/);
});
