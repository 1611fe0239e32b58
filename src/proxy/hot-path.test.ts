/**
 * Not a benchmark: a check that the per-request reads allocate nothing once
 * optimised. A million calls that allocated even 8 bytes each would fill the
 * young generation several times over and force scavenges; so the test
 * counts scavenges during the loop (GC entries, delivered a little later)
 * and the growth of the young generation, and expects neither.
 */
import assert from 'node:assert/strict';
import { PerformanceObserver } from 'node:perf_hooks';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { NO_FILTER } from '../core/filter.ts';
import { Breakers } from './breaker.ts';
import { instanceKey } from '../core/keys.ts';
import { LoadTracker } from './load-tracker.ts';
import { OutlierDetector } from './outlier.ts';
import { RetryBudgets } from './retry-budget.ts';
import { catalogOf } from '../core/fixtures.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function youngGenerationUsed(): number {
  return v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')!.space_used_size;
}

async function allocationsOf(operation: (i: number) => number): Promise<{ scavenges: number; grown: number }> {
  for (let i = 0; i < 100_000; i++) operation(i);
  let scavenges = 0;
  const observer = new PerformanceObserver((list) => {
    scavenges += list.getEntries().length;
  });
  gc();
  await sleep(50);
  observer.observe({ entryTypes: ['gc'] });
  const before = youngGenerationUsed();
  let sink = 0;
  for (let i = 0; i < 1_000_000; i++) sink += operation(i);
  const grown = youngGenerationUsed() - before;
  await sleep(100);
  observer.disconnect();
  assert.ok(Number.isFinite(sink));
  return { scavenges, grown };
}

test('the measurement sees an allocating operation', async () => {
  const keep: object[] = [];
  const result = await allocationsOf((i) => {
    keep[0] = { i };
    return 1;
  });
  assert.ok(result.scavenges > 0, JSON.stringify(result));
});

test('load signals, breaker admission, outlier success and budget checks allocate nothing', async () => {
  const catalog = catalogOf('svc', [['a', 1], ['b', 2], ['c', 3]]);
  const [a, b, c] = catalog.service('svc')!.eligible();
  const unknown = catalogOf('other', [['z', 9]]).service('other')!.eligible()[0]!;
  const load = new LoadTracker(() => 5_000_000);
  load.start(a!);
  load.observeLatency(load.start(b!), 12.5);
  const keyA = instanceKey('svc', 'a');
  const breakers = new Breakers(() => 0);
  breakers.record(keyA, false, 'failure', 5, 1000);
  const outliers = new OutlierDetector(catalog, () => 0);
  const budgets = new RetryBudgets(() => 5_000_000);
  budgets.request('svc');
  const ctx = { key: '', random: Math.random, load };
  // Results are folded into small integers: a double returned across a call the optimiser did not inline is boxed by the caller.
  const checks: [string, (i: number) => number][] = [
    ['inflight', () => load.inflight(a!) + load.inflight(unknown)],
    ['ewma', () => (load.ewmaLatencyMs(b!) > 12 ? 1 : 0) + load.ewmaLatencyMs(unknown)],
    ['breaker admit', () => (breakers.admit(keyA, 5) === 'allowed' ? 1 : 0)],
    ['outlier success', () => {
      outliers.success(keyA);
      return 1;
    }],
    ['retry budget', () => (budgets.canRetry('svc', 20, 1) ? 1 : 0)],
    ['least-requests pick', () => (catalog.pick('svc', NO_FILTER, 'least-requests', ctx) === c ? 1 : 0)],
  ];
  for (const [name, operation] of checks) {
    const result = await allocationsOf(operation);
    assert.equal(result.scavenges, 0, `${name}: ${JSON.stringify(result)}`);
    assert.ok(result.grown < 64 * 1024, `${name}: ${JSON.stringify(result)}`);
  }
});
