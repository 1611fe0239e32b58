import assert from 'node:assert/strict';
import { test } from 'node:test';
import { testInstance } from '../core/fixtures.ts';
import { LoadTracker } from './load-tracker.ts';

test('in-flight counts per instance survive the Instance object being replaced', () => {
  const tracker = new LoadTracker(() => 0);
  const before = testInstance('svc', 'a');
  const after = testInstance('svc', 'a', { health: 'warning' });
  const other = testInstance('svc', 'b');
  const first = tracker.start(before);
  tracker.start(before);
  assert.equal(tracker.inflight(after), 2, 'a new object for the same id sees the same state');
  assert.equal(tracker.inflight(other), 0);
  tracker.finish(first, false);
  assert.equal(tracker.inflight(after), 1);
  assert.equal(tracker.totalInflight, 1);
  const state = tracker.get('svc', 'a')!;
  assert.deepEqual([state.inflight, state.requests, state.failures], [1, 2, 0]);
});

test('counts never go negative: a lease ends once, and one started before a removal ends on its own state', () => {
  const tracker = new LoadTracker(() => 0);
  const a = testInstance('svc', 'a');
  const lease = tracker.start(a);
  tracker.finish(lease, true);
  tracker.finish(lease, true);
  assert.equal(tracker.inflight(a), 0);
  assert.equal(tracker.get('svc', 'a')?.failures, 1);
  assert.equal(tracker.totalInflight, 0);

  const old = tracker.start(a);
  tracker.forget('svc', 'a');
  assert.equal(tracker.inflight(a), 0);
  const fresh = tracker.start(testInstance('svc', 'a', { port: 9 }));
  tracker.finish(old, false);
  assert.equal(tracker.inflight(a), 1, 'the re-registered instance keeps its own count');
  tracker.finish(fresh, false);
  assert.equal(tracker.inflight(a), 0);
  assert.equal(tracker.totalInflight, 0);
});

test('latency EWMA: a slower sample counts at once, a faster one with time; no samples decay towards 0', () => {
  let now = 1_000_000;
  const tracker = new LoadTracker(() => now, 10_000);
  const a = testInstance('svc', 'a');
  assert.equal(tracker.ewmaLatencyMs(a), 0);
  const lease = tracker.start(a);
  tracker.observeLatency(lease, 100);
  assert.equal(tracker.ewmaLatencyMs(a), 100);
  tracker.observeLatency(lease, 300);
  assert.equal(tracker.ewmaLatencyMs(a), 300, 'peak');
  now += 10;
  tracker.observeLatency(lease, 100);
  const afterFast = tracker.ewmaLatencyMs(a);
  assert.ok(afterFast < 300 && afterFast > 299, `${afterFast}: 10 ms after the last sample, a fast one barely moves it`);
  now += 10_000;
  const decayed = tracker.ewmaLatencyMs(a);
  assert.ok(Math.abs(decayed - afterFast / Math.E) < 1e-9, `${decayed}: one time constant later it reads 1/e`);
  tracker.observeLatency(lease, 50);
  const blended = afterFast * Math.exp(-1) + 50 * (1 - Math.exp(-1));
  assert.ok(Math.abs(tracker.ewmaLatencyMs(a) - blended) < 1e-9);
});

test('prune keeps only what the catalog still has', () => {
  const tracker = new LoadTracker(() => 0);
  tracker.start(testInstance('s1', 'a'));
  tracker.start(testInstance('s1', 'b'));
  tracker.start(testInstance('s2', 'c'));
  tracker.prune((service, id) => service === 's1' && id === 'b');
  assert.equal(tracker.get('s1', 'a'), undefined);
  assert.equal(tracker.get('s2', 'c'), undefined);
  assert.equal(tracker.get('s1', 'b')?.inflight, 1);
});
