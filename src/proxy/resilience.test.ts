import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Catalog } from '../core/catalog.ts';
import type { LocalEvent } from '../core/events.ts';
import { Proxy } from './proxy.ts';
import { catalogOf } from '../core/fixtures.ts';
import { closedPort, echo, errorBody, front, hang, policy, proxyFront, reset, send, status, upstream, type Echo } from './test-support.ts';


function localEvents(catalog: Catalog): LocalEvent[] {
  const events: LocalEvent[] = [];
  catalog.subscribe({ event: () => undefined, reset: () => undefined, local: (e) => events.push(e) });
  return events;
}

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

describe('retries', () => {
  test('an idempotent request is retried on another instance after a 5xx; the 5xx body never reaches the client', async () => {
    const failing = await upstream(status(503));
    const ok = await upstream(echo);
    const proxied = await proxyFront(catalogOf('svc', [['a', failing.port], ['b', ok.port]]), policy({ retries: 1 }));
    try {
      const reply = await send(proxied.port, { path: '/r?q=1' });
      assert.equal(reply.status, 200);
      assert.equal((JSON.parse(reply.body) as Echo).url, '/r?q=1');
      assert.equal(failing.hits, 1);
      assert.equal(ok.hits, 1);
      assert.equal(proxied.proxy.stats().retries, 1);
    } finally {
      await proxied.close();
      await Promise.all([failing.close(), ok.close()]);
    }
  });

  test('retries stop at policy.retries: the last 5xx is relayed', async () => {
    const a = await upstream(status(500));
    const b = await upstream(status(500));
    const proxied = await proxyFront(catalogOf('svc', [['a', a.port], ['b', b.port]]), policy({ retries: 2 }));
    try {
      const reply = await send(proxied.port);
      assert.equal(reply.status, 500);
      assert.equal(reply.body, 'status 500');
      assert.equal(a.hits + b.hits, 3);
      assert.ok(a.hits >= 1 && b.hits >= 1, 'every instance was tried before one was tried again');
      assert.equal(proxied.proxy.stats().retries, 2);
    } finally {
      await proxied.close();
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('a POST is not retried after a 5xx, nor after a reset once sent, but is after a refused connection', async () => {
    const failing = await upstream(status(500));
    const resetting = await upstream(reset);
    const ok = await upstream(echo);
    const closed = await closedPort();
    const after5xx = await proxyFront(catalogOf('svc', [['a', failing.port], ['b', ok.port]]), policy({ retries: 2 }));
    const afterReset = await proxyFront(catalogOf('svc', [['a', resetting.port], ['b', ok.port]]), policy({ retries: 2 }));
    const refused = await proxyFront(catalogOf('svc', [['a', closed], ['b', ok.port]]), policy({ retries: 1 }));
    try {
      // Without a body, so that only the method decides (a streamed body is never sent twice anyway).
      const r1 = await send(after5xx.port, { method: 'POST' });
      assert.equal(r1.status, 500);
      assert.equal(failing.hits, 1);
      assert.equal(ok.hits, 0);

      const r2 = await send(afterReset.port, { method: 'PATCH' });
      assert.equal(r2.status, 502);
      assert.equal(resetting.hits, 1);
      assert.equal(ok.hits, 0);

      // Round robin starts with 'a', the closed port; the large streamed body was never read, so it can go to 'b'.
      const big = 'p'.repeat(200_000);
      const r3 = await send(refused.port, { method: 'POST', body: big });
      assert.equal(r3.status, 200);
      assert.equal((JSON.parse(r3.body) as Echo).body, big);
      assert.equal(ok.hits, 1);
      assert.equal(refused.proxy.stats().retries, 1);
      assert.equal(refused.proxy.upstreams().find((u) => u.id === 'a')?.failures, 1);
    } finally {
      await Promise.all([after5xx.close(), afterReset.close(), refused.close()]);
      await Promise.all([failing.close(), resetting.close(), ok.close()]);
    }
  });

  test('a retry goes to an instance not tried yet even when the strategy keeps choosing the same one', async () => {
    const x = await upstream(status(503));
    const y = await upstream(status(503));
    const catalog = catalogOf('svc', [['x', x.port], ['y', y.port]]);
    const p = policy({ retries: 1 });
    const proxy = new Proxy({ catalog, defaults: p, allowLinkLocal: false });
    const server = await front(proxy, catalog, { service: 'svc', policy: p, strategy: 'consistent-hash' });
    try {
      assert.equal((await send(server.port)).status, 503);
      assert.deepEqual([x.hits, y.hits], [1, 1]);
    } finally {
      await server.close();
      await proxy.close();
      await Promise.all([x.close(), y.close()]);
    }
  });

  test('an idempotent request is retried after a reset and after a timeout', async () => {
    const resetting = await upstream(reset);
    const hanging = await upstream(hang);
    const ok = await upstream(echo);
    const afterReset = await proxyFront(catalogOf('svc', [['a', resetting.port], ['b', ok.port]]), policy({ retries: 1 }));
    const afterTimeout = await proxyFront(catalogOf('svc', [['a', hanging.port], ['b', ok.port]]), policy({ retries: 1, requestTimeoutMs: 200 }));
    try {
      assert.equal((await send(afterReset.port, { method: 'DELETE' })).status, 200);
      assert.equal(resetting.hits, 1);
      const slow = await send(afterTimeout.port);
      assert.equal(slow.status, 200);
      assert.ok(slow.ms >= 190, `answered after ${slow.ms} ms`);
      assert.equal(hanging.hits, 1);
      assert.equal(ok.hits, 2);
    } finally {
      await Promise.all([afterReset.close(), afterTimeout.close()]);
      await Promise.all([resetting.close(), hanging.close(), ok.close()]);
    }
  });

  test('a small PUT body is kept for a retry; a large one is streamed and not retried once sent', async () => {
    const failing = await upstream(status(503));
    const ok = await upstream(echo);
    const proxied = await proxyFront(catalogOf('svc', [['a', failing.port], ['b', ok.port]]), policy({ retries: 1 }));
    try {
      const small = 's'.repeat(60 * 1024);
      const r1 = await send(proxied.port, { method: 'PUT', body: small });
      assert.equal(r1.status, 200);
      assert.equal((JSON.parse(r1.body) as Echo).body, small);
      assert.equal(failing.hits, 1);
      assert.equal(ok.hits, 1);

      // Round robin is back at 'a'.
      const r2 = await send(proxied.port, { method: 'PUT', body: 'L'.repeat(100 * 1024) });
      assert.equal(r2.status, 503);
      assert.equal(failing.hits, 2);
      assert.equal(ok.hits, 1);

      const r3 = await send(proxied.port, { method: 'PUT', body: 'c'.repeat(1000), chunked: true });
      assert.equal(r3.status, 200, 'round robin picked b');
      const r4 = await send(proxied.port, { method: 'PUT', body: 'c'.repeat(1000), chunked: true });
      assert.equal(r4.status, 503, 'a chunked body is streamed, so not retried');
      assert.equal(failing.hits, 3);
    } finally {
      await proxied.close();
      await Promise.all([failing.close(), ok.close()]);
    }
  });

  test('the retry budget stops retries once spent', async () => {
    const failing = await upstream(status(503));
    // 0 % of requests, but 1 retry per second: 10 retries in the 10 s window.
    const proxied = await proxyFront(
      catalogOf('svc', [['a', failing.port]]),
      policy({ retries: 3, retryBudgetPercent: 0, minRetriesPerSecond: 1 }),
    );
    try {
      for (let i = 0; i < 5; i++) assert.equal((await send(proxied.port)).status, 503);
      // Requests 1-3: 1 + 3 retries each; request 4: 1 + the 10th retry; request 5: no retry left.
      assert.equal(failing.hits, 4 + 4 + 4 + 2 + 1);
      const stats = proxied.proxy.stats();
      assert.equal(stats.retries, 10);
      assert.equal(stats.retriesDeniedByBudget, 2);
    } finally {
      await proxied.close();
      await failing.close();
    }
  });
});

/** An instance whose behaviour the test switches. */
function switchable(): { handler: (req: IncomingMessage, res: ServerResponse) => void; mode: 'fail' | 'ok' | 'slow-ok' } {
  const state = {
    mode: 'fail' as 'fail' | 'ok' | 'slow-ok',
    handler: (req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      if (state.mode === 'fail') res.writeHead(500).end('fail');
      else setTimeout(() => res.writeHead(200).end('ok'), state.mode === 'slow-ok' ? 150 : 0);
    },
  };
  return state;
}

test('a connect timeout is a 504, and retried whatever the method: nothing was sent', async () => {
  // An https instance whose port accepts TCP but never answers the TLS handshake: the connection never completes.
  const sockets = new Set<Socket>();
  const silentTcp = createTcpServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => silentTcp.listen(0, '127.0.0.1', resolve));
  const silentPort = (silentTcp.address() as AddressInfo).port;
  const ok = await upstream(echo);
  const alone = await proxyFront(catalogOf('svc', [['a', silentPort, { scheme: 'https' }]]), policy({ connectTimeoutMs: 200 }));
  const withOther = await proxyFront(catalogOf('svc', [['a', silentPort, { scheme: 'https' }], ['b', ok.port]]), policy({ connectTimeoutMs: 200, retries: 1 }));
  try {
    const r1 = await send(alone.port, { method: 'POST', body: 'x' });
    assert.equal(r1.status, 504);
    assert.deepEqual(errorBody(r1), { message: 'Connecting to an instance of service svc timed out.', code: 'GATEWAY_TIMEOUT' });
    assert.ok(r1.ms >= 190 && r1.ms < 1500, `answered after ${r1.ms} ms`);
    const r2 = await send(withOther.port, { method: 'POST', body: 'y' });
    assert.equal(r2.status, 200);
    assert.equal((JSON.parse(r2.body) as Echo).body, 'y');
    assert.equal(ok.hits, 1);
  } finally {
    await Promise.all([alone.close(), withOther.close()]);
    await ok.close();
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => silentTcp.close(() => resolve()));
  }
});

describe('circuit breaker', () => {
  test('opens after N failures, refuses until breakerOpenMs, then lets exactly one trial through, which closes it', async () => {
    const behaviour = switchable();
    const instance = await upstream(behaviour.handler);
    const proxied = await proxyFront(catalogOf('svc', [['a', instance.port]]), policy({ breakerFailures: 3, breakerOpenMs: 300 }));
    try {
      for (let i = 0; i < 3; i++) assert.equal((await send(proxied.port)).status, 500);
      assert.equal(instance.hits, 3);
      const breaker = proxied.proxy.upstreams('svc')[0]!.breaker;
      assert.equal(breaker.state, 'open');
      assert.equal(breaker.consecutiveFailures, 3);
      assert.equal(breaker.nextTrialAt! - breaker.openedAt!, 300);

      const refused = await send(proxied.port);
      assert.equal(refused.status, 503);
      assert.equal(errorBody(refused).code, 'SERVICE_UNAVAILABLE');
      assert.equal(instance.hits, 3, 'no request reached the instance while open');

      await sleep(Math.max(0, breaker.nextTrialAt! - Date.now()) + 20);
      behaviour.mode = 'slow-ok';
      const both = await Promise.all([send(proxied.port), sleep(30).then(() => send(proxied.port))]);
      assert.deepEqual(both.map((r) => r.status), [200, 503], 'one trial; the other request was refused');
      assert.equal(instance.hits, 4);
      assert.equal(proxied.proxy.upstreams('svc')[0]!.breaker.state, 'closed');
      assert.equal((await send(proxied.port)).status, 200);
      assert.equal(instance.hits, 5);
    } finally {
      await proxied.close();
      await instance.close();
    }
  });

  test('a failed trial opens it again; other instances keep serving meanwhile', async () => {
    const behaviour = switchable();
    const bad = await upstream(behaviour.handler);
    const good = await upstream(echo);
    const proxied = await proxyFront(catalogOf('svc', [['a', bad.port], ['b', good.port]]), policy({ breakerFailures: 2, breakerOpenMs: 200 }));
    try {
      // Round robin: a (500), b, a (500): open.
      await send(proxied.port);
      await send(proxied.port);
      await send(proxied.port);
      assert.equal(bad.hits, 2);
      for (let i = 0; i < 4; i++) assert.equal((await send(proxied.port)).status, 200);
      assert.equal(bad.hits, 2);
      await sleep(220);
      // The next picks of a: one trial (fails), then open again.
      for (let i = 0; i < 4; i++) await send(proxied.port);
      assert.equal(bad.hits, 3);
      const breaker = proxied.proxy.upstreams('svc').find((u) => u.id === 'a')!.breaker;
      assert.equal(breaker.state, 'open');
      assert.equal(breaker.opens, 2);
      assert.equal(proxied.proxy.stats().breakersOpen, 1);
    } finally {
      await proxied.close();
      await Promise.all([bad.close(), good.close()]);
    }
  });
});

describe('outlier detection', () => {
  test('ejects after N consecutive 5xx for base x (times + 1), out of picks meanwhile, then restores', async () => {
    const failing = await upstream(status(500));
    const ok = await upstream(echo);
    const catalog = catalogOf('svc', [['a', failing.port], ['b', ok.port]]);
    const events = localEvents(catalog);
    const proxied = await proxyFront(catalog, policy({ outlierConsecutiveFailures: 2, outlierBaseEjectionMs: 300, outlierMaxEjectionMs: 5000, outlierMaxEjectionPercent: 50 }));
    try {
      // Round robin: a, b, a: the second 5xx of a ejects it.
      for (let i = 0; i < 3; i++) await send(proxied.port);
      assert.equal(failing.hits, 2);
      assert.deepEqual(events.map((e) => [e.type, e.id]), [['instance_ejected', 'a']]);
      assert.deepEqual(catalog.service('svc')!.eligible().map((i) => i.id), ['b']);
      const view = proxied.proxy.upstreams('svc').find((u) => u.id === 'a')!;
      assert.equal(view.ejected, true);
      assert.equal(view.outlier.timesEjected, 1);
      assert.ok(view.outlier.ejectedUntil! - Date.now() <= 300);

      for (let i = 0; i < 5; i++) assert.equal((await send(proxied.port)).status, 200);
      assert.equal(failing.hits, 2, 'an ejected instance gets no traffic');

      await until(() => events.length === 2, 1000);
      assert.equal(events[1]!.type, 'instance_restored');
      const ejectedFor = events[1]!.timestamp - events[0]!.timestamp;
      assert.ok(ejectedFor >= 290 && ejectedFor < 600, `ejected for ${ejectedFor} ms`);
      assert.deepEqual(catalog.service('svc')!.eligible().map((i) => i.id), ['a', 'b']);

      // Ejected again: twice the base this time.
      for (let i = 0; i < 4; i++) await send(proxied.port);
      assert.equal(failing.hits, 4);
      assert.equal(events[2]?.type, 'instance_ejected');
      assert.match(events[2]!.reason, /ejected for 600 ms/);
      assert.deepEqual(proxied.proxy.stats().outlier, { ejectionsTotal: 2, restoresTotal: 1, cappedTotal: 0, ejectedNow: 1 });
    } finally {
      await proxied.close();
      await Promise.all([failing.close(), ok.close()]);
    }
    assert.equal(events.at(-1)?.type, 'instance_restored', 'closing the proxy lifts its ejections');
  });

  test('never ejects more than outlierMaxEjectionPercent of the instances; connection failures count too', async () => {
    const closed = await closedPort();
    const failing = await upstream(status(503));
    const catalog = catalogOf('svc', [['a', closed], ['b', failing.port]]);
    const events = localEvents(catalog);
    const proxied = await proxyFront(catalog, policy({ outlierConsecutiveFailures: 2, outlierBaseEjectionMs: 5000, outlierMaxEjectionPercent: 50 }));
    try {
      for (let i = 0; i < 8; i++) await send(proxied.port);
      assert.deepEqual(events.map((e) => [e.type, e.id]), [['instance_ejected', 'a']]);
      assert.equal(failing.hits, 6, 'b stayed in: ejecting it too would exceed 50 %');
      const stats = proxied.proxy.stats().outlier;
      assert.equal(stats.ejectedNow, 1);
      assert.equal(stats.cappedTotal, 3);
    } finally {
      await proxied.close();
      await failing.close();
    }
  });
});
