import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { EventEmitter } from 'node:events';
import type { FastifyReply } from 'fastify';
import { call, startTestMaxine, type TestMaxine, type TestResponse } from '../helpers/maxine.ts';
import { Catalog } from '../../src/core/catalog.ts';
import type { AppContext } from '../../src/http/context.ts';
import { blockingIndex } from '../../src/http/blocking.ts';
import { RevisionWaiters } from '../../src/registry/revision-waiters.ts';

const SERVERS = '/api/maxine/serviceops/servers';

function indexOf(response: TestResponse): number {
  assert.equal(response.status, 200, response.text);
  const header = response.headers.get('x-maxine-index');
  assert.ok(header !== null && /^[0-9]+$/.test(header), `X-Maxine-Index: ${header}`);
  return Number(header);
}

/** A request in flight, with when it was answered. */
function timed(response: Promise<TestResponse>): { done: boolean; promise: Promise<TestResponse & { ms: number }> } {
  const started = performance.now();
  const state = {
    done: false,
    promise: response.then((r) => {
      state.done = true;
      return { ...r, ms: performance.now() - started };
    }),
  };
  return state;
}

describe('blocking queries on the listings', () => {
  let maxine: TestMaxine;
  let port = 9000;
  const register = (serviceName: string, nodeName = 'n1') =>
    maxine.call('POST', '/api/maxine/serviceops/register', { serviceName, nodeName, hostName: '10.0.0.5', port: port++, timeOut: 60 });

  before(async () => {
    maxine = await startTestMaxine();
  });
  after(() => maxine.stop());

  test('every listing carries X-Maxine-Index, at least 1', async () => {
    for (const path of [SERVERS, `${SERVERS}?format=v2`, `${SERVERS}?serviceName=nothing`, '/servers']) {
      assert.ok(indexOf(await maxine.call('GET', path)) >= 1, path);
    }
  });

  test('a parked listing answers as soon as a registration changes it', async () => {
    const index = indexOf(await maxine.call('GET', `${SERVERS}?format=v2`));
    const parked = timed(maxine.call('GET', `${SERVERS}?format=v2&index=${index}&wait=5s`));
    await sleep(150);
    assert.equal(parked.done, false, 'nothing changed yet');
    await register('blocking-new');
    const answer = await parked.promise;
    assert.ok(indexOf(answer) > index);
    assert.ok(answer.ms < 2000, `answered after ${answer.ms} ms`);
    assert.ok(answer.json.services.some((s: { name: string }) => s.name === 'blocking-new'));
  });

  test("a listing of one service is not released by another service's change", async () => {
    await register('scope-a');
    await register('scope-b');
    const index = indexOf(await maxine.call('GET', `${SERVERS}?format=v2&serviceName=scope-a`));
    const parked = timed(maxine.call('GET', `${SERVERS}?format=v2&serviceName=scope-a&index=${index}&wait=5s`));
    await register('scope-b', 'n2');
    await sleep(300);
    assert.equal(parked.done, false, "scope-b's change left scope-a's listing waiting");
    await register('scope-a', 'n2');
    const answer = await parked.promise;
    assert.ok(indexOf(answer) > index);
    assert.equal(answer.json.services[0].instances.length, 2);
  });

  test('when the wait ends the listing answers with the same index', async () => {
    const index = indexOf(await maxine.call('GET', SERVERS));
    for (const wait of ['200ms', '300']) {
      const answer = await timed(maxine.call('GET', `${SERVERS}?index=${index}&wait=${wait}`)).promise;
      assert.equal(indexOf(answer), index, wait);
      const ms = parseInt(wait, 10);
      assert.ok(answer.ms >= ms - 10 && answer.ms < ms + ms / 16 + 1000, `wait=${wait} answered after ${answer.ms} ms`);
    }
  });

  test('index 0 or an index ahead answers at once', async () => {
    const index = indexOf(await maxine.call('GET', SERVERS));
    for (const held of [0, index + 1000]) {
      const answer = await timed(maxine.call('GET', `${SERVERS}?index=${held}&wait=5s`)).promise;
      assert.equal(indexOf(answer), index);
      assert.ok(answer.ms < 1000, `index=${held} answered after ${answer.ms} ms`);
    }
  });

  test('the index never goes backwards', async () => {
    const last = new Map<string, number>();
    for (let i = 0; i < 10; i++) {
      const steps = [
        () => register('monotonic', `n${i}`),
        () => maxine.call('DELETE', '/api/maxine/serviceops/deregister', { serviceName: 'monotonic', nodeName: `n${i}` }),
        () => maxine.call('PUT', '/api/maxine/control/config', { heartBeatTimeout: 5 + i }),
      ];
      for (const step of steps) {
        assert.ok((await step()).status < 300);
        for (const path of [SERVERS, `${SERVERS}?serviceName=monotonic`, '/servers']) {
          const index = indexOf(await maxine.call('GET', path));
          assert.ok(index >= (last.get(path) ?? 1), `${path}: ${index} after ${last.get(path)}`);
          last.set(path, index);
        }
      }
    }
    const removed = indexOf(await maxine.call('GET', `${SERVERS}?serviceName=monotonic`));
    await register('another-service');
    assert.equal(indexOf(await maxine.call('GET', `${SERVERS}?serviceName=monotonic`)), removed, 'a removed service keeps its index');
  });

  test('bad wait and index values are refused with 400 naming the field', async () => {
    const cases: [string, string][] = [
      ['index=1&wait=5x', 'wait'],
      ['index=1&wait=-1s', 'wait'],
      ['index=1&wait=5%20s', 'wait'],
      ['index=1&wait=', 'wait'],
      ['index=-1', 'index'],
      ['index=abc', 'index'],
      ['index=1.5', 'index'],
      ['index=12345678901234567890', 'index'],
    ];
    for (const [query, field] of cases) {
      for (const path of [SERVERS, '/servers']) {
        const res = await maxine.call('GET', `${path}?${query}`);
        assert.equal(res.status, 400, `${path}?${query}: ${res.text}`);
        assert.equal(res.json.code, 'VALIDATION_FAILED');
        assert.equal(res.json.details[0].field, field, `${path}?${query}`);
      }
    }
  });

  test('Lightning /servers blocks the same way', async () => {
    const index = indexOf(await maxine.call('GET', '/servers'));
    const parked = timed(maxine.call('GET', `/servers?index=${index}&wait=5s`));
    await sleep(150);
    assert.equal(parked.done, false);
    assert.equal((await maxine.call('POST', '/register', { serviceName: 'lightning-blocking', host: '10.0.0.6', port: 4000 })).status, 200);
    const answer = await parked.promise;
    assert.ok(indexOf(answer) > index);
    assert.ok(answer.ms < 2000);
    assert.ok(answer.json.services.includes('lightning-blocking'));
    const timedOut = await timed(maxine.call('GET', `/servers?index=${indexOf(answer)}&wait=100ms`)).promise;
    assert.equal(indexOf(timedOut), indexOf(answer));
  });

  test('2,000 parked listings are all released by one change, and the server stays responsive', async () => {
    await register('probe');
    const agent = new Agent({ keepAlive: true, maxSockets: 2000 });
    try {
      const auth = { authorization: `Bearer ${maxine.adminToken}` };
      const index = indexOf(await call(maxine.url, 'GET', SERVERS, undefined, auth, agent));
      const parked = Array.from({ length: 2000 }, (_, i) =>
        timed(call(maxine.url, 'GET', i % 2 === 0 ? `${SERVERS}?format=v2&index=${index}&wait=60s` : `/servers?index=${index}&wait=1m`, undefined, auth, agent)),
      );
      // Give the requests time to reach the server and park; none may be answered before the change.
      for (let tries = 0; tries < 100 && Object.values(agent.sockets).flat().length < 2000; tries++) await sleep(50);
      await sleep(500);
      const started = performance.now();
      const discover = await maxine.call('GET', '/api/maxine/serviceops/discover?serviceName=probe&format=json');
      const took = performance.now() - started;
      assert.equal(discover.status, 200);
      assert.ok(took < 1000, `a discover took ${took} ms with 2,000 listings parked`);
      assert.equal(parked.filter((p) => p.done).length, 0, 'nothing was answered before the change');

      const released = performance.now();
      await register('release-them');
      const answers = await Promise.all(parked.map((p) => p.promise));
      const releaseMs = performance.now() - released;
      for (const answer of answers) assert.ok(indexOf(answer) > index);
      assert.ok(releaseMs < 10_000, `releasing took ${releaseMs} ms`);
    } finally {
      agent.destroy();
    }
  });

  test('a client that hangs up while parked leaves the server unharmed', async () => {
    const index = indexOf(await maxine.call('GET', SERVERS));
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    const auth = { authorization: `Bearer ${maxine.adminToken}` };
    const parked = call(maxine.url, 'GET', `${SERVERS}?index=${index}&wait=60s`, undefined, auth, agent).catch((error: Error) => error);
    await sleep(150);
    agent.destroy();
    assert.ok((await parked) instanceof Error);
    // The server is unharmed by the request it could no longer answer.
    await register('after-hang-up');
    assert.ok(indexOf(await maxine.call('GET', SERVERS)) > index);
  });
});

test('stopping the server answers parked listings instead of waiting for them', async () => {
  const maxine = await startTestMaxine();
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  try {
    const auth = { authorization: `Bearer ${maxine.adminToken}` };
    const index = indexOf(await call(maxine.url, 'GET', SERVERS, undefined, auth, agent));
    const parked = timed(call(maxine.url, 'GET', `${SERVERS}?index=${index}&wait=60s`, undefined, auth, agent));
    await sleep(150);
    const started = performance.now();
    await maxine.close();
    assert.ok(performance.now() - started < 5000, 'close did not wait for the parked listing');
    const answer = await parked.promise;
    assert.equal(indexOf(answer), index);
  } finally {
    agent.destroy();
    await maxine.stop();
  }
});

test("a parked listing's waiter is released when its client's connection closes", async () => {
  const revisionWaiters = new RevisionWaiters(new Catalog(10));
  const raw = new EventEmitter();
  const headers: Record<string, string> = {};
  const reply = { raw, header: (name: string, value: string) => (headers[name] = value) } as unknown as FastifyReply;
  const parked = blockingIndex({ revisionWaiters } as unknown as AppContext, reply, 'a', { index: '1', wait: '1m' });
  assert.equal(revisionWaiters.size, 1);
  raw.emit('close');
  await parked;
  assert.equal(revisionWaiters.size, 0);
  assert.equal(raw.listenerCount('close'), 0);
  assert.equal(headers['x-maxine-index'], '1');
  const alreadyGone = Object.assign(new EventEmitter(), { destroyed: true });
  const late = { raw: alreadyGone, header: () => undefined } as unknown as FastifyReply;
  const answered = blockingIndex({ revisionWaiters } as unknown as AppContext, late, 'a', { index: '1', wait: '1m' });
  assert.equal(revisionWaiters.size, 0, 'a client gone before the handler ran does not park');
  await answered;
  revisionWaiters.close();
});
