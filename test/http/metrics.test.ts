import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestMaxine, type TestMaxine } from '../helpers/maxine.ts';
import { hasMetric, parseScrape, valueOf, type Scrape } from '../helpers/prometheus.ts';

const PATHS = ['/metrics', '/api/actuator/prometheus'];
const VIEWER = { userName: 'watcher', password: 'watcher-password' };
const ANONYMOUS = { authorization: '' };

/** The names the original Maxine exported. */
const ORIGINAL_NAMES = [
  'maxine_requests_total',
  'maxine_auth_failures_total',
  'maxine_auth_success_total',
  'maxine_registrations_total',
  'maxine_discoveries_total',
  'maxine_proxied_requests_total',
  'maxine_health_checks_total',
  'maxine_health_check_failures_total',
  'maxine_health_evictions_total',
  'maxine_alerts_total',
  'maxine_registered_services',
  'maxine_registered_parent_nodes',
  'maxine_registered_virtual_nodes',
  'maxine_cluster_is_leader',
  'maxine_cluster_has_leader',
  'maxine_unhealthy_upstreams',
];

async function scrape(maxine: TestMaxine, path = '/metrics'): Promise<Scrape> {
  const res = await maxine.call('GET', path);
  assert.equal(res.status, 200, res.text);
  return parseScrape(res.text);
}

function register(maxine: TestMaxine, serviceName: string, nodeName: string, extra: Record<string, unknown> = {}) {
  return maxine.call('POST', '/api/maxine/serviceops/register', { hostName: '127.0.0.1', nodeName, serviceName, port: 8080, timeOut: 600, ...extra });
}

describe('metrics routes need ops:read', () => {
  let maxine: TestMaxine;
  let viewer: Record<string, string>;

  before(async () => {
    maxine = await startTestMaxine({ viewerUsername: VIEWER.userName, viewerPassword: VIEWER.password });
    const signin = await maxine.call('POST', '/api/maxine/signin', VIEWER, ANONYMOUS);
    assert.equal(signin.status, 200, signin.text);
    viewer = { authorization: `Bearer ${signin.json.accessToken}` };
  });
  after(() => maxine.stop());

  test('a viewer may scrape both routes; anonymous callers get 401', async () => {
    for (const path of PATHS) {
      assert.equal((await maxine.call('GET', path, undefined, ANONYMOUS)).status, 401, path);
      const res = await maxine.call('GET', path, undefined, viewer);
      assert.equal(res.status, 200, `${path}: ${res.text}`);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      assert.ok(hasMetric(parseScrape(res.text), 'maxine_requests_total'), path);
    }
  });

  test('the original names count registrations, discovers, heartbeats, deregistrations and sign-ins', async () => {
    const before_ = await scrape(maxine);
    assert.equal(valueOf(before_, 'maxine_auth_success_total'), 2, 'the test admin and the viewer signed in');
    for (const name of ORIGINAL_NAMES) assert.ok(hasMetric(before_, name), `${name} missing`);

    assert.equal((await register(maxine, 'orders', 'o-1')).status, 200);
    assert.equal((await register(maxine, 'orders', 'o-2', { weight: 3 })).status, 200);
    assert.equal((await register(maxine, 'billing', 'b-1')).status, 200);
    // Renews only: a heartbeat, not a registration.
    assert.equal((await register(maxine, 'orders', 'o-1')).status, 200);
    for (let i = 0; i < 4; i++) assert.equal((await maxine.call('GET', '/api/maxine/serviceops/discover?serviceName=orders&format=json')).status, 200);
    // The original's answer when nothing can be picked.
    assert.equal((await maxine.call('GET', '/api/maxine/serviceops/discover?serviceName=nowhere&format=json')).status, 503);
    for (let i = 0; i < 2; i++) {
      assert.equal((await maxine.call('POST', '/api/maxine/serviceops/heartbeat', { serviceName: 'orders', nodeName: 'o-2' })).status, 200);
    }
    assert.equal((await maxine.call('DELETE', '/api/maxine/serviceops/deregister', { serviceName: 'billing', nodeName: 'b-1' })).status, 200);
    assert.equal((await maxine.call('POST', '/api/maxine/signin', { userName: VIEWER.userName, password: 'not-the-password' }, ANONYMOUS)).status, 401);
    assert.equal((await maxine.call('GET', '/metrics', undefined, { authorization: 'Bearer not-a-token' })).status, 401);

    const after_ = await scrape(maxine);
    const delta = (name: string, labels: Record<string, string> = {}) => valueOf(after_, name, labels) - valueOf(before_, name, labels);
    assert.equal(delta('maxine_registrations_total'), 3);
    assert.equal(delta('maxine_discoveries_total'), 5);
    assert.equal(delta('maxine_picks_total', { service: 'orders', strategy: 'round-robin', outcome: 'picked' }), 4);
    assert.equal(delta('maxine_picks_total', { service: '_other', outcome: 'none' }), 1, 'an unknown service is no label of its own');
    assert.equal(delta('maxine_heartbeats_total', { service: 'orders' }), 3);
    assert.equal(delta('maxine_registry_events_total', { type: 'service_deregistered' }), 1);
    assert.equal(delta('maxine_auth_failures_total'), 2);
    assert.equal(delta('maxine_auth_success_total'), 0);
    // The first scrape (counted once answered), 4 registrations, 5 discovers, 2 heartbeats, a deregistration, a sign-in, a refused scrape.
    assert.equal(delta('maxine_requests_total'), 15);
    assert.equal(valueOf(after_, 'maxine_registered_services'), 1);
    assert.equal(valueOf(after_, 'maxine_registered_parent_nodes'), 2);
    assert.equal(valueOf(after_, 'maxine_registered_virtual_nodes'), 4);
    assert.equal(valueOf(after_, 'maxine_instances', { service: 'orders', health: 'passing' }), 2);
    assert.equal(valueOf(after_, 'maxine_eligible_instances', { service: 'orders' }), 2);
    assert.equal(valueOf(after_, 'maxine_unhealthy_upstreams'), 0);
    assert.equal(valueOf(after_, 'maxine_cluster_is_leader'), 1);
    assert.equal(valueOf(after_, 'maxine_cluster_has_leader'), 1);
    assert.equal(valueOf(after_, 'maxine_store_reachable'), 1);
    assert.equal(valueOf(after_, 'maxine_alerts_total'), 0);
    assert.equal(delta('maxine_store_operation_duration_seconds_count', { operation: 'upsert' }), 3);
    assert.equal(delta('maxine_store_operation_duration_seconds_count', { operation: 'remove' }), 1);
    const discovers = { method: 'GET', route: '/api/maxine/serviceops/discover' };
    assert.equal(delta('maxine_http_request_duration_seconds_count', { ...discovers, status: '2xx' }), 4);
    assert.equal(delta('maxine_http_request_duration_seconds_count', { ...discovers, status: '5xx' }), 1);
    assert.equal(
      valueOf(after_, 'maxine_http_request_duration_seconds_bucket', { ...discovers, status: '2xx', le: '+Inf' }),
      valueOf(after_, 'maxine_http_request_duration_seconds_count', { ...discovers, status: '2xx' }),
    );
  });

  test('request durations are labelled with the route pattern, never the requested path', async () => {
    assert.equal((await maxine.call('DELETE', '/api/maxine/users/someone-in-a-url')).status, 404);
    // Matching no route, it is not timed at all.
    assert.equal((await maxine.call('GET', '/no/route/someone-in-a-url')).status, 404);
    const scraped = await scrape(maxine, '/api/actuator/prometheus');
    const routes = new Set(scraped.samples.filter((s) => s.name === 'maxine_http_request_duration_seconds_count').map((s) => s.labels.route));
    assert.ok(routes.has('/api/maxine/users/:userName'), [...routes].join(', '));
    for (const sample of scraped.samples) {
      assert.ok(!Object.values(sample.labels).some((v) => v.includes('someone-in-a-url')), `${sample.name} ${JSON.stringify(sample.labels)}`);
    }
  });
});

describe('MAXINE_METRICS_PUBLIC', () => {
  let maxine: TestMaxine;
  before(async () => {
    maxine = await startTestMaxine({ metricsPublic: true });
  });
  after(() => maxine.stop());

  test('both routes answer without credentials', async () => {
    for (const path of PATHS) {
      const res = await maxine.call('GET', path, undefined, ANONYMOUS);
      assert.equal(res.status, 200, `${path}: ${res.text}`);
      assert.ok(hasMetric(parseScrape(res.text), 'maxine_registered_services'), path);
    }
  });
});

describe('label cardinality', () => {
  let maxine: TestMaxine;
  before(async () => {
    maxine = await startTestMaxine({ metricsMaxServices: '10' });
  });
  after(() => maxine.stop());

  test('300 services make at most 10 service label values plus _other', async () => {
    for (let i = 0; i < 300; i++) {
      const service = `svc-${i}`;
      assert.equal((await register(maxine, service, 'n-1')).status, 200);
      assert.equal((await maxine.call('GET', `/api/maxine/serviceops/discover?serviceName=${service}&format=json`)).status, 200);
      assert.equal((await maxine.call('POST', '/api/maxine/serviceops/heartbeat', { serviceName: service, nodeName: 'n-1' })).status, 200);
    }
    const scraped = await scrape(maxine);
    const services = new Set(scraped.samples.flatMap((s) => (s.labels.service === undefined ? [] : [s.labels.service])));
    assert.ok(services.size <= 11, `${services.size} service label values`);
    assert.ok(services.has('_other'));
    assert.equal(valueOf(scraped, 'maxine_picks_total'), 300, 'nothing is lost to the cap');
    assert.equal(valueOf(scraped, 'maxine_heartbeats_total'), 300);
    assert.equal(valueOf(scraped, 'maxine_instances'), 300);
    assert.equal(valueOf(scraped, 'maxine_instances', { service: '_other' }), 290);
  });
});
