import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { Catalog } from '../core/catalog.ts';
import type { RemoveReason } from '../core/changes.ts';
import { testInstance } from '../core/fixtures.ts';
import type { Instance } from '../core/instance.ts';
import { RegistryConditions } from './registry-conditions.ts';
import type { Condition } from './rules.ts';
import { InstanceThresholds } from './thresholds.ts';

const FAILED_AT = Date.UTC(2024, 4, 1, 12, 0, 0);

/** A real catalog fed like a store would feed it, one revision per change. */
class Feed {
  readonly catalog = new Catalog(100);
  private revision = 0;

  upsert(service: string, id: string, overrides: Partial<Instance> = {}): Instance {
    const instance = testInstance(service, id, { modifyRevision: this.revision + 1, ...overrides });
    this.catalog.apply({ kind: 'upsert', revision: ++this.revision, instance, renewedAt: Date.now() });
    return instance;
  }

  critical(service: string, id: string, reason = 'HTTP 503', overrides: Partial<Instance> = {}): Instance {
    return this.upsert(service, id, { health: 'critical', healthReason: reason, healthChangedAt: FAILED_AT, ...overrides });
  }

  remove(service: string, id: string, reason: RemoveReason): void {
    this.catalog.apply({ kind: 'remove', revision: ++this.revision, key: { service, id }, reason });
  }

  get nextRevision(): number {
    return ++this.revision;
  }
}

let open: RegistryConditions[] = [];

function watch(feed: Feed, defaultMin: number, byService: Record<string, number> = {}): () => Condition[] {
  const conditions = new RegistryConditions(feed.catalog, new InstanceThresholds(defaultMin, new Map(Object.entries(byService))));
  open.push(conditions);
  return () => {
    const into: Condition[] = [];
    conditions.collect(into);
    return into;
  };
}

/** rule:service[/instance] of each condition, sorted: order between services is not part of the contract. */
function subjects(conditions: readonly Condition[]): string[] {
  return conditions.map((c) => `${c.rule}:${c.service}${c.instanceId === null ? '' : `/${c.instanceId}`}`).sort();
}

afterEach(() => {
  for (const c of open) c.close();
  open = [];
});

describe('RegistryConditions: service_instances_low', () => {
  test('a service below its threshold yields one condition with eligible, threshold and registered', () => {
    const feed = new Feed();
    feed.upsert('orders', 'o1');
    feed.upsert('billing', 'b1');
    feed.upsert('billing', 'b2');
    const collect = watch(feed, 2);
    assert.deepEqual(collect(), [
      {
        rule: 'service_instances_low',
        service: 'orders',
        instanceId: null,
        replica: null,
        summary: 'orders has 1 eligible instance (threshold 2; 1 registered)',
        details: { eligible: 1, threshold: 2, registered: 1 },
      },
    ]);
    assert.deepEqual(subjects(collect()), ['service_instances_low:orders'], 'still holds on the next evaluation');
  });

  test('draining, starting, maintenance and critical instances are not eligible; warning ones are', () => {
    const feed = new Feed();
    feed.upsert('orders', 'up');
    feed.upsert('orders', 'warn', { health: 'warning', healthReason: 'slow' });
    feed.upsert('orders', 'drain', { status: 'draining' });
    feed.upsert('orders', 'start', { status: 'starting' });
    feed.upsert('orders', 'maint', { status: 'maintenance' });
    feed.critical('orders', 'sick');
    const collect = watch(feed, 3);
    const conditions = collect();
    const lowOrders = conditions.find((c) => c.rule === 'service_instances_low');
    assert.deepEqual(lowOrders?.details, { eligible: 2, threshold: 3, registered: 6 });
    assert.equal(lowOrders?.summary, 'orders has 2 eligible instances (threshold 3; 6 registered)');
    assert.deepEqual(subjects(conditions), ['instance_evicted:orders/sick', 'service_instances_low:orders']);
  });

  test('an instance added (or brought up) clears the condition at the next collect', () => {
    const feed = new Feed();
    feed.upsert('orders', 'o1');
    feed.upsert('orders', 'o2', { status: 'starting' });
    const collect = watch(feed, 2);
    assert.deepEqual(subjects(collect()), ['service_instances_low:orders']);
    feed.upsert('orders', 'o2', { status: 'up' });
    assert.deepEqual(collect(), []);
    feed.upsert('orders', 'o1', { status: 'draining' });
    assert.deepEqual(collect()[0]?.details, { eligible: 1, threshold: 2, registered: 2 });
    feed.upsert('orders', 'o3');
    assert.deepEqual(collect(), []);
  });

  test('the count follows changes made after the first collect, service by service', () => {
    const feed = new Feed();
    feed.upsert('a', 'a1');
    feed.upsert('b', 'b1');
    feed.upsert('b', 'b2');
    const collect = watch(feed, 2);
    assert.deepEqual(subjects(collect()), ['service_instances_low:a']);
    feed.remove('b', 'b2', 'deregistered');
    assert.deepEqual(subjects(collect()), ['service_instances_low:a', 'service_instances_low:b']);
    assert.equal(collect().find((c) => c.service === 'b')?.summary, 'b has 1 eligible instance (threshold 2; 1 registered)');
  });

  test('a service named exactly with a threshold above 0 is watched with no instance at all', () => {
    const feed = new Feed();
    const collect = watch(feed, 0, { payments: 2 });
    assert.deepEqual(collect(), [
      {
        rule: 'service_instances_low',
        service: 'payments',
        instanceId: null,
        replica: null,
        summary: 'payments has 0 eligible instances (threshold 2; 0 registered)',
        details: { eligible: 0, threshold: 2, registered: 0 },
      },
    ]);
    feed.upsert('payments', 'p1');
    feed.upsert('payments', 'p2');
    assert.deepEqual(collect(), []);
    feed.remove('payments', 'p1', 'expired');
    feed.remove('payments', 'p2', 'deregistered');
    assert.equal(feed.catalog.service('payments'), undefined, 'the service is gone from the catalog');
    assert.deepEqual(collect()[0]?.details, { eligible: 0, threshold: 2, registered: 0 });
  });

  test('a service known by a pattern or the default only is not watched once it disappears', () => {
    const feed = new Feed();
    feed.upsert('web-eu', 'w1');
    feed.upsert('search', 's1');
    const collect = watch(feed, 2, { 'web-*': 3 });
    assert.deepEqual(subjects(collect()), ['service_instances_low:search', 'service_instances_low:web-eu']);
    assert.deepEqual(collect().find((c) => c.service === 'web-eu')?.details, { eligible: 1, threshold: 3, registered: 1 });
    feed.remove('web-eu', 'w1', 'deregistered');
    feed.remove('search', 's1', 'expired');
    assert.deepEqual(collect(), []);
  });

  test('threshold 0 turns the rule off for a service, exactly or by default', () => {
    const feed = new Feed();
    feed.upsert('legacy', 'l1', { status: 'draining' });
    feed.upsert('batch', 'b1', { status: 'draining' });
    feed.upsert('orders', 'o1', { status: 'draining' });
    const collect = watch(feed, 0, { legacy: 0, orders: 1 });
    assert.deepEqual(subjects(collect()), ['service_instances_low:orders']);
    feed.remove('legacy', 'l1', 'deregistered');
    assert.deepEqual(subjects(collect()), ['service_instances_low:orders'], 'named with 0 is not watched when absent either');
  });
});

describe('RegistryConditions: instance_evicted', () => {
  test('a critical instance yields an instance_evicted condition with its reason, address and since', () => {
    const feed = new Feed();
    const collect = watch(feed, 0);
    assert.deepEqual(collect(), []);
    feed.upsert('orders', 'o1', { port: 9001 });
    feed.critical('orders', 'o1', 'HTTP 503', { port: 9001 });
    assert.deepEqual(collect(), [
      {
        rule: 'instance_evicted',
        service: 'orders',
        instanceId: 'o1',
        replica: null,
        summary: 'orders instance o1 failed its health checks (HTTP 503) and gets no traffic',
        details: { reason: 'HTTP 503', address: 'http://127.0.0.1:9001', since: '2024-05-01T12:00:00.000Z' },
      },
    ]);
  });

  test('the condition follows the latest critical verdict', () => {
    const feed = new Feed();
    const collect = watch(feed, 0);
    feed.critical('orders', 'o1', 'HTTP 503');
    collect();
    feed.critical('orders', 'o1', 'connection refused');
    assert.equal(collect()[0]?.details['reason'], 'connection refused');
  });

  test('it clears when the instance passes again', () => {
    const feed = new Feed();
    const collect = watch(feed, 0);
    feed.critical('orders', 'o1');
    feed.critical('orders', 'o2');
    assert.deepEqual(subjects(collect()), ['instance_evicted:orders/o1', 'instance_evicted:orders/o2']);
    feed.upsert('orders', 'o1', { health: 'passing', healthReason: 'HTTP 200' });
    assert.deepEqual(subjects(collect()), ['instance_evicted:orders/o2']);
    feed.upsert('orders', 'o2', { health: 'warning', healthReason: 'slow' });
    assert.deepEqual(collect(), [], 'warning is not an eviction');
  });

  for (const reason of ['deregistered', 'expired', 'evicted'] as const) {
    test(`it clears when the instance is removed (${reason})`, () => {
      const feed = new Feed();
      const collect = watch(feed, 0);
      feed.critical('orders', 'o1');
      feed.critical('billing', 'o1');
      assert.deepEqual(subjects(collect()), ['instance_evicted:billing/o1', 'instance_evicted:orders/o1']);
      feed.remove('orders', 'o1', reason);
      assert.deepEqual(subjects(collect()), ['instance_evicted:billing/o1'], 'the same id in another service is another instance');
    });
  }

  test('critical instances present before the first collect are found', () => {
    const feed = new Feed();
    feed.critical('orders', 'o1');
    feed.upsert('orders', 'o2');
    const collect = watch(feed, 0);
    assert.deepEqual(subjects(collect()), ['instance_evicted:orders/o1']);
  });
});

describe('RegistryConditions: reset', () => {
  test('catalog.reset(snapshot) rebuilds both rules from the snapshot', () => {
    const feed = new Feed();
    feed.upsert('orders', 'o1');
    feed.critical('orders', 'o2');
    feed.upsert('billing', 'b1');
    feed.upsert('billing', 'b2');
    const collect = watch(feed, 2, { payments: 1 });
    assert.deepEqual(subjects(collect()), ['instance_evicted:orders/o2', 'service_instances_low:orders', 'service_instances_low:payments']);

    // The store resyncs: orders recovered, billing lost one, payments arrived, a new instance is critical.
    const revision = feed.nextRevision;
    const at = (instance: Instance) => ({ instance, renewedAt: Date.now() });
    feed.catalog.reset({
      revision,
      instances: [
        at(testInstance('orders', 'o1')),
        at(testInstance('orders', 'o2')),
        at(testInstance('billing', 'b1')),
        at(testInstance('payments', 'p1')),
        at(testInstance('search', 's1', { health: 'critical', healthReason: 'timeout', healthChangedAt: FAILED_AT })),
        at(testInstance('search', 's2')),
      ],
      kv: [],
    });
    const conditions = collect();
    assert.deepEqual(subjects(conditions), ['instance_evicted:search/s1', 'service_instances_low:billing', 'service_instances_low:search']);
    assert.deepEqual(conditions.find((c) => c.service === 'search' && c.rule === 'service_instances_low')?.details, { eligible: 1, threshold: 2, registered: 2 });

    // And events after the reset are followed again.
    feed.upsert('billing', 'b2');
    assert.deepEqual(subjects(collect()), ['instance_evicted:search/s1', 'service_instances_low:search']);
  });

  test('a reset to an empty catalog leaves only the named services', () => {
    const feed = new Feed();
    feed.critical('orders', 'o1');
    const collect = watch(feed, 2, { payments: 1 });
    assert.deepEqual(subjects(collect()), ['instance_evicted:orders/o1', 'service_instances_low:orders', 'service_instances_low:payments']);
    feed.catalog.reset({ revision: feed.nextRevision, instances: [], kv: [] });
    assert.deepEqual(subjects(collect()), ['service_instances_low:payments']);
  });
});
