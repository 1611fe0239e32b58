import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { Catalog } from '../core/catalog.ts';
import { testInstance } from '../core/fixtures.ts';
import type { Instance } from '../core/instance.ts';
import type { HealthCheckerStats } from '../health/checker.ts';
import { FencedError, REACHABLE, StoreUnavailableError, type LeadershipState, type RegistryStore } from '../store/store.ts';
import { hasMetric, parseScrape, valueOf, type Scrape } from '../../test/helpers/prometheus.ts';
import { Metrics, type MetricsOptions } from './metrics.ts';
import { Buckets, OTHER_SERVICES, RouteTimings, ServiceLabels } from './metrics-series.ts';
import { instrumentStore } from './metrics-store.ts';

/** Two evictions fired, one still firing. */
const SOME_ALERTS: MetricsOptions['alerts'] = () => ({
  stats: () => ({ fired: new Map([['instance_evicted', 2]]), firing: new Map([['instance_evicted', 1]]), untracked: 0 }),
  webhooks: [],
  deliveryCounts: () => ({ delivered: 0, failed: 0 }),
});

/** What the Metrics read from the other parts of a replica that is doing nothing (but has fired alerts). */
const IDLE_PARTS = {
  maxServices: 2,
  checks: () => NO_CHECKS,
  proxiedRequests: () => 0,
  events: () => ({ connections: 0, sent: {}, dropped: 0, resyncs: 0 }),
  alerts: SOME_ALERTS,
} satisfies Partial<MetricsOptions>;

const NO_CHECKS: HealthCheckerStats = {
  leading: false,
  targets: 0,
  scheduled: 0,
  inFlight: 0,
  maxInFlight: 0,
  lagMs: 0,
  probes: 12,
  passes: 9,
  warnings: 0,
  failures: 3,
  dropped: 0,
  writes: 0,
  conflicts: 0,
  writeErrors: 0,
  evictions: 1,
  sockets: 0,
  connects: 0,
};

const NO_LEADER: LeadershipState = { isLeader: false, leaderId: null, fencingToken: 0, observedAt: 0 };

describe('series', () => {
  test('service labels: the first known services keep their name, the rest and unknown ones are _other', () => {
    const known = new Set(['a', 'b', 'c']);
    const labels = new ServiceLabels(2, (s) => known.has(s));
    assert.equal(labels.of('nope'), OTHER_SERVICES, 'unknown names take no slot');
    assert.equal(labels.of('a'), 'a');
    assert.equal(labels.of('b'), 'b');
    assert.equal(labels.of('c'), OTHER_SERVICES);
    known.delete('a');
    assert.equal(labels.of('a'), 'a', 'admitted for good: its series outlive it');
  });

  test('buckets: a value on a bound is counted in it (le), beyond the last only in +Inf', () => {
    const buckets = new Buckets([0.01, 0.05]);
    for (const v of [0.001, 0.01, 0.02, 0.05, 3]) buckets.observe(v);
    assert.deepEqual(buckets.counts, [2, 2, 1]);
    assert.equal(buckets.count, 5);
    assert.ok(Math.abs(buckets.sum - 3.081) < 1e-9);
  });

  test('route timings: one series per method and status class', () => {
    const timings = new RouteTimings('/x/:id');
    timings.observe('GET', 200, 0.001);
    timings.observe('GET', 204, 0.001);
    timings.observe('GET', 503, 0.001);
    timings.observe('HEAD', 302, 0.001);
    assert.deepEqual(
      [...timings.series()].map((s) => [s.method, s.route, s.status, s.buckets.count]),
      [
        ['GET', '/x/:id', '2xx', 2],
        ['GET', '/x/:id', '5xx', 1],
        ['HEAD', '/x/:id', '3xx', 1],
      ],
    );
  });
});

describe('Metrics', () => {
  let metrics: Metrics | undefined;
  afterEach(() => metrics?.close());

  const make = (overrides: Partial<MetricsOptions> = {}) => {
    const catalog = overrides.catalog ?? new Catalog(100);
    metrics = new Metrics({
      catalog,
      store: { leadership: () => NO_LEADER, health: () => REACHABLE },
      maxServices: 2,
      checks: () => NO_CHECKS,
      proxiedRequests: () => 7,
      events: () => ({ connections: 2, sent: { service_registered: 5 }, dropped: 1, resyncs: 1 }),
      alerts: SOME_ALERTS,
      ...overrides,
    });
    return { catalog, metrics };
  };
  const scrape = async (m: Metrics): Promise<Scrape> => parseScrape(await m.text());
  let revision = 0;
  const register = (catalog: Catalog, instance: Instance) => catalog.apply({ kind: 'upsert', revision: ++revision, instance, renewedAt: 0 });

  test('the service label is capped; picks, heartbeats and gauges all use the same labels', async () => {
    const { catalog, metrics } = make();
    for (const service of ['a', 'b', 'c']) register(catalog, testInstance(service, `${service}-1`, { weight: 2 }));
    register(catalog, testInstance('c', 'c-2', { health: 'critical' }));
    for (const service of ['a', 'b', 'c', 'unknown']) metrics.picked(service, 'round-robin', service !== 'unknown');
    metrics.renewed(testInstance('c', 'c-1'));
    const scraped = await scrape(metrics);
    assert.equal(valueOf(scraped, 'maxine_picks_total', { service: 'a', outcome: 'picked' }), 1);
    assert.equal(valueOf(scraped, 'maxine_picks_total', { service: OTHER_SERVICES, outcome: 'picked' }), 1);
    assert.equal(valueOf(scraped, 'maxine_picks_total', { service: OTHER_SERVICES, outcome: 'none' }), 1);
    assert.equal(valueOf(scraped, 'maxine_discoveries_total'), 4);
    assert.equal(valueOf(scraped, 'maxine_heartbeats_total', { service: OTHER_SERVICES }), 1);
    assert.equal(valueOf(scraped, 'maxine_instances', { service: OTHER_SERVICES, health: 'critical' }), 1);
    assert.equal(valueOf(scraped, 'maxine_eligible_instances', { service: OTHER_SERVICES }), 1);
    assert.equal(valueOf(scraped, 'maxine_registered_virtual_nodes'), 7);
    assert.equal(valueOf(scraped, 'maxine_unhealthy_upstreams'), 1);
    const services = new Set(scraped.samples.flatMap((s) => (s.labels.service === undefined ? [] : [s.labels.service])));
    assert.deepEqual([...services].sort(), [OTHER_SERVICES, 'a', 'b']);
  });

  test('gauges follow the catalog, ejections included', async () => {
    const { catalog, metrics } = make();
    register(catalog, testInstance('a', 'a-1'));
    assert.equal(valueOf(await scrape(metrics), 'maxine_eligible_instances', { service: 'a' }), 1);
    catalog.setEjected({ service: 'a', id: 'a-1' }, true, 'test');
    assert.equal(valueOf(await scrape(metrics), 'maxine_eligible_instances', { service: 'a' }), 0);
    catalog.apply({ kind: 'remove', revision: ++revision, key: { service: 'a', id: 'a-1' }, reason: 'expired' });
    const scraped = await scrape(metrics);
    assert.equal(valueOf(scraped, 'maxine_registered_parent_nodes'), 0);
    assert.ok(!scraped.samples.some((s) => s.name === 'maxine_instances'), 'no series for a service that is gone');
    assert.equal(valueOf(scraped, 'maxine_expirations_total', { service: 'a' }), 1);
    assert.equal(valueOf(scraped, 'maxine_registry_events_total', { type: 'service_expired' }), 1);
    assert.equal(valueOf(scraped, 'maxine_feed_revision'), revision);
  });

  test('feed lag: from the registering replica accepting a registration to this catalog applying it', async () => {
    const { catalog, metrics } = make({ catalog: new Catalog(100, () => 5_000) });
    register(catalog, testInstance('a', 'a-1', { registeredAt: 4_000 }));
    // An update is no new registration: its times say nothing about the feed.
    register(catalog, testInstance('a', 'a-1', { registeredAt: 4_000, weight: 5 }));
    const scraped = await scrape(metrics);
    assert.equal(valueOf(scraped, 'maxine_feed_lag_seconds_count'), 1);
    assert.equal(valueOf(scraped, 'maxine_feed_lag_seconds_sum'), 1);
    assert.equal(valueOf(scraped, 'maxine_feed_lag_seconds_bucket', { le: '0.5' }), 0);
    assert.equal(valueOf(scraped, 'maxine_feed_lag_seconds_bucket', { le: '1' }), 1);
  });

  test('leadership: the gauges and every change seen, counted from the first sample on', async () => {
    let leadership = NO_LEADER;
    const { metrics } = make({ store: { leadership: () => leadership, health: () => ({ reachable: false, error: 'down' }) } });
    let scraped = await scrape(metrics);
    assert.equal(valueOf(scraped, 'maxine_cluster_has_leader'), 0);
    assert.equal(valueOf(scraped, 'maxine_leader_changes_total'), 0);
    assert.equal(valueOf(scraped, 'maxine_store_reachable'), 0);
    leadership = { isLeader: false, leaderId: 'other', fencingToken: 1, observedAt: 1 };
    scraped = await scrape(metrics);
    leadership = { isLeader: true, leaderId: 'me', fencingToken: 2, observedAt: 2 };
    scraped = await scrape(metrics);
    assert.equal(valueOf(scraped, 'maxine_cluster_is_leader'), 1);
    assert.equal(valueOf(scraped, 'maxine_cluster_has_leader'), 1);
    assert.equal(valueOf(scraped, 'maxine_leader_changes_total'), 2);
  });

  test('readings of the checker, the proxy, the event hub and the alerts; sign-ins', async () => {
    const { metrics } = make();
    metrics.signedIn(true);
    metrics.signedIn(false);
    metrics.credentialsRefused();
    const scraped = await scrape(metrics);
    assert.equal(valueOf(scraped, 'maxine_health_checks_total'), 12);
    assert.equal(valueOf(scraped, 'maxine_health_check_failures_total'), 3);
    assert.equal(valueOf(scraped, 'maxine_health_evictions_total'), 1);
    assert.equal(valueOf(scraped, 'maxine_proxied_requests_total'), 7);
    assert.equal(valueOf(scraped, 'maxine_event_connections'), 2);
    assert.equal(valueOf(scraped, 'maxine_events_sent_total', { type: 'service_registered' }), 5);
    assert.equal(valueOf(scraped, 'maxine_events_dropped_total'), 1);
    assert.equal(valueOf(scraped, 'maxine_event_resyncs_total'), 1);
    assert.equal(valueOf(scraped, 'maxine_auth_success_total'), 1);
    assert.equal(valueOf(scraped, 'maxine_auth_failures_total'), 2);
    assert.equal(valueOf(scraped, 'maxine_alerts_total', { rule: 'instance_evicted', severity: 'warning' }), 2);
    assert.equal(valueOf(scraped, 'maxine_alerts_firing', { rule: 'instance_evicted', severity: 'warning' }), 1);
    assert.ok(hasMetric(scraped, 'process_cpu_seconds_total'), 'process metrics keep their standard names');
  });

  test('request timings: cumulative buckets, sum and count, labels escaped', async () => {
    const { metrics } = make();
    const timings = metrics.requests.route('/odd/"quoted"\\path');
    timings.observe('GET', 200, 0.004);
    timings.observe('GET', 200, 0.02);
    const scraped = await scrape(metrics);
    const labels = { method: 'GET', route: '/odd/"quoted"\\path', status: '2xx' };
    assert.equal(valueOf(scraped, 'maxine_http_request_duration_seconds_bucket', { ...labels, le: '0.001' }), 0);
    assert.equal(valueOf(scraped, 'maxine_http_request_duration_seconds_bucket', { ...labels, le: '0.01' }), 1);
    assert.equal(valueOf(scraped, 'maxine_http_request_duration_seconds_bucket', { ...labels, le: '0.05' }), 2);
    assert.equal(valueOf(scraped, 'maxine_http_request_duration_seconds_bucket', { ...labels, le: '+Inf' }), 2);
    assert.equal(valueOf(scraped, 'maxine_http_request_duration_seconds_count', labels), 2);
    assert.ok(Math.abs(valueOf(scraped, 'maxine_http_request_duration_seconds_sum', labels) - 0.024) < 1e-9);
    assert.equal(valueOf(scraped, 'maxine_requests_total'), 2);
  });

  test('two instances in one process keep separate registries', async () => {
    const first = make().metrics;
    const second = new Metrics({
      catalog: new Catalog(100),
      store: { leadership: () => NO_LEADER, health: () => REACHABLE },
      ...IDLE_PARTS,
    });
    try {
      first.signedIn(true);
      assert.equal(valueOf(await scrape(first), 'maxine_auth_success_total'), 1);
      assert.equal(valueOf(await scrape(second), 'maxine_auth_success_total'), 0);
    } finally {
      second.close();
    }
  });
});

describe('instrumented store', () => {
  const instance = testInstance('a', 'a-1');
  const inner: RegistryStore = {
    kind: 'local',
    leasesInCatalog: true,
    open: async () => undefined,
    upsert: async (i) => i,
    renew: () => undefined,
    update: async () => null,
    remove: async () => {
      throw new StoreUnavailableError('backend away');
    },
    expire: async () => 0,
    evict: async () => {
      throw new FencedError('stale token');
    },
    putKv: async () => {
      throw new Error('a bug');
    },
    putKvIf: async () => null,
    leadership: () => NO_LEADER,
    health: () => REACHABLE,
    close: async () => undefined,
  };

  test('writes are timed, failures classified, renewals counted and passed on', async () => {
    const seen: [string, string | null][] = [];
    const renewed: string[] = [];
    let renewals = 0;
    const store = instrumentStore({ ...inner, renew: () => void renewals++ }, {
      operation: (operation, seconds, error) => {
        assert.ok(seconds >= 0);
        seen.push([operation, error]);
      },
      renewed: (i) => renewed.push(i.id),
    });
    assert.equal(store.kind, 'local');
    assert.equal(await store.upsert(instance, 1), instance);
    await assert.rejects(store.remove(instance, 'deregistered'), StoreUnavailableError);
    await assert.rejects(store.evict(instance, 1), FencedError);
    await assert.rejects(store.putKv('k', 'v'), /a bug/);
    assert.equal(await store.putKvIf('k', null, 'v'), null, 'a refused compare-and-set is not an error');
    assert.equal(await store.expire(1, 1), 0);
    store.renew(instance, 1);
    assert.deepEqual(seen, [
      ['upsert', null],
      ['remove', 'unavailable'],
      ['evict', 'fenced'],
      ['putKv', 'other'],
      ['putKvIf', null],
      ['expire', null],
    ]);
    assert.deepEqual(renewed, ['a-1']);
    assert.equal(renewals, 1);
  });

  test('Metrics counts registrations and store errors from it', async () => {
    const metrics = new Metrics({
      catalog: new Catalog(100),
      store: inner,
      ...IDLE_PARTS,
    });
    try {
      const store = instrumentStore(inner, metrics);
      await store.upsert(instance, 1);
      await assert.rejects(store.remove(instance, 'deregistered'));
      const scraped = parseScrape(await metrics.text());
      assert.equal(valueOf(scraped, 'maxine_registrations_total'), 1);
      assert.equal(valueOf(scraped, 'maxine_store_operation_duration_seconds_count', { operation: 'remove' }), 1);
      assert.equal(valueOf(scraped, 'maxine_store_operation_errors_total', { operation: 'remove', error: 'unavailable' }), 1);
    } finally {
      metrics.close();
    }
  });
});
