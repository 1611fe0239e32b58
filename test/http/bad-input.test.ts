import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestMaxine, type TestMaxine, type TestResponse } from '../helpers/maxine.ts';

/**
 * Bad input against every route, enumerated from the OpenAPI document (which
 * is generated from the route table), so a new route is covered the moment
 * it exists. Every answer must be a 4xx in the one error shape, and the
 * catalog must not change.
 */

const BODY_LIMIT = 4096;

const HOSTILE_STRINGS = [
  '__proto__',
  'constructor',
  'prototype',
  '../x',
  '..',
  'a b',
  'line\nbreak',
  'nul\u0000byte',
  'bell\u0007',
  'ünïcødé',
  '💥',
  'x'.repeat(300),
  '',
  '<script>',
  'a/b',
  '%2e%2e',
];

function assertErrorShape(res: TestResponse, context: string): void {
  assert.ok(res.status >= 400 && res.status < 500, `${context}: expected a 4xx, got ${res.status} ${res.text}`);
  assert.equal(typeof res.json?.message, 'string', `${context}: no message in ${res.text}`);
  assert.equal(typeof res.json?.code, 'string', `${context}: no code in ${res.text}`);
  if (res.json.details !== undefined) assert.ok(Array.isArray(res.json.details), `${context}: details not an array`);
}

interface Route {
  method: string;
  path: string;
  hasBody: boolean;
  bodyProps: string[];
  queryProps: string[];
}

describe('bad input on every route', () => {
  let maxine: TestMaxine;
  let routes: Route[];
  let before_: unknown;

  /** What a client can see of the catalog, without the revision and lease times that valid clean-ups move. */
  const catalogState = async () => {
    const { services } = (await maxine.call('GET', '/api/maxine/serviceops/servers?format=v2')).json;
    return services.map((s: any) => ({
      name: s.name,
      instances: s.instances.map(({ renewedAt: _r, expiresAt: _e, ...rest }: any) => rest),
    }));
  };

  before(async () => {
    maxine = await startTestMaxine({ bodyLimit: String(BODY_LIMIT) });
    await maxine.call('POST', '/api/maxine/serviceops/register', {
      hostName: '127.0.0.1',
      nodeName: 'keep',
      serviceName: 'keeper',
      port: 9999,
      timeOut: 600,
    });
    const doc = (await maxine.call('GET', '/api-docs/openapi.json')).json;
    routes = [];
    for (const [path, methods] of Object.entries<Record<string, any>>(doc.paths)) {
      for (const [method, op] of Object.entries<any>(methods)) {
        const schema = op.requestBody?.content?.['application/json']?.schema;
        routes.push({
          method: method.toUpperCase(),
          path,
          hasBody: schema !== undefined,
          bodyProps: Object.keys(schema?.properties ?? {}),
          queryProps: (op.parameters ?? []).filter((p: any) => p.in === 'query').map((p: any) => p.name),
        });
      }
    }
    assert.ok(routes.length >= 15, `only ${routes.length} routes found`);
    before_ = await catalogState();
  });

  after(async () => {
    assert.deepEqual(await catalogState(), before_, 'bad input changed the catalog');
    await maxine.stop();
  });

  test('malformed JSON, wrong top-level types and wrong content types', async () => {
    for (const route of routes.filter((r) => r.hasBody)) {
      for (const raw of ['{"a":', '{', 'not json', '[1,2', '{"a":1}}', '\u0000']) {
        assertErrorShape(await maxine.call(route.method, route.path, raw), `${route.method} ${route.path} body ${JSON.stringify(raw)}`);
      }
      for (const wrong of ['[]', '"text"', '123', 'null', 'true']) {
        const res = await maxine.call(route.method, route.path, wrong);
        assertErrorShape(res, `${route.method} ${route.path} body ${wrong}`);
      }
      const plain = await maxine.call(route.method, route.path, 'serviceName=x', { 'content-type': 'text/plain' });
      assertErrorShape(plain, `${route.method} ${route.path} text/plain`);
      const empty = await maxine.call(route.method, route.path, '', { 'content-type': 'application/json' });
      assertErrorShape(empty, `${route.method} ${route.path} empty body`);
    }
  });

  test('oversize bodies get 413', async () => {
    for (const route of routes.filter((r) => r.hasBody)) {
      const big = JSON.stringify({ serviceName: 'x', padding: 'y'.repeat(BODY_LIMIT * 2) });
      const res = await maxine.call(route.method, route.path, big);
      assert.equal(res.status, 413, `${route.method} ${route.path}: ${res.status}`);
      assertErrorShape(res, `${route.method} ${route.path} oversize`);
    }
  });

  test('prototype pollution attempts are refused', async () => {
    for (const route of routes.filter((r) => r.hasBody)) {
      for (const raw of ['{"__proto__":{"polluted":1}}', '{"constructor":{"prototype":{"polluted":1}}}']) {
        const res = await maxine.call(route.method, route.path, raw);
        if (route.path === '/api/maxine/control/config') {
          // Unknown keys are ignored there, as in the original; the answer must not echo them.
          if (res.status === 200) assert.deepEqual(res.json, {});
          else assertErrorShape(res, `${route.method} ${route.path} ${raw}`);
        } else {
          assertErrorShape(res, `${route.method} ${route.path} ${raw}`);
        }
      }
    }
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test('every body field with wrong types or hostile strings', async () => {
    const valid: Record<string, Record<string, unknown>> = {
      '/api/maxine/serviceops/register': { hostName: '127.0.0.1', nodeName: 'bad-node', serviceName: 'bad-svc', port: 80 },
      '/register': { serviceName: 'bad-svc', host: '127.0.0.1', port: 80 },
    };
    for (const route of routes.filter((r) => r.hasBody && valid[r.path])) {
      for (const prop of route.bodyProps) {
        for (const wrong of [{}, [], 12.5, -1, 1e9, true, null, ...HOSTILE_STRINGS]) {
          if (typeof wrong === 'string' && ['path', 'healthCheckPath', 'version', 'zone'].includes(prop) && wrong === '') continue;
          const body = { ...valid[route.path], [prop]: wrong };
          const res = await maxine.call(route.method, route.path, body);
          if (res.status === 200) {
            // Some values are legitimately valid for some fields (e.g. true for ssl); they must not be hostile ones.
            assert.ok(
              !(typeof wrong === 'string' && HOSTILE_STRINGS.includes(wrong) && ['serviceName', 'nodeName', 'hostName', 'host'].includes(prop)),
              `${route.path} accepted ${prop}=${JSON.stringify(wrong)}`,
            );
            // Clean up whatever a valid variation registered so the catalog comparison holds.
            await maxine.call('DELETE', '/api/maxine/serviceops/deregister', {
              serviceName: (body.serviceName as string) ?? 'bad-svc',
              nodeName: route.path === '/register' ? `${body.host}:${body.port}` : body.nodeName,
            });
            continue;
          }
          assertErrorShape(res, `${route.path} ${prop}=${JSON.stringify(wrong)}`);
        }
      }
    }
  });

  test('ports outside 1-65535 and invalid hosts are refused', async () => {
    for (const port of [0, -1, 65536, 70000, '65536', '0', 'http', 1.5]) {
      const res = await maxine.call('POST', '/api/maxine/serviceops/register', {
        hostName: '127.0.0.1',
        nodeName: 'p',
        serviceName: 'ports',
        port,
      });
      assertErrorShape(res, `port ${JSON.stringify(port)}`);
      const lightning = await maxine.call('POST', '/register', { serviceName: 'ports', host: '127.0.0.1', port });
      assertErrorShape(lightning, `lightning port ${JSON.stringify(port)}`);
    }
    for (const hostName of ['exa mple.com', '-bad.com', 'a..b', 'http://', '[not-ipv6]', 'host/with/path', 'x'.repeat(254), '999.1.1.1.1']) {
      const res = await maxine.call('POST', '/api/maxine/serviceops/register', { hostName, nodeName: 'h', serviceName: 'hosts' });
      assertErrorShape(res, `hostName ${hostName}`);
    }
  });

  test('unknown query parameters and values are refused on GET routes', async () => {
    for (const route of routes.filter((r) => r.method === 'GET' && r.queryProps.length > 0)) {
      const res = await maxine.call('GET', `${route.path}?definitelyNotAParam=1`);
      assertErrorShape(res, `${route.path} unknown parameter`);
    }
    for (const query of [
      'serviceName=keeper&format=xml',
      'serviceName=keeper&strategy=teleport',
      'serviceName=keeper&tags=a%20b',
      'serviceName=keeper&endPoint=../../etc/passwd',
      'serviceName=keeper&endPoint=%00',
      'serviceName=keeper&meta=novalue',
      `serviceName=${'x'.repeat(500)}`,
    ]) {
      assertErrorShape(await maxine.call('GET', `/api/maxine/serviceops/discover?${query}`), `discover ${query}`);
    }
    for (const query of ['serviceName=keeper&loadBalancing=teleport', 'serviceName=keeper&nope=1']) {
      assertErrorShape(await maxine.call('GET', `/discover?${query}`), `lightning discover ${query}`);
    }
    assertErrorShape(await maxine.call('GET', '/api/maxine/serviceops/servers?format=v9'), 'servers format');
  });

  test('hostile names in lookups are 4xx, never 5xx', async () => {
    for (const name of HOSTILE_STRINGS) {
      const q = encodeURIComponent(name);
      const discover = await maxine.call('GET', `/api/maxine/serviceops/discover?serviceName=${q}`);
      assert.ok(discover.status >= 400 && discover.status < 500, `discover ${JSON.stringify(name)}: ${discover.status}`);
      const hb = await maxine.call('POST', '/api/maxine/serviceops/heartbeat', { serviceName: name, nodeName: name });
      assertErrorShape(hb, `heartbeat ${JSON.stringify(name)}`);
      const lhb = await maxine.call('POST', '/heartbeat', { nodeId: name });
      assertErrorShape(lhb, `lightning heartbeat ${JSON.stringify(name)}`);
    }
  });

  test('case and encoding variants of paths do not reach routes', async () => {
    for (const route of routes) {
      if (route.path === '/') continue;
      const variants = [
        route.path.toUpperCase(),
        route.path.replace(/[a-z]/, (c) => c.toUpperCase()),
        route.path.replace('/', '/%2e%2e/'),
        route.path.replace(/\/([^/]+)$/, '/../$1'),
        `${route.path}%00`,
      ];
      for (const variant of variants) {
        if (variant === route.path) continue;
        const res = await maxine.call(route.method, variant, route.hasBody ? { serviceName: 'keeper', nodeName: 'keep' } : undefined);
        assert.ok(res.status < 500, `${route.method} ${variant}: ${res.status}`);
        // A HEAD answer has no body to carry the error shape.
        if (res.status >= 400 && route.method !== 'HEAD') assertErrorShape(res, `${route.method} ${variant}`);
        else assert.notEqual(route.method, 'DELETE', `${variant} deleted something`);
      }
    }
  });

  test('the server is still healthy', async () => {
    const res = await maxine.call('GET', '/api/actuator/health');
    assert.deepEqual(res.json, { status: 'UP' });
  });
});
