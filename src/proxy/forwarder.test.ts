import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Proxy } from './proxy.ts';
import { catalogOf } from '../core/fixtures.ts';
import {
  proxyFront,
  closedPort,
  echo,
  errorBody,
  front,
  hang,
  policy,
  reset,
  send,
  status,
  upstream,
  type Echo,
  type Running,
} from './test-support.ts';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;


describe('forwarding to a healthy instance', () => {
  let ok: Running;
  let plain: Awaited<ReturnType<typeof proxyFront>>;
  let withAuth: Awaited<ReturnType<typeof proxyFront>>;

  before(async () => {
    ok = await upstream(echo);
    plain = await proxyFront(catalogOf('svc', [['a', ok.port, { path: '/base' }]]), policy({ maxBodyBytes: 1000 }));
    withAuth = await proxyFront(catalogOf('svc', [['a', ok.port, { path: '/base/' }]]), policy({ passAuthorization: true }));
  });
  after(async () => {
    await plain.close();
    await withAuth.close();
    await ok.close();
  });

  test('keeps the path, the query string, the method and the body, below the instance path prefix', async () => {
    const reply = await send(plain.port, { method: 'POST', path: '/a/b%20c?x=1&y=%2F&x=2', body: 'hello body' });
    assert.equal(reply.status, 200);
    const seen = JSON.parse(reply.body) as Echo;
    assert.equal(seen.method, 'POST');
    assert.equal(seen.url, '/base/a/b%20c?x=1&y=%2F&x=2');
    assert.equal(seen.body, 'hello body');
    assert.equal(seen.headers['content-length'], '10');
    const slash = JSON.parse((await send(withAuth.port, { path: '/q?z' })).body) as Echo;
    assert.equal(slash.url, '/base/q?z', 'a prefix ending in / does not double the slash');
  });

  test('removes hop-by-hop request headers, and those named in Connection', async () => {
    const reply = await send(plain.port, {
      method: 'POST',
      body: 'chunked, so that node lets the client send a Trailer header',
      chunked: true,
      headers: {
        connection: 'close, X-Req-Hop',
        'x-req-hop': 'secret',
        'keep-alive': 'timeout=1',
        te: 'trailers',
        trailer: 'x-t',
        upgrade: 'foo',
        'proxy-authorization': 'Basic abc',
        'x-end-to-end': 'kept',
      },
    });
    assert.equal(reply.status, 200);
    const seen = JSON.parse(reply.body) as Echo;
    const headers = seen.headers;
    assert.equal(seen.body, 'chunked, so that node lets the client send a Trailer header');
    // Transfer-Encoding is hop-by-hop too, but undici chunks the streamed body again on its own hop.
    for (const name of ['x-req-hop', 'keep-alive', 'te', 'trailer', 'upgrade', 'proxy-authorization']) {
      assert.equal(headers[name], undefined, name);
    }
    assert.notEqual(headers.connection, 'close, X-Req-Hop');
    assert.equal(headers['x-end-to-end'], 'kept');
  });

  test('sets X-Forwarded-For (appended), X-Forwarded-Proto and X-Forwarded-Host; Host is the instance', async () => {
    const reply = await send(plain.port, {
      headers: { host: 'front.example:8080', 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'spoofed' },
    });
    const headers = (JSON.parse(reply.body) as Echo).headers;
    assert.equal(headers['x-forwarded-for'], '203.0.113.7, 127.0.0.1');
    assert.equal(headers['x-forwarded-proto'], 'http');
    assert.equal(headers['x-forwarded-host'], 'front.example:8080');
    assert.equal(headers.host, `127.0.0.1:${ok.port}`);
    const fresh = (JSON.parse((await send(plain.port)).body) as Echo).headers;
    assert.equal(fresh['x-forwarded-for'], '127.0.0.1');
  });

  test('adds a traceparent when there is none, keeps a valid one, replaces an invalid one', async () => {
    const first = (JSON.parse((await send(plain.port, { headers: { tracestate: 'a=1' } })).body) as Echo).headers;
    const second = (JSON.parse((await send(plain.port)).body) as Echo).headers;
    const one = TRACEPARENT.exec(String(first.traceparent));
    const two = TRACEPARENT.exec(String(second.traceparent));
    assert.ok(one && two, `${String(first.traceparent)} / ${String(second.traceparent)}`);
    assert.notEqual(one[1], two[1], 'every new trace has its own id');
    assert.equal(first.tracestate, undefined, 'a tracestate without its traceparent is dropped');

    const valid = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const kept = (JSON.parse((await send(plain.port, { headers: { traceparent: valid, tracestate: 'v=1' } })).body) as Echo).headers;
    assert.equal(kept.traceparent, valid);
    assert.equal(kept.tracestate, 'v=1');

    for (const invalid of [
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
      'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra',
      'garbage',
    ]) {
      const replaced = (JSON.parse((await send(plain.port, { headers: { traceparent: invalid } })).body) as Echo).headers;
      assert.notEqual(replaced.traceparent, invalid);
      assert.match(String(replaced.traceparent), TRACEPARENT);
    }
  });

  test('drops Authorization unless the policy passes it', async () => {
    const dropped = (JSON.parse((await send(plain.port, { headers: { authorization: 'Bearer t' } })).body) as Echo).headers;
    assert.equal(dropped.authorization, undefined);
    const passed = (JSON.parse((await send(withAuth.port, { headers: { authorization: 'Bearer t' } })).body) as Echo).headers;
    assert.equal(passed.authorization, 'Bearer t');
  });

  test('answers an upgrade (WebSocket) with 501 and never contacts the instance', async () => {
    const before = ok.hits;
    const reply = await send(plain.port, { headers: { connection: 'Upgrade', upgrade: 'websocket' } });
    assert.equal(reply.status, 501);
    assert.deepEqual(errorBody(reply).code, 'NOT_IMPLEMENTED');
    assert.equal(ok.hits, before);
  });

  test('a body over maxBodyBytes is 413: before contacting the instance when its length is known, while streaming when chunked', async () => {
    const before = ok.hits;
    const attempts = plain.proxy.upstreams()[0]!.requests;
    const known = await send(plain.port, { method: 'POST', body: 'x'.repeat(1001), keepAlive: true });
    assert.equal(known.status, 413);
    assert.equal(errorBody(known).code, 'PAYLOAD_TOO_LARGE');
    assert.equal(known.headers.connection, 'close', 'the unread body ends the connection');
    assert.equal(ok.hits, before, 'the instance was not contacted');
    assert.equal(plain.proxy.upstreams()[0]!.requests, attempts, 'no attempt was started');

    const chunked = await send(plain.port, { method: 'POST', body: 'x'.repeat(5000), chunked: true });
    assert.equal(chunked.status, 413);
    assert.equal(errorBody(chunked).code, 'PAYLOAD_TOO_LARGE');

    const limit = await send(plain.port, { method: 'POST', body: 'y'.repeat(1000), keepAlive: true });
    assert.equal(limit.status, 200, 'exactly maxBodyBytes is allowed');
    assert.equal(limit.headers.connection, 'keep-alive');
    assert.equal((JSON.parse(limit.body) as Echo).body.length, 1000);
    const small = await send(plain.port, { method: 'POST', body: 'z'.repeat(999), chunked: true });
    assert.equal(small.status, 200);
    assert.equal((JSON.parse(small.body) as Echo).body, 'z'.repeat(999));
  });

  test('HEAD relays the headers without a body', async () => {
    const reply = await send(plain.port, { method: 'HEAD' });
    assert.equal(reply.status, 200);
    assert.equal(reply.body, '');
  });

  test('counts requests and relayed responses', () => {
    const stats = plain.proxy.stats();
    assert.equal(stats.answered[413], 2);
    assert.equal(stats.answered[501], 1);
    assert.equal(stats.inFlight, 0);
    assert.equal(stats.requests, stats.upstreamResponses['2xx'] + stats.answered[413] + stats.answered[501]);
    const [view] = plain.proxy.upstreams('svc');
    assert.equal(view?.inFlight, 0);
    assert.equal(view?.failures, 0);
    assert.ok(view!.requests > 10);
    assert.ok(view!.ewmaLatencyMs > 0);
  });
});

describe('response headers', () => {
  test('hop-by-hop response headers are removed, the others relayed with their duplicates', async () => {
    const up = await upstream((req, res) => {
      req.resume();
      res.writeHead(201, 'Made', [
        'Connection', 'X-Up-Hop',
        'X-Up-Hop', '1',
        'Keep-Alive', 'timeout=9',
        'Proxy-Authenticate', 'Basic',
        'Trailer', 'X-T',
        'X-Kept', 'yes',
        'Set-Cookie', 'a=1',
        'Set-Cookie', 'b=2',
      ]);
      res.end('made');
    });
    const catalog = catalogOf('svc', [['a', up.port]]);
    const proxy = new Proxy({ catalog, defaults: policy(), allowLinkLocal: false });
    const server = await front(proxy, catalog, { service: 'svc', policy: policy(), preset: { 'x-request-id': 'r-1' } });
    const proxied = { port: server.port, close: async () => (await server.close(), await proxy.close()) };
    try {
      const reply = await send(proxied.port);
      assert.equal(reply.status, 201);
      assert.equal(reply.headers['x-request-id'], 'r-1', 'headers the route set are kept');
      assert.equal(reply.body, 'made');
      assert.equal(reply.headers['x-up-hop'], undefined);
      assert.equal(reply.headers['proxy-authenticate'], undefined);
      assert.equal(reply.headers.trailer, undefined);
      assert.notEqual(reply.headers['keep-alive'], 'timeout=9');
      assert.equal(reply.headers['x-kept'], 'yes');
      assert.deepEqual(reply.headers['set-cookie'], ['a=1', 'b=2']);
    } finally {
      await proxied.close();
      await up.close();
    }
  });
});

describe('answers of its own', () => {
  test('503 when no instance is eligible', async () => {
    const none = await proxyFront(catalogOf('svc', [['a', 1, { status: 'draining' }]]), policy());
    try {
      const reply = await send(none.port);
      assert.equal(reply.status, 503);
      assert.deepEqual(errorBody(reply), { message: 'No instance of service svc is available.', code: 'SERVICE_UNAVAILABLE' });
    } finally {
      await none.close();
    }
  });

  test('502 on a refused connection and on a connection reset; 504 on a silent instance, within bounds', async () => {
    const resetting = await upstream(reset);
    const hanging = await upstream(hang);
    const refused = await proxyFront(catalogOf('svc', [['a', await closedPort()]]), policy());
    const cut = await proxyFront(catalogOf('svc', [['a', resetting.port]]), policy());
    const silent = await proxyFront(catalogOf('svc', [['a', hanging.port]]), policy({ requestTimeoutMs: 300 }));
    try {
      const r1 = await send(refused.port);
      assert.equal(r1.status, 502);
      assert.equal(errorBody(r1).code, 'BAD_GATEWAY');
      const r2 = await send(cut.port);
      assert.equal(r2.status, 502);
      assert.equal(errorBody(r2).code, 'BAD_GATEWAY');
      assert.equal(resetting.hits, 1);
      const r3 = await send(silent.port);
      assert.equal(r3.status, 504);
      assert.equal(errorBody(r3).code, 'GATEWAY_TIMEOUT');
      assert.ok(r3.ms >= 290 && r3.ms < 1000, `answered after ${r3.ms} ms`);
      assert.equal(hanging.hits, 1);
      assert.equal(refused.proxy.stats().answered[502], 1);
      assert.equal(silent.proxy.stats().answered[504], 1);
      assert.equal(silent.proxy.upstreams()[0]?.failures, 1);
    } finally {
      await Promise.all([refused.close(), cut.close(), silent.close()]);
      await Promise.all([resetting.close(), hanging.close()]);
    }
  });

  test('a slow instance within the timeout is answered; a 5xx without retries is relayed as it is', async () => {
    const slow = await upstream(status(200, 150));
    const failing = await upstream(status(503));
    const s = await proxyFront(catalogOf('svc', [['a', slow.port]]), policy({ requestTimeoutMs: 400 }));
    const f = await proxyFront(catalogOf('svc', [['a', failing.port]]), policy());
    try {
      const r1 = await send(s.port);
      assert.equal(r1.status, 200);
      assert.ok(r1.ms >= 140, `answered after ${r1.ms} ms`);
      const r2 = await send(f.port);
      assert.equal(r2.status, 503);
      assert.equal(r2.body, 'status 503');
      assert.equal(f.proxy.stats().upstreamResponses['5xx'], 1);
      assert.equal(f.proxy.stats().answered[503], 0);
    } finally {
      await Promise.all([s.close(), f.close()]);
      await Promise.all([slow.close(), failing.close()]);
    }
  });

  test('an instance that goes silent in the middle of its body: the client connection is cut', async () => {
    const stalling = await upstream((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-length': '100' });
      res.write('only part');
    });
    const proxied = await proxyFront(catalogOf('svc', [['a', stalling.port]]), policy({ requestTimeoutMs: 200 }));
    try {
      const started = performance.now();
      await assert.rejects(send(proxied.port));
      const ms = performance.now() - started;
      assert.ok(ms >= 190 && ms < 1000, `cut after ${ms} ms`);
    } finally {
      await proxied.close();
      await stalling.close();
    }
  });
});
