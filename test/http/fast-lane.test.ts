import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout } from 'node:timers/promises';
import { startTestMaxine, type TestMaxine, type TestResponse } from '../helpers/maxine.ts';
import { parseScrape, valueOf } from '../helpers/prometheus.ts';

// The fast lane (src/http/fast-lane.ts) answers GET /api/maxine/serviceops/discover?… spelled exactly so;
// the router answers every other spelling, a trailing slash included, through the same route. Comparing
// the two answers to the same query is comparing the fast lane with the route it stands in for.
const LANE = '/api/maxine/serviceops/discover?';
const ROUTER = '/api/maxine/serviceops/discover/?';
const ANONYMOUS = { authorization: '' };

/** Headers that differ between any two responses, whoever answers. */
const PER_RESPONSE = new Set(['date', 'x-request-id', 'connection', 'keep-alive']);

function comparable(response: TestResponse): { status: number; headers: Record<string, string>; body: string } {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    if (!PER_RESPONSE.has(name)) headers[name] = value;
  });
  return { status: response.status, headers, body: response.text };
}

async function laneAnswers(maxine: TestMaxine): Promise<number> {
  const scrape = await maxine.call('GET', '/metrics');
  assert.equal(scrape.status, 200, scrape.text);
  return valueOf(parseScrape(scrape.text), 'maxine_http_fast_lane_total');
}

function register(maxine: TestMaxine, serviceName: string, nodeName: string, extra: Record<string, unknown> = {}) {
  return maxine.call('POST', '/api/maxine/serviceops/register', { hostName: '10.1.2.3', nodeName, serviceName, port: 9000, timeOut: 600, ...extra });
}

describe('the discover fast lane', () => {
  let maxine: TestMaxine;

  before(async () => {
    maxine = await startTestMaxine();
    for (const [service, node, extra] of [
      ['orders', 'orders-1', { tags: ['blue', 'eu'], version: '2.1.0', zone: 'eu-west-1a', metadata: { tier: 'gold' }, path: '/v2' }],
      ['rotating', 'r-1', {}],
      ['rotating', 'r-2', {}],
      ['rotating', 'r-3', {}],
    ] as const) {
      const registered = await register(maxine, service, node, extra);
      assert.equal(registered.status, 200, registered.text);
    }
  });
  after(() => maxine.stop());

  it('answers exactly what the route answers, and counts what it answers', async () => {
    const queries = [
      'serviceName=orders&format=json',
      'serviceName=orders&endPoint=/health',
      'serviceName=orders&endPoint=health%3Fdeep%3D1',
      'serviceName=orders',
      'serviceName=orders&format=redirect&mode=redirect',
      'serviceName=nobody&format=json',
      'serviceName=orders&format=json&tags=blue,eu&version=2.1.0&zone=eu-west-1a&meta=tier:gold',
      'serviceName=orders&format=json&tags=green',
      'serviceName=orders&format=json&strategy=consistent-hash&key=user-42',
      'serviceName=orders&format=json&strategy=RR',
      'format=json&serviceName=orders',
      'serviceName=%6Frders&format=json',
    ];
    for (const headers of [{}, ANONYMOUS, { ...ANONYMOUS, traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }]) {
      for (const query of queries) {
        const before = await laneAnswers(maxine);
        const fast = await maxine.call('GET', LANE + query, undefined, headers);
        const counted = (await laneAnswers(maxine)) - before;
        const routed = await maxine.call('GET', ROUTER + query, undefined, headers);
        assert.equal((await laneAnswers(maxine)) - before, counted, `${query}: the router's answer is not the fast lane's`);
        assert.deepEqual(comparable(fast), comparable(routed), `${query} with ${JSON.stringify(headers)}`);
        assert.equal(counted, 1, `${query}: answered by the fast lane`);
        assert.ok(fast.headers.get('x-request-id'), 'a request id');
      }
    }
  });

  it('keeps the request ids of both paths unique, and takes a sane caller id', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 20; i++) {
      ids.add((await maxine.call('GET', `${i % 2 ? LANE : ROUTER}serviceName=orders&format=json`)).headers.get('x-request-id')!);
    }
    assert.equal(ids.size, 20);
    const given = await maxine.call('GET', `${LANE}serviceName=orders&format=json`, undefined, { 'x-request-id': 'caller-id.1' });
    assert.equal(given.headers.get('x-request-id'), 'caller-id.1');
  });

  it('shares the round-robin position with the route', async () => {
    const picks: string[] = [];
    for (let i = 0; i < 30; i++) {
      const answer = await maxine.call('GET', `${i % 3 === 0 ? ROUTER : LANE}serviceName=rotating&format=json`);
      assert.equal(answer.status, 200, answer.text);
      picks.push(answer.json.nodeName);
    }
    for (let i = 3; i < picks.length; i++) assert.equal(picks[i], picks[i - 3], `pick ${i} follows the rotation: ${picks.join(' ')}`);
    assert.deepEqual(new Set(picks.slice(0, 3)), new Set(['r-1', 'r-2', 'r-3']));
  });

  it('answers as before, on the fast lane, URLs it checked once and then dropped to stay within its bound', async () => {
    // More distinct URLs than the fast lane keeps checked (2,048): it drops them all once and checks them again.
    const urls = Array.from({ length: 2_100 }, (_, i) => `${LANE}serviceName=rotating&format=json&key=k${i}`);
    const before = await laneAnswers(maxine);
    for (let i = 0; i < urls.length; i += 50) {
      const answers = await Promise.all(urls.slice(i, i + 50).map((url) => maxine.call('GET', url)));
      for (const answer of answers) assert.equal(answer.status, 200, answer.text);
    }
    for (const url of [urls[0]!, urls.at(-1)!]) {
      const fast = await maxine.call('GET', url);
      const routed = await maxine.call('GET', url.replace(LANE, ROUTER));
      assert.equal(fast.status, 200, fast.text);
      assert.deepEqual(Object.keys(fast.json), Object.keys(routed.json));
      assert.equal(fast.json.serviceName, 'rotating');
    }
    // The scrape itself and the two routed requests are not the fast lane's.
    assert.equal((await laneAnswers(maxine)) - before, urls.length + 2);
  });

  it('leaves every request it does not answer exactly so to the route, untouched', async () => {
    const hostile = [
      // Wrong or missing input: the route explains it.
      `${LANE}format=json`,
      `${LANE}serviceName=`,
      `${LANE}serviceName=orders&format=JSON`,
      `${LANE}serviceName=orders&serviceName=rotating&format=json`,
      `${LANE}serviceName=orders&unknown=1`,
      `${LANE}__proto__=x&serviceName=orders&format=json`,
      `${LANE}constructor=x&serviceName=orders&format=json`,
      `${LANE}serviceName=__proto__&format=json`,
      `${LANE}serviceName=constructor&format=json`,
      `${LANE}serviceName=../orders&format=json`,
      `${LANE}serviceName=%E2%98%83&format=json`,
      `${LANE}serviceName=a%00b&format=json`,
      `${LANE}serviceName=${'x'.repeat(5000)}&format=json`,
      `${LANE}serviceName=orders&endPoint=/../../etc/passwd`,
      `${LANE}serviceName=orders&format=json&strategy=fastest`,
      `${LANE}serviceName=orders&format=json&meta=nocolon`,
      // Proxying stays with the route (here it fails: nothing listens at the instance's address).
      `${LANE}serviceName=orders&mode=proxy`,
      '/api/maxine/serviceops/discover',
    ];
    // Other spellings of the path: the router decides whether they are this route (it decodes %64, for one).
    const respelled = [
      '/API/maxine/serviceops/discover?serviceName=orders&format=json',
      '/api/maxine/serviceops/Discover?serviceName=orders&format=json',
      '/api/maxine/serviceops/%64iscover?serviceName=orders&format=json',
      '//api/maxine/serviceops/discover?serviceName=orders&format=json',
      '/api/maxine/serviceops/discover;x?serviceName=orders&format=json',
      '/api/maxine/serviceops/discover#x?serviceName=orders&format=json',
    ];
    for (const path of [...hostile, ...respelled]) {
      const before = await laneAnswers(maxine);
      const answer = await maxine.call('GET', path, undefined, ANONYMOUS);
      assert.equal(await laneAnswers(maxine), before, `${path.slice(0, 120)} went to the route`);
      if (respelled.includes(path) || path.includes('mode=proxy')) continue;
      assert.ok(answer.status >= 400 && answer.status < 500, `${path.slice(0, 120)}: ${answer.status} ${answer.text.slice(0, 200)}`);
      assert.equal(typeof answer.json?.message, 'string', `${path.slice(0, 120)}: one JSON error shape`);
      assert.equal(typeof answer.json?.code, 'string');
    }
    // Other methods on the same URL are the router's too.
    for (const method of ['HEAD', 'POST', 'DELETE']) {
      const before = await laneAnswers(maxine);
      await maxine.call(method, `${LANE}serviceName=orders&format=json`);
      assert.equal(await laneAnswers(maxine), before, method);
    }
    assert.equal((await maxine.call('GET', `${LANE}serviceName=orders&format=json`)).status, 200, 'still serving');
  });

  it('counts its answers in the route metrics like the route does', async () => {
    const scrape = async () => parseScrape((await maxine.call('GET', '/metrics')).text);
    const scraped = await scrape();
    const timed = { method: 'GET', route: '/api/maxine/serviceops/discover', status: '2xx' };
    const requestsBefore = valueOf(scraped, 'maxine_requests_total');
    const discoveriesBefore = valueOf(scraped, 'maxine_discoveries_total');
    const timedBefore = valueOf(scraped, 'maxine_http_request_duration_seconds_count', timed);
    for (let i = 0; i < 5; i++) await maxine.call('GET', `${LANE}serviceName=orders&format=json`);
    const after = await scrape();
    // The scrape in between counts as a request too.
    assert.equal(valueOf(after, 'maxine_requests_total') - requestsBefore, 6);
    assert.equal(valueOf(after, 'maxine_discoveries_total') - discoveriesBefore, 5);
    assert.equal(valueOf(after, 'maxine_http_request_duration_seconds_count', timed) - timedBefore, 5);
  });
});

describe('the heartbeat fast lane', () => {
  const LANE_HEARTBEAT = '/api/maxine/serviceops/heartbeat';
  const ROUTER_HEARTBEAT = '/api/maxine/serviceops/heartbeat/';
  let maxine: TestMaxine;

  before(async () => {
    maxine = await startTestMaxine({ bodyLimit: 4096 });
    assert.equal((await register(maxine, 'orders', 'orders-1')).status, 200);
  });
  after(() => maxine.stop());

  /** The same body sent to the fast lane's spelling and to the router's: the answers must match. */
  async function both(body: unknown, headers: Record<string, string> = {}) {
    const before = await laneAnswers(maxine);
    const fast = await maxine.call('POST', LANE_HEARTBEAT, body, headers);
    const counted = (await laneAnswers(maxine)) - before;
    const routed = await maxine.call('POST', ROUTER_HEARTBEAT, body, headers);
    assert.equal((await laneAnswers(maxine)) - before, counted, "the router's answer is not the fast lane's");
    assert.deepEqual(comparable(fast), comparable(routed), `${JSON.stringify(body)?.slice(0, 100)} ${JSON.stringify(headers)}`);
    return { answer: fast, counted };
  }

  it('renews like the route, and answers the same bytes', async () => {
    for (const headers of [{}, ANONYMOUS, { 'content-type': 'application/json; charset=utf-8' }] as Record<string, string>[]) {
      const { answer, counted } = await both({ serviceName: 'orders', nodeName: 'orders-1' }, headers);
      assert.equal(answer.status, 200, answer.text);
      assert.deepEqual(answer.json, { serviceName: 'orders', nodeName: 'orders-1', timeOut: 600 });
      assert.equal(counted, 1, 'answered by the fast lane');
    }
    const extraField = await both({ serviceName: 'orders', nodeName: 'orders-1', note: 'extra fields are allowed' });
    assert.equal(extraField.answer.status, 200);
  });

  it('answers with the lease of the instance as it is now, after a re-registration changed it', async () => {
    const body = { serviceName: 'leases', nodeName: 'leases-1' };
    for (const timeOut of [30, 45, 30]) {
      assert.equal((await register(maxine, 'leases', 'leases-1', { timeOut })).status, 200);
      for (let i = 0; i < 2; i++) {
        const { answer, counted } = await both(body);
        assert.deepEqual(answer.json, { serviceName: 'leases', nodeName: 'leases-1', timeOut });
        assert.equal(counted, 1, 'answered by the fast lane');
      }
    }
  });

  it('hands every body it will not answer to the route, intact, and the route answers as it always has', async () => {
    const handedOver: [unknown, Record<string, string>, number][] = [
      [{ serviceName: 'orders', nodeName: 'nobody' }, {}, 404],
      ['{"serviceName":"orders","nodeName":', {}, 400],
      ['', { 'content-type': 'application/json' }, 400],
      ['null', {}, 400],
      ['[]', {}, 400],
      [{ serviceName: 'orders' }, {}, 400],
      [{ serviceName: 42, nodeName: 'orders-1' }, {}, 400],
      [{ serviceName: '', nodeName: 'orders-1' }, {}, 400],
      [{ serviceName: '../orders', nodeName: 'orders-1' }, {}, 400],
      [{ serviceName: 'orders', nodeName: 'orders 1' }, {}, 400],
      [{ serviceName: 'x'.repeat(300), nodeName: 'orders-1' }, {}, 400],
      [{ serviceName: '\u2603', nodeName: 'orders-1' }, {}, 400],
      ['{"serviceName":"orders","nodeName":"orders-1","__proto__":{"admin":true}}', {}, 400],
      ['{"serviceName":"orders","nodeName":"orders-1","constructor":{"prototype":{"admin":true}}}', {}, 400],
      [{ serviceName: 'orders', nodeName: 'orders-1' }, { 'content-type': 'text/plain' }, 400],
      [{ serviceName: 'orders', nodeName: 'orders-1' }, { 'content-type': 'application/xml' }, 415],
      [{ serviceName: 'orders', nodeName: 'orders-1' }, { 'content-type': 'Application/JSON' }, 200],
      [{ serviceName: 'orders', nodeName: 'orders-1', pad: 'p'.repeat(5000) }, {}, 413],
    ];
    for (const [body, headers, status] of handedOver) {
      const { answer, counted } = await both(body, headers);
      assert.equal(answer.status, status, `${JSON.stringify(body).slice(0, 100)}: ${answer.text.slice(0, 200)}`);
      assert.equal(counted, 0, `${JSON.stringify(body).slice(0, 100)} went to the route`);
      if (status !== 200) assert.equal(typeof answer.json?.code, 'string', 'one JSON error shape');
    }
    const unknown = await maxine.call('POST', LANE_HEARTBEAT, { serviceName: 'orders', nodeName: 'nobody' });
    assert.match(unknown.json.message, /"nobody".*"orders"/, 'the route read the body the fast lane handed over');
    // Longer than the fast lane reads, within the body limit: the route's to answer, and it renews.
    const padded = await both({ serviceName: 'orders', nodeName: 'orders-1', pad: 'p'.repeat(2000) });
    assert.equal(padded.answer.status, 200);
    assert.equal(padded.counted, 0);
  });
});

describe("the fast lane on Lightning mode's routes", () => {
  let maxine: TestMaxine;
  let nodeId: string;

  before(async () => {
    maxine = await startTestMaxine();
    const registered = await maxine.call('POST', '/register', { serviceName: 'orders', host: '10.1.2.3', port: 9000, metadata: { version: '1.2.0', tags: ['blue'] } });
    assert.equal(registered.status, 200, registered.text);
    nodeId = registered.json.nodeId;
  });
  after(() => maxine.stop());

  it('answers discover as the route does, and leaves the rest to it', async () => {
    for (const headers of [{}, ANONYMOUS, { authorization: 'Bearer not-a-token' }] as Record<string, string>[]) {
      for (const query of ['serviceName=orders', 'serviceName=orders&version=1.2.0&tags=blue', 'serviceName=orders&loadBalancing=RR', 'serviceName=nobody', 'serviceName=orders&tags=green']) {
        const before = await laneAnswers(maxine);
        const fast = await maxine.call('GET', `/discover?${query}`, undefined, headers);
        const counted = (await laneAnswers(maxine)) - before;
        const routed = await maxine.call('GET', `/discover/?${query}`, undefined, headers);
        assert.deepEqual(comparable(fast), comparable(routed), `${query} with ${JSON.stringify(headers)}`);
        // Lightning's discover does not pass unknown credentials on: the route refuses them, and the fast lane leaves them to it.
        const refused = headers.authorization === 'Bearer not-a-token';
        assert.equal(fast.status === 401, refused, `${query}: ${fast.status}`);
        assert.equal(counted, refused ? 0 : 1, `${query} with ${JSON.stringify(headers)}`);
      }
    }
    for (const query of ['', 'serviceName=', 'serviceName=orders&format=json', 'serviceName=orders&loadBalancing=fastest', 'serviceName=__proto__', 'serviceName=orders&serviceName=x']) {
      const before = await laneAnswers(maxine);
      const fast = await maxine.call('GET', `/discover?${query}`, undefined, ANONYMOUS);
      assert.equal(await laneAnswers(maxine), before, `${query} went to the route`);
      assert.deepEqual(comparable(fast), comparable(await maxine.call('GET', `/discover/?${query}`, undefined, ANONYMOUS)));
      assert.ok(fast.status >= 400 && fast.status < 500, `${query}: ${fast.status}`);
    }
  });

  it('renews nodes as the route does, and hands it every body it will not answer', async () => {
    for (const [body, status, counted] of [
      [{ nodeId }, 200, 1],
      [{ nodeId: 'orders:10.9.9.9:1' }, 404, 0],
      [{ nodeId: 'no-colon' }, 400, 0],
      [{ nodeId: 42 }, 400, 0],
      [{}, 400, 0],
      ['{"nodeId":"orders:10.1.2.3:9000","__proto__":{"x":1}}', 400, 0],
    ] as const) {
      const before = await laneAnswers(maxine);
      const fast = await maxine.call('POST', '/heartbeat', body);
      assert.equal((await laneAnswers(maxine)) - before, counted, JSON.stringify(body));
      const routed = await maxine.call('POST', '/heartbeat/', body);
      assert.deepEqual(comparable(fast), comparable(routed), JSON.stringify(body));
      assert.equal(fast.status, status, `${JSON.stringify(body)}: ${fast.text}`);
    }
    assert.deepEqual((await maxine.call('POST', '/heartbeat', { nodeId })).json, { success: true });
  });
});

describe('the discover fast lane and access control', () => {
  let maxine: TestMaxine;
  let scopedToken: string;
  let revokedToken: string;

  before(async () => {
    maxine = await startTestMaxine({ requireClientAuth: true });
    for (const service of ['orders', 'billing']) assert.equal((await register(maxine, service, `${service}-1`)).status, 200);
    const token = await maxine.call('POST', '/api/maxine/tokens', { name: 'orders-reader', scopes: [{ actions: ['discover'], services: 'orders' }] });
    assert.equal(token.status, 201, token.text);
    scopedToken = token.json.token;
    const revoked = await maxine.call('POST', '/api/maxine/tokens', { name: 'gone', scopes: [{ actions: ['discover'], services: '*' }] });
    assert.equal(revoked.status, 201, revoked.text);
    assert.equal((await maxine.call('DELETE', `/api/maxine/tokens/${revoked.json.id}`)).status, 200);
    revokedToken = revoked.json.token;
  });
  after(() => maxine.stop());

  /** The audit events of refusals of the request that got this answer. */
  const refusalsOf = async (answer: TestResponse) => {
    const events = (await maxine.call('GET', '/api/actuator/audit?result=denied&limit=100')).json.events as { requestId: string; service: string | null }[];
    return events.filter((event) => event.requestId === answer.headers.get('x-request-id'));
  };

  it('answers a caller the policy allows, and leaves refusals to the route, audited and counted once', async () => {
    const bearer = { authorization: `Bearer ${scopedToken}` };
    let before = await laneAnswers(maxine);
    const allowed = await maxine.call('GET', `${LANE}serviceName=orders&format=json`, undefined, bearer);
    assert.equal(allowed.status, 200, allowed.text);
    assert.equal((await laneAnswers(maxine)) - before, 1, 'the allowed request took the fast lane');

    const failuresBefore = valueOf(parseScrape((await maxine.call('GET', '/metrics')).text), 'maxine_auth_failures_total');
    for (const [headers, service, status] of [
      [bearer, 'billing', 403],
      [ANONYMOUS, 'orders', 401],
      // discover passes credentials it does not know on to the instance: the caller is anonymous, not refused for them.
      [{ authorization: 'Bearer not-a-token' }, 'orders', 401],
      [{ authorization: `Bearer ${revokedToken}` }, 'orders', 401],
    ] as const) {
      before = await laneAnswers(maxine);
      const refused = await maxine.call('GET', `${LANE}serviceName=${service}&format=json`, undefined, headers);
      assert.equal(refused.status, status, `${service} with ${JSON.stringify(headers)}: ${refused.text}`);
      assert.equal(await laneAnswers(maxine), before, 'refused by the route');
      assert.equal((await refusalsOf(refused)).length, 1, 'audited once');
      if (status === 401) assert.match(refused.headers.get('www-authenticate') ?? '', /^Bearer/);
    }
    const failures = valueOf(parseScrape((await maxine.call('GET', '/metrics')).text), 'maxine_auth_failures_total');
    assert.equal(failures - failuresBefore, 1, 'the revoked token counted once');
  });

  it('decides a heartbeat on the service its body names, and hands refusals to the route with the body', async () => {
    const bearer = { authorization: `Bearer ${scopedToken}` };
    const writer = await maxine.call('POST', '/api/maxine/tokens', { name: 'orders-agent', scopes: [{ actions: ['register'], services: 'orders' }] });
    assert.equal(writer.status, 201, writer.text);
    const agent = { authorization: `Bearer ${writer.json.token}` };
    let before = await laneAnswers(maxine);
    const renewed = await maxine.call('POST', '/api/maxine/serviceops/heartbeat', { serviceName: 'orders', nodeName: 'orders-1' }, agent);
    assert.equal(renewed.status, 200, renewed.text);
    assert.equal((await laneAnswers(maxine)) - before, 1);
    // A token that may never register is refused before the body is read, so its refusal names no service.
    for (const [headers, service, status, audited] of [
      [agent, 'billing', 403, 'billing'],
      [bearer, 'orders', 403, null],
      [ANONYMOUS, 'orders', 401, null],
    ] as const) {
      before = await laneAnswers(maxine);
      const refused = await maxine.call('POST', '/api/maxine/serviceops/heartbeat', { serviceName: service, nodeName: `${service}-1` }, headers);
      assert.equal(refused.status, status, refused.text);
      assert.equal(await laneAnswers(maxine), before);
      assert.deepEqual((await refusalsOf(refused)).map((event) => event.service), [audited], 'audited once');
    }
  });
});

describe('the fast lane with tracing on', () => {
  it('is not used: traced requests get their spans from the route', async () => {
    // Spans go to a loopback port nobody listens on; only the x-trace-id header matters here.
    const maxine = await startTestMaxine({}, undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_BSP_SCHEDULE_DELAY: '60000' });
    try {
      assert.equal((await register(maxine, 'orders', 'orders-1')).status, 200);
      const discovered = await maxine.call('GET', `${LANE}serviceName=orders&format=json`);
      assert.equal(discovered.status, 200, discovered.text);
      assert.match(discovered.headers.get('x-trace-id') ?? '', /^[0-9a-f]{32}$/, 'a server span');
      const renewed = await maxine.call('POST', '/api/maxine/serviceops/heartbeat', { serviceName: 'orders', nodeName: 'orders-1' });
      assert.equal(renewed.status, 200, renewed.text);
      assert.equal(await laneAnswers(maxine), 0);
    } finally {
      await maxine.stop();
    }
  });
});

describe('the fast lane while Maxine closes', () => {
  it('hands a request that arrives after closing began to fastify, which answers 503', async () => {
    const maxine = await startTestMaxine();
    assert.equal((await register(maxine, 'orders', 'orders-1')).status, 200);
    let closed: Promise<void> | undefined;
    const socket = connect(Number(new URL(maxine.url).port), '127.0.0.1');
    try {
      await once(socket, 'connect');
      let answer = '';
      socket.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk));
      // Half a request: the connection is busy, so closing neither drops it nor waits for it idle.
      socket.write(`GET ${LANE}serviceName=orders&format=json HTTP/1.1\r\nHost: 127.0.0.1\r\n`);
      await setTimeout(100);
      closed = maxine.close();
      await setTimeout(200);
      socket.write('\r\n');
      await once(socket, 'end');
      assert.match(answer, /^HTTP\/1\.1 503 /, answer);
    } finally {
      socket.destroy();
      await (closed ?? maxine.close());
      await maxine.stop();
    }
  });
});
