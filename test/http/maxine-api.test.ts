import { hostname } from 'node:os';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestMaxine, type TestMaxine } from '../helpers/maxine.ts';

describe('Maxine API over a real port', () => {
  let maxine: TestMaxine;
  before(async () => {
    maxine = await startTestMaxine();
  });
  after(() => maxine.stop());

  test('register answers the original shape plus the new fields', async () => {
    const res = await maxine.call('POST', '/api/maxine/serviceops/register', {
      hostName: '10.0.0.5',
      nodeName: 'node-a',
      serviceName: 'orders',
      port: 8080,
      ssl: false,
      timeOut: 30,
      weight: 2,
      path: 'api/',
      tags: ['blue'],
      version: '1.2.0',
      zone: 'eu-1',
      metadata: { team: 'core' },
    });
    assert.equal(res.status, 200);
    const body = res.json;
    for (const key of ['hostName', 'nodeName', 'serviceName', 'timeOut', 'weight', 'address', 'healthCheckPath', 'registeredAt']) {
      assert.ok(key in body, `missing ${key}`);
    }
    assert.equal(body.address, 'http://10.0.0.5:8080/api');
    assert.equal(body.timeOut, 30);
    assert.equal(body.weight, 2);
    assert.match(body.registeredAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.deepEqual(body.tags, ['blue']);
    assert.deepEqual(body.metadata, { team: 'core' });
    assert.ok(res.headers.get('x-request-id'));
  });

  test('an identical re-registration renews without a new revision; a change bumps it', async () => {
    const spec = { hostName: 'svc.local', nodeName: 'n1', serviceName: 'rev-test', port: 81 };
    const first = await maxine.call('POST', '/api/maxine/serviceops/register', spec);
    const again = await maxine.call('POST', '/api/maxine/serviceops/register', spec);
    assert.equal(again.json.revision, first.json.revision);
    const changed = await maxine.call('POST', '/api/maxine/serviceops/register', { ...spec, port: 82 });
    assert.ok(changed.json.revision > first.json.revision);
    assert.equal(changed.json.registeredAt, first.json.registeredAt);
  });

  test('hostName with a scheme prefix sets the scheme; ssl gives https', async () => {
    const a = await maxine.call('POST', '/api/maxine/serviceops/register', {
      hostName: 'https://secure.example',
      nodeName: 'a',
      serviceName: 'scheme-test',
    });
    assert.equal(a.json.address, 'https://secure.example');
    const b = await maxine.call('POST', '/api/maxine/serviceops/register', {
      hostName: 'plain.example',
      nodeName: 'b',
      serviceName: 'scheme-test',
      ssl: true,
      port: '8443',
    });
    assert.equal(b.json.address, 'https://plain.example:8443');
  });

  test('discover redirects to address + endPoint, or answers JSON', async () => {
    await maxine.call('POST', '/api/maxine/serviceops/register', {
      hostName: '127.0.0.1',
      nodeName: 'only',
      serviceName: 'disc',
      port: 9000,
    });
    const redirect = await maxine.call('GET', '/api/maxine/serviceops/discover?serviceName=disc&endPoint=health');
    assert.equal(redirect.status, 302);
    assert.equal(redirect.headers.get('location'), 'http://127.0.0.1:9000/health');
    const json = await maxine.call('GET', '/api/maxine/serviceops/discover?serviceName=disc&format=json');
    assert.equal(json.status, 200);
    assert.equal(json.json.nodeName, 'only');
    assert.equal(json.json.address, 'http://127.0.0.1:9000');
  });

  test('discover errors keep the original messages', async () => {
    const missing = await maxine.call('GET', '/api/maxine/serviceops/discover');
    assert.equal(missing.status, 400);
    assert.equal(missing.json.message, 'Please provide the serviceName.');
    assert.ok(missing.headers.get('x-request-id'), 'errors carry the request id too');
    const traced = await maxine.call('GET', '/api/maxine/serviceops/discover', undefined, { 'x-request-id': 'trace-123' });
    assert.equal(traced.headers.get('x-request-id'), 'trace-123');
    assert.equal(missing.json.code, 'VALIDATION_FAILED');
    const none = await maxine.call('GET', '/api/maxine/serviceops/discover?serviceName=nobody-here');
    assert.equal(none.status, 503);
    assert.deepEqual(
      { message: none.json.message, code: none.json.code },
      { message: 'Service Unavailable', code: 'SERVICE_UNAVAILABLE' },
    );
  });

  test('discover filters by tags, version, zone and metadata, and honours strategy', async () => {
    const reg = (nodeName: string, extra: object) =>
      maxine.call('POST', '/api/maxine/serviceops/register', {
        hostName: '127.0.0.1',
        nodeName,
        serviceName: 'filtered',
        port: 7000 + Number(nodeName.slice(1)),
        ...extra,
      });
    await reg('n1', { tags: ['a', 'b'], version: '1', zone: 'z1', metadata: { env: 'prod' } });
    await reg('n2', { tags: ['a'], version: '2', zone: 'z2', metadata: { env: 'dev' } });
    const pick = async (query: string) =>
      (await maxine.call('GET', `/api/maxine/serviceops/discover?serviceName=filtered&format=json&${query}`)).json
        ?.nodeName;
    assert.equal(await pick('tags=a,b'), 'n1');
    assert.equal(await pick('version=2'), 'n2');
    assert.equal(await pick('zone=z1'), 'n1');
    assert.equal(await pick('meta=env:dev'), 'n2');
    const none = await maxine.call('GET', '/api/maxine/serviceops/discover?serviceName=filtered&tags=zzz');
    assert.equal(none.status, 503);
    const hashed = new Set<string>();
    for (let i = 0; i < 5; i++) hashed.add(await pick('strategy=CH&key=user-42'));
    assert.equal(hashed.size, 1);
    const rr = new Set<string>();
    for (let i = 0; i < 4; i++) rr.add(await pick('strategy=round-robin'));
    assert.deepEqual([...rr].sort(), ['n1', 'n2']);
    const bad = await maxine.call('GET', '/api/maxine/serviceops/discover?serviceName=filtered&strategy=fastest-ever');
    assert.equal(bad.status, 400);
    assert.equal(bad.json.details[0].field, 'strategy');
  });

  test('heartbeat renews a known instance and 404s an unknown one', async () => {
    await maxine.call('POST', '/api/maxine/serviceops/register', { hostName: 'h.local', nodeName: 'hb', serviceName: 'beat' });
    const ok = await maxine.call('POST', '/api/maxine/serviceops/heartbeat', { serviceName: 'beat', nodeName: 'hb' });
    assert.equal(ok.status, 200);
    const missing = await maxine.call('POST', '/api/maxine/serviceops/heartbeat', { serviceName: 'beat', nodeName: 'nope' });
    assert.equal(missing.status, 404);
    assert.equal(missing.json.code, 'NOT_FOUND');
  });

  test('deregister removes an instance and 404s an unknown one', async () => {
    await maxine.call('POST', '/api/maxine/serviceops/register', { hostName: 'h.local', nodeName: 'gone', serviceName: 'bye' });
    const ok = await maxine.call('DELETE', '/api/maxine/serviceops/deregister', { serviceName: 'bye', nodeName: 'gone' });
    assert.equal(ok.status, 200);
    const again = await maxine.call('DELETE', '/api/maxine/serviceops/deregister', { serviceName: 'bye', nodeName: 'gone' });
    assert.equal(again.status, 404);
    const discover = await maxine.call('GET', '/api/maxine/serviceops/discover?serviceName=bye');
    assert.equal(discover.status, 503);
  });

  test('servers lists the original shape with weight as virtual nodes, and v2', async () => {
    await maxine.call('POST', '/api/maxine/serviceops/register', {
      hostName: '192.168.0.1',
      nodeName: 'NODE-X-1',
      serviceName: 'DB-SERVICE',
      port: 8082,
      ssl: true,
      weight: 3,
      timeOut: 50,
    });
    const v1 = await maxine.call('GET', '/api/maxine/serviceops/servers');
    assert.equal(v1.status, 200);
    const service = v1.json['DB-SERVICE'];
    assert.equal(service.offset, 0);
    assert.deepEqual(Object.keys(service.nodes).sort(), ['NODE-X-1-0', 'NODE-X-1-1', 'NODE-X-1-2']);
    const node = service.nodes['NODE-X-1-1'];
    assert.equal(node.parentNode, 'NODE-X-1');
    assert.equal(node.address, 'https://192.168.0.1:8082');
    assert.equal(node.timeOut, 50);
    assert.equal(typeof node.registeredAt, 'number');
    const v2 = await maxine.call('GET', '/api/maxine/serviceops/servers?format=v2&serviceName=DB-SERVICE');
    assert.equal(v2.json.services.length, 1);
    assert.equal(v2.json.services[0].instances[0].nodeName, 'NODE-X-1');
    assert.ok(v2.json.revision >= v2.json.services[0].revision);
    assert.ok(Date.parse(v2.json.services[0].instances[0].expiresAt) > Date.now());
  });

  test('control config: original keys, per-key outcomes, effect on discovery', async () => {
    const get = await maxine.call('GET', '/api/maxine/control/config');
    assert.equal(get.status, 200);
    assert.deepEqual(get.json.serverSelectionStrategy, { name: 'RR', code: '0', message: 'Round Robin', ordinal: 0 });
    assert.equal(get.json.heartBeatTimeout, 5);
    const put = await maxine.call('PUT', '/api/maxine/control/config', {
      logAsync: 'yes',
      heartBeatTimeout: 0,
      serverSelectionStrategy: 'CH',
      logFormat: 'PLAIN',
      discoveryMode: 'TELEPORT',
      unknownKey: 1,
    });
    assert.equal(put.status, 200);
    assert.deepEqual(put.json, {
      logAsync: 'Type Error',
      heartBeatTimeout: 'Wrong value Or Invalid value',
      serverSelectionStrategy: 'Success',
      logFormat: 'Success',
      discoveryMode: 'Wrong value Or Invalid value',
    });
    const after = await maxine.call('GET', '/api/maxine/control/config');
    assert.equal(after.json.serverSelectionStrategy.name, 'CH');
    assert.equal(after.json.logFormat.name, 'PLAIN');
    assert.equal(after.json.heartBeatTimeout, 5);
    const ttl = await maxine.call('PUT', '/api/maxine/control/config', { heartBeatTimeout: 42, logFormat: 'JSON' });
    assert.deepEqual(ttl.json, { heartBeatTimeout: 'Success', logFormat: 'Success' });
    const reg = await maxine.call('POST', '/api/maxine/serviceops/register', { hostName: 'h.local', nodeName: 'd', serviceName: 'ttl' });
    assert.equal(reg.json.timeOut, 42);
    await maxine.call('PUT', '/api/maxine/control/config', { heartBeatTimeout: 5, serverSelectionStrategy: 'RR' });
  });

  test('actuator health, info and metrics keep the original shapes', async () => {
    assert.deepEqual((await maxine.call('GET', '/api/actuator/health')).json, { status: 'UP' });
    const info = (await maxine.call('GET', '/api/actuator/info')).json;
    assert.equal(info.build.name, 'maxine-discovery');
    assert.ok(info.build.description);
    const metrics = (await maxine.call('GET', '/api/actuator/metrics')).json;
    assert.equal(typeof metrics.mem.heapUsed, 'number');
    assert.equal(typeof metrics.uptime, 'number');
    assert.deepEqual(metrics.store, { kind: 'local', reachable: true });
  });

  test('actuator cluster answers the original shape plus the store state', async () => {
    const response = await maxine.call('GET', '/api/actuator/cluster');
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-maxine-stale'), null);
    const { observedAt, revision, ...rest } = response.json;
    assert.ok(Math.abs(Date.parse(observedAt) - Date.now()) < 5000);
    assert.ok(Number.isInteger(revision) && revision >= 0);
    assert.deepEqual(rest, {
      enabled: false,
      instanceId: `${hostname()}-${process.pid}`,
      isLeader: true,
      hasLeader: true,
      fencingToken: 1,
      leaderInstanceId: `${hostname()}-${process.pid}`,
      store: 'local',
      reachable: true,
      storeError: null,
    });
  });

  test('OpenAPI document is generated from the route schemas and the UI is served', async () => {
    const doc = await maxine.call('GET', '/api-docs/openapi.json');
    assert.equal(doc.status, 200);
    assert.match(doc.json.openapi, /^3\./);
    for (const path of [
      '/api/maxine/serviceops/register',
      '/api/maxine/serviceops/discover',
      '/api/maxine/serviceops/heartbeat',
      '/api/maxine/serviceops/deregister',
      '/api/maxine/serviceops/servers',
      '/api/maxine/control/config',
      '/api/actuator/cluster',
      '/register',
      '/discover',
    ]) {
      assert.ok(doc.json.paths[path], `OpenAPI lacks ${path}`);
    }
    const ui = await maxine.call('GET', '/api-docs/');
    assert.equal(ui.status, 200);
    assert.match(ui.text, /swagger/i);
  });
});
