import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startUpstream, waitFor, type Upstream } from '../../src/health/test-upstreams.ts';
import { echo, upstream, type Running } from '../../src/proxy/test-support.ts';
import { startTestMaxine, type TestMaxine } from '../helpers/maxine.ts';

const REGISTER = '/api/maxine/serviceops/register';

async function instances(maxine: TestMaxine, service: string): Promise<any[]> {
  const res = await maxine.call('GET', `/api/maxine/serviceops/servers?format=v2&serviceName=${service}`);
  return res.json.services[0]?.instances ?? [];
}

async function discoverIds(maxine: TestMaxine, service: string, times: number): Promise<Set<string>> {
  const ids = new Set<string>();
  for (let i = 0; i < times; i++) {
    const res = await maxine.call('GET', `/api/maxine/serviceops/discover?serviceName=${service}&format=json`);
    if (res.status === 200) ids.add(res.json.nodeName);
  }
  return ids;
}

describe('admin status, checks and the proxy over a real port', () => {
  let maxine: TestMaxine;
  let echoServer: Running;
  before(async () => {
    maxine = await startTestMaxine({ proxyOutlierConsecutiveFailures: '0' });
    echoServer = await upstream(echo);
  });
  after(async () => {
    await maxine.stop();
    await echoServer.close();
  });

  test('maintenance and drain are API calls; the status sticks across re-registrations', async () => {
    const base = { hostName: '127.0.0.1', serviceName: 'status-svc', port: 9001, timeOut: 600 };
    await maxine.call('POST', REGISTER, { ...base, nodeName: 'a' });
    await maxine.call('POST', REGISTER, { ...base, nodeName: 'b', port: 9002 });
    const drained = await maxine.call('PUT', '/api/maxine/serviceops/instances/status-svc/a/status', { status: 'draining', reason: 'deploy 42' });
    assert.equal(drained.status, 200);
    assert.equal(drained.json.status, 'draining');
    assert.equal(drained.json.statusReason, 'deploy 42');
    assert.deepEqual([...(await discoverIds(maxine, 'status-svc', 6))], ['b'], 'a draining instance gets no new picks');
    assert.equal((await instances(maxine, 'status-svc')).length, 2, 'but stays listed');

    // The client's periodic re-registration (no status) keeps the operator's status.
    const again = await maxine.call('POST', REGISTER, { ...base, nodeName: 'a' });
    assert.equal(again.json.status, 'draining');
    await maxine.call('PUT', '/api/maxine/serviceops/instances/status-svc/b/status', { status: 'maintenance' });
    const none = await maxine.call('GET', '/api/maxine/serviceops/discover?serviceName=status-svc&format=json');
    assert.equal(none.status, 503);

    const up = await maxine.call('PUT', '/api/maxine/serviceops/instances/status-svc/a/status', { status: 'up' });
    assert.equal(up.json.status, 'up');
    assert.deepEqual([...(await discoverIds(maxine, 'status-svc', 4))], ['a']);
    // An explicit status in a registration does change it.
    const explicit = await maxine.call('POST', REGISTER, { ...base, nodeName: 'b', port: 9002, status: 'up' });
    assert.equal(explicit.json.status, 'up');
  });

  test('status changes refuse unknown instances and bad input', async () => {
    const unknown = await maxine.call('PUT', '/api/maxine/serviceops/instances/status-svc/nope/status', { status: 'up' });
    assert.equal(unknown.status, 404);
    for (const body of [{ status: 'broken' }, { status: 'up', reason: 'line\nbreak' }, { status: 'up', extra: 1 }, {}]) {
      const res = await maxine.call('PUT', '/api/maxine/serviceops/instances/status-svc/a/status', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.json.code, 'VALIDATION_FAILED');
    }
    const hostile = await maxine.call('PUT', '/api/maxine/serviceops/instances/__proto__/a/status', { status: 'up' });
    assert.equal(hostile.status, 400);
  });

  test('link-local and cloud-metadata hosts are refused on both surfaces', async () => {
    for (const hostName of ['169.254.169.254', 'fd00:ec2::254', '[fd00:ec2::254]', 'fe80::1', 'metadata.google.internal']) {
      const res = await maxine.call('POST', REGISTER, { hostName, nodeName: 'meta', serviceName: 'sneaky', port: 80 });
      assert.equal(res.status, 400, hostName);
      assert.match(res.json.message, /link-local/);
      const lightning = await maxine.call('POST', '/register', { serviceName: 'sneaky', host: hostName.replace(/^\[|\]$/g, ''), port: 80 });
      assert.equal(lightning.status, 400, `lightning ${hostName}`);
    }
    assert.equal((await instances(maxine, 'sneaky')).length, 0);
  });

  test('a registered check is resolved, listed, and validated', async () => {
    const res = await maxine.call('POST', REGISTER, {
      hostName: '127.0.0.1',
      nodeName: 'checked',
      serviceName: 'check-svc',
      port: 9100,
      healthCheckPath: '/status',
      check: { type: 'http', expectedStatus: '200-299', intervalMs: 60000, fall: 2 },
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.check, {
      type: 'http',
      path: '/status',
      statusMin: 200,
      statusMax: 299,
      bodyMatch: '',
      intervalMs: 60000,
      timeoutMs: 2000,
      rise: 2,
      fall: 2,
      jitterMs: 6000,
      deregisterCriticalAfterMs: 0,
    });
    const [listed] = await instances(maxine, 'check-svc');
    assert.equal(listed.check.path, '/status');
    for (const check of [{ type: 'udp' }, { type: 'tcp', path: '/x' }, { type: 'http', intervalMs: 5 }, { type: 'http', expectedStatus: '299-200' }, { type: 'http', path: '../etc' }, { type: 'http', nope: 1 }]) {
      const bad = await maxine.call('POST', REGISTER, { hostName: '127.0.0.1', nodeName: 'bad', serviceName: 'check-svc', port: 9101, check });
      assert.equal(bad.status, 400, JSON.stringify(check));
    }
  });

  test('the proxy forwards method, path, query and body, and answers 503 without instances', async () => {
    await maxine.call('POST', REGISTER, { hostName: '127.0.0.1', nodeName: 'echo-1', serviceName: 'echo', port: echoServer.port, path: '/base', timeOut: 600 });
    const res = await maxine.call('POST', '/api/maxine/serviceops/proxy/echo/items/7?color=blue&x=%2F', { hello: 'world' }, { authorization: 'Bearer secret' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.method, 'POST');
    assert.equal(res.json.url, '/base/items/7?color=blue&x=%2F');
    assert.equal(res.json.body, '{"hello":"world"}');
    assert.equal(res.json.headers.authorization, undefined, 'Authorization is not passed upstream by default');
    assert.ok(res.json.headers['x-forwarded-for']);
    assert.match(res.json.headers.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    assert.ok(res.headers.get('x-request-id'), 'Maxine still tags proxied responses with the request id');

    const lightning = await maxine.call('GET', '/proxy/echo/ping');
    assert.equal(lightning.status, 200);
    assert.equal(lightning.json.url, '/base/ping');
    const root = await maxine.call('GET', '/proxy/echo');
    assert.equal(root.json.url, '/base/');

    const missing = await maxine.call('GET', '/api/maxine/serviceops/proxy/nobody-here/x');
    assert.equal(missing.status, 503);
    assert.equal(missing.json.code, 'SERVICE_UNAVAILABLE');
    for (const path of ['/api/maxine/serviceops/proxy/echo/a/../../admin', '/api/maxine/serviceops/proxy/echo/%2e%2e/admin', '/proxy/echo/a/%2E%2E/b', '/proxy/echo/%zz']) {
      const bad = await maxine.call('GET', path);
      assert.equal(bad.status, 400, path);
      assert.equal(bad.json.code, 'VALIDATION_FAILED');
    }
    assert.equal((await maxine.call('GET', '/proxy/__proto__/x')).status, 400);
  });

  test('discover proxies with mode=proxy, and by default when discoveryMode is PROXY', async () => {
    const viaMode = await maxine.call('GET', '/api/maxine/serviceops/discover?serviceName=echo&mode=proxy&endPoint=/hello?a=1');
    assert.equal(viaMode.status, 200);
    assert.equal(viaMode.json.url, '/base/hello?a=1');
    const redirect = await maxine.call('GET', '/api/maxine/serviceops/discover?serviceName=echo&endPoint=/hello');
    assert.equal(redirect.status, 302);

    const put = await maxine.call('PUT', '/api/maxine/control/config', { discoveryMode: 'PROXY' });
    assert.deepEqual(put.json, { discoveryMode: 'Success' });
    try {
      const proxied = await maxine.call('GET', '/api/maxine/serviceops/discover?serviceName=echo&endPoint=/x');
      assert.equal(proxied.status, 200);
      assert.equal(proxied.json.url, '/base/x');
      const json = await maxine.call('GET', '/api/maxine/serviceops/discover?serviceName=echo&format=json');
      assert.equal(json.json.nodeName, 'echo-1', 'format=json still answers the instance');
      const config = await maxine.call('GET', '/api/maxine/control/config');
      assert.equal(config.json.discoveryMode.name, 'PROXY');
    } finally {
      await maxine.call('PUT', '/api/maxine/control/config', { discoveryMode: 'REDIRECT' });
    }
  });

  test('per-service policies are stored, validated and followed', async () => {
    const initial = await maxine.call('GET', '/api/maxine/serviceops/policies/echo');
    assert.equal(initial.status, 200);
    assert.equal(initial.json.stored, null);
    assert.equal(initial.json.effective.passAuthorization, false);

    const set = await maxine.call('PUT', '/api/maxine/serviceops/policies/echo', { passAuthorization: true, retries: 0 });
    assert.equal(set.status, 200, set.text);
    assert.deepEqual(set.json.stored, { passAuthorization: true, retries: 0 });
    assert.equal(set.json.effective.passAuthorization, true);
    assert.equal(set.json.effective.connectTimeoutMs, 2000, 'unset fields follow the defaults');
    const withAuth = await maxine.call('GET', '/proxy/echo/secure', undefined, { authorization: 'Bearer secret' });
    assert.equal(withAuth.json.headers.authorization, 'Bearer secret');

    for (const body of [{ retries: 99 }, { strategy: 'teleport' }, { nope: true }, { connectTimeoutMs: 'fast' }]) {
      const bad = await maxine.call('PUT', '/api/maxine/serviceops/policies/echo', body);
      assert.equal(bad.status, 400, JSON.stringify(body));
    }
    const cleared = await maxine.call('DELETE', '/api/maxine/serviceops/policies/echo');
    assert.equal(cleared.json.stored, null);
    const withoutAuth = await maxine.call('GET', '/proxy/echo/secure', undefined, { authorization: 'Bearer secret' });
    assert.equal(withoutAuth.json.headers.authorization, undefined);
  });

  test('/api/actuator/upstreams shows every instance with its proxy state', async () => {
    const res = await maxine.call('GET', '/api/actuator/upstreams?serviceName=echo');
    assert.equal(res.status, 200, res.text);
    const [service] = res.json.services;
    assert.equal(service.name, 'echo');
    const [instance] = service.instances;
    assert.equal(instance.nodeName, 'echo-1');
    assert.equal(instance.eligible, true);
    assert.ok(instance.proxy.requests >= 5, `requests ${instance.proxy.requests}`);
    assert.equal(instance.proxy.breaker.state, 'closed');
    assert.equal(res.json.checks.leading, true);
    assert.equal(typeof res.json.unhealthyNodes, 'number');
    assert.equal((await maxine.call('GET', '/api/actuator/upstreams?bogus=1')).status, 400);
  });
});

describe('active checks through a running Maxine', () => {
  let maxine: TestMaxine;
  let target: Upstream;
  before(async () => {
    maxine = await startTestMaxine();
    target = await startUpstream({ kind: 'status', status: 200 });
  });
  after(async () => {
    await maxine.stop();
    await target.close();
  });

  test('critical after fall failures, not revived by heartbeats, back after rise passes', async () => {
    const body = {
      hostName: '127.0.0.1',
      nodeName: 'probed',
      serviceName: 'probed-svc',
      port: target.port,
      timeOut: 600,
      check: { type: 'http', path: '/hc', intervalMs: 150, timeoutMs: 100, fall: 2, rise: 2, jitterMs: 0 },
    };
    assert.equal((await maxine.call('POST', REGISTER, body)).status, 200);
    await waitFor(() => (target.hits.get('/hc') ?? 0) >= 1, 3000, 'the first probe');
    assert.equal((await discoverIds(maxine, 'probed-svc', 1)).size, 1);

    target.behaviour = { kind: 'status', status: 503 };
    const critical = async () => (await instances(maxine, 'probed-svc'))[0]?.health === 'critical';
    for (let i = 0; i < 40 && !(await critical()); i++) await new Promise((r) => setTimeout(r, 50));
    const [listed] = await instances(maxine, 'probed-svc');
    assert.equal(listed.health, 'critical');
    assert.equal(listed.healthReason, 'HTTP 503');
    assert.equal((await maxine.call('GET', '/api/maxine/serviceops/discover?serviceName=probed-svc&format=json')).status, 503);

    // The original's bug: a heartbeat or a re-registration brought an evicted instance back.
    await maxine.call('POST', '/api/maxine/serviceops/heartbeat', { serviceName: 'probed-svc', nodeName: 'probed' });
    await maxine.call('POST', REGISTER, body);
    assert.equal((await instances(maxine, 'probed-svc'))[0].health, 'critical');

    const upstreams = await maxine.call('GET', '/api/actuator/upstreams?serviceName=probed-svc');
    const probe = upstreams.json.services[0].instances[0].probe;
    assert.ok(probe.consecutiveFailures >= 2);
    assert.equal(upstreams.json.unhealthyNodes, 1);

    target.behaviour = { kind: 'status', status: 200 };
    const passing = async () => (await instances(maxine, 'probed-svc'))[0]?.health === 'passing';
    for (let i = 0; i < 40 && !(await passing()); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal((await instances(maxine, 'probed-svc'))[0].health, 'passing');
    assert.equal((await discoverIds(maxine, 'probed-svc', 1)).size, 1);
  });

  test('a starting instance becomes eligible only after its first passing check', async () => {
    target.behaviour = { kind: 'status', status: 503 };
    const res = await maxine.call('POST', REGISTER, {
      hostName: '127.0.0.1',
      nodeName: 'booting',
      serviceName: 'starting-svc',
      port: target.port,
      timeOut: 600,
      status: 'starting',
      check: { type: 'http', path: '/ready', intervalMs: 150, timeoutMs: 100, jitterMs: 0 },
    });
    assert.equal(res.json.status, 'starting');
    await waitFor(() => (target.hits.get('/ready') ?? 0) >= 2, 3000, 'two failing probes');
    assert.equal((await maxine.call('GET', '/api/maxine/serviceops/discover?serviceName=starting-svc&format=json')).status, 503);
    target.behaviour = { kind: 'status', status: 200 };
    const up = async () => (await instances(maxine, 'starting-svc'))[0]?.status === 'up';
    for (let i = 0; i < 40 && !(await up()); i++) await new Promise((r) => setTimeout(r, 50));
    const [listed] = await instances(maxine, 'starting-svc');
    assert.equal(listed.status, 'up');
    assert.equal(listed.statusReason, 'passed its first health check');
    assert.equal((await discoverIds(maxine, 'starting-svc', 1)).size, 1);
  });
});
