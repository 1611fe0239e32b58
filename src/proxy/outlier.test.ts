import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LocalEvent } from '../core/events.ts';
import { instanceKey } from '../core/keys.ts';
import { OutlierDetector } from './outlier.ts';
import { catalogOf } from '../core/fixtures.ts';
import { policy } from './test-support.ts';

const POLICY = policy({ outlierConsecutiveFailures: 3, outlierBaseEjectionMs: 1000, outlierMaxEjectionMs: 2500, outlierMaxEjectionPercent: 34 });

function setup(ids: string[]) {
  const catalog = catalogOf('svc', ids.map((id, i) => [id, 1000 + i] as const));
  const events: LocalEvent[] = [];
  catalog.subscribe({ event: () => undefined, reset: () => undefined, local: (e) => events.push(e) });
  let now = 1_000_000;
  const detector = new OutlierDetector(catalog, () => now);
  const fail = (id: string, times = 1) => {
    for (let i = 0; i < times; i++) detector.failure(instanceKey('svc', id), 'svc', id, POLICY);
  };
  return { catalog, events, detector, fail, advance: (ms: number) => (now += ms), now: () => now };
}

test('N consecutive failures eject; a success in between starts over; 0 disables', () => {
  const { catalog, events, detector, fail } = setup(['a', 'b', 'c']);
  fail('a', 2);
  detector.success(instanceKey('svc', 'a'));
  fail('a', 2);
  assert.equal(events.length, 0);
  fail('a');
  assert.deepEqual(events.map((e) => [e.type, e.id]), [['instance_ejected', 'a']]);
  assert.match(events[0]!.reason, /^3 consecutive 5xx responses or connection failures; ejected for 1 s$/);
  assert.deepEqual(catalog.service('svc')!.eligible().map((i) => i.id), ['b', 'c']);
  assert.deepEqual(detector.view(instanceKey('svc', 'a')), { consecutiveFailures: 0, timesEjected: 1, ejected: true, ejectedUntil: 1_001_000 });
  fail('a', 5);
  assert.equal(events.length, 1, 'an ejected instance is not ejected again');
  for (let i = 0; i < 10; i++) detector.failure(instanceKey('svc', 'b'), 'svc', 'b', { ...POLICY, outlierConsecutiveFailures: 0 });
  assert.equal(events.length, 1);
  detector.stop();
});

test('the max ejection percentage caps ejections over the service', () => {
  const { events, detector, fail } = setup(['a', 'b', 'c']);
  fail('a', 3);
  fail('b', 3);
  fail('c', 3);
  // 34 % of 3 instances: one may be out (33 %), two (67 %) may not.
  assert.deepEqual(events.map((e) => e.id), ['a']);
  assert.deepEqual(detector.stats(), { ejectionsTotal: 1, restoresTotal: 0, cappedTotal: 2, ejectedNow: 1 });
  detector.stop();
  assert.deepEqual(detector.stats(), { ejectionsTotal: 1, restoresTotal: 1, cappedTotal: 2, ejectedNow: 0 });
  assert.equal(events.at(-1)?.type, 'instance_restored');
});

const FAST = { ...POLICY, outlierBaseEjectionMs: 40, outlierMaxEjectionMs: 100 };

async function ejectAndWait(detector: OutlierDetector, id: string): Promise<void> {
  const restored = detector.stats().restoresTotal;
  for (let i = 0; i < 3; i++) detector.failure(instanceKey('svc', id), 'svc', id, FAST);
  assert.equal(detector.view(instanceKey('svc', id))!.ejected, true);
  while (detector.stats().restoresTotal === restored) await sleep(5);
}

test('restored by a timer; ejection time grows with each ejection up to the maximum', async () => {
  const { catalog, events, detector, now } = setup(['a', 'b', 'c']);
  const key = instanceKey('svc', 'a');
  const durations: number[] = [];
  for (let round = 0; round < 4; round++) {
    const restored = detector.stats().restoresTotal;
    for (let i = 0; i < 3; i++) detector.failure(key, 'svc', 'a', FAST);
    durations.push(detector.view(key)!.ejectedUntil! - now());
    assert.equal(catalog.entry({ service: 'svc', id: 'a' })?.ejected, true);
    while (detector.stats().restoresTotal === restored) await sleep(5);
    assert.equal(catalog.entry({ service: 'svc', id: 'a' })?.ejected, false);
  }
  assert.deepEqual(durations, [40, 80, 100, 100]);
  assert.deepEqual(
    events.map((e) => e.type),
    ['instance_ejected', 'instance_restored', 'instance_ejected', 'instance_restored', 'instance_ejected', 'instance_restored', 'instance_ejected', 'instance_restored'],
  );
  assert.match(events[1]!.reason, /ejection of 40 ms ended/);
  detector.stop();
});

test('the count of ejections starts over after a healthy spell as long as the maximum ejection', async () => {
  const { detector, advance } = setup(['a', 'b', 'c']);
  const key = instanceKey('svc', 'a');
  await ejectAndWait(detector, 'a');
  advance(99);
  await ejectAndWait(detector, 'a');
  assert.equal(detector.view(key)!.timesEjected, 2);
  advance(100);
  await ejectAndWait(detector, 'a');
  assert.equal(detector.view(key)!.timesEjected, 1);
  detector.stop();
});

test('forget clears the timer', () => {
  const { detector, fail } = setup(['a', 'b', 'c']);
  fail('a', 3);
  assert.equal(detector.stats().ejectedNow, 1);
  detector.forget(instanceKey('svc', 'a'));
  assert.equal(detector.stats().ejectedNow, 0);
  assert.equal(detector.view(instanceKey('svc', 'a')), undefined);
});

test('resync drops the gone and ejects again what a reset brought back', () => {
  const { catalog, events, detector, fail } = setup(['a', 'b', 'c']);
  fail('b', 3);
  const snapshot = catalog.snapshot();
  catalog.reset({ ...snapshot, revision: snapshot.revision + 1 });
  assert.equal(catalog.entry({ service: 'svc', id: 'b' })?.ejected, false, 'a fresh catalog entry is never ejected');
  detector.resync();
  assert.equal(catalog.entry({ service: 'svc', id: 'b' })?.ejected, true);
  assert.equal(events.at(-1)?.type, 'instance_ejected');

  catalog.reset({ revision: snapshot.revision + 2, instances: [], kv: [] });
  detector.resync();
  assert.equal(detector.view(instanceKey('svc', 'b')), undefined);
  assert.equal(detector.stats().ejectedNow, 0);
  detector.stop();
});
