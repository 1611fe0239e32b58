import { test } from 'node:test';
import assert from 'node:assert/strict';
import { weightedRoundRobin } from './weighted-round-robin.ts';
import { assertShares, context, countPicks, makeInstance, makeInstances } from './test-instances.ts';

test("smooth WRR reproduces nginx's sequence for weights 5, 1, 1", () => {
  const picker = weightedRoundRobin.build([makeInstance('a', 5), makeInstance('b', 1), makeInstance('c', 1)]);
  const ctx = context();
  const cycle = ['a', 'a', 'b', 'a', 'c', 'a', 'a'];
  for (let round = 0; round < 3; round++) {
    assert.deepEqual(Array.from({ length: 7 }, () => picker.pick(ctx).id), cycle);
  }
});

test('smooth WRR gives exact shares over whole cycles', () => {
  const instances = makeInstances([1, 2, 3, 4, 10]);
  // The cycle is the weight total (20) long, so 100,000 picks are 5,000 cycles.
  const counts = countPicks(weightedRoundRobin.build(instances), 100_000, context());
  for (const instance of instances) assert.equal(counts.get(instance.id), instance.weight * 5_000);
  assertShares(counts, instances, 100_000, 'weighted');
});

test('smooth WRR with equal weights is round robin', () => {
  const instances = makeInstances([3, 3, 3, 3, 3]);
  const picker = weightedRoundRobin.build(instances);
  const ctx = context();
  const ids = Array.from({ length: 10 }, () => picker.pick(ctx).id);
  assert.deepEqual(ids, [...instances, ...instances].map((i) => i.id));
  assertShares(countPicks(picker, 100_000, ctx), instances, 100_000, 'equal');
});

test('smooth WRR honours non-integer weights', () => {
  const instances = makeInstances([0.5, 1.5, 0.25, 2.75]);
  const counts = countPicks(weightedRoundRobin.build(instances), 100_000, context());
  assertShares(counts, instances, 100_000, 'weighted');
  // The cycle is 20 picks long (weights in quarters, total 5).
  assert.deepEqual(
    instances.map((i) => counts.get(i.id)),
    [10_000, 30_000, 5_000, 55_000],
  );
});

test('smooth WRR never picks an instance of weight 0', () => {
  const instances = makeInstances([0, 1, 2]);
  const counts = countPicks(weightedRoundRobin.build(instances), 3_000, context());
  assert.equal(counts.get('node-000'), undefined);
  assert.equal(counts.get('node-001'), 1_000);
  assert.equal(counts.get('node-002'), 2_000);
});

test('smooth WRR falls back to equal shares when no weight is positive', () => {
  const instances = makeInstances([0, 0, 0]);
  const counts = countPicks(weightedRoundRobin.build(instances), 3_000, context());
  for (const instance of instances) assert.equal(counts.get(instance.id), 1_000);
});
