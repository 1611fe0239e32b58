import { test } from 'node:test';
import assert from 'node:assert/strict';
import { weightedRandom } from './weighted-random.ts';
import { assertShares, context, countPicks, makeInstances, mulberry32 } from './test-instances.ts';

test('weighted random picks in proportion to weight', () => {
  const instances = makeInstances([1, 2, 3, 4, 10]);
  const counts = countPicks(weightedRandom.build(instances), 100_000, context({ random: mulberry32(42) }));
  assertShares(counts, instances, 100_000, 'weighted');
});

test('weighted random with equal weights is uniform', () => {
  const instances = makeInstances([2, 2, 2, 2, 2]);
  const counts = countPicks(weightedRandom.build(instances), 100_000, context({ random: mulberry32(9) }));
  assertShares(counts, instances, 100_000, 'equal');
});

test('weighted random maps each random value to the weight interval it falls in', () => {
  // Prefix sums 1, 3, 6: [0, 1) -> first, [1, 3) -> second, [3, 6) -> third.
  const instances = makeInstances([1, 2, 3]);
  const picker = weightedRandom.build(instances);
  const at = (r: number) => picker.pick(context({ random: () => r })).id;
  assert.equal(at(0), 'node-000');
  assert.equal(at(0.99 / 6), 'node-000');
  assert.equal(at(1 / 6), 'node-001');
  assert.equal(at(2.99 / 6), 'node-001');
  assert.equal(at(3 / 6), 'node-002');
  assert.equal(at(1 - Number.EPSILON / 2), 'node-002');
});

test('weighted random never picks an instance of weight 0 and falls back to equal when all are 0', () => {
  const some = makeInstances([1, 0, 1]);
  const counts = countPicks(weightedRandom.build(some), 10_000, context({ random: mulberry32(5) }));
  assert.equal(counts.get('node-001'), undefined);
  const none = makeInstances([0, 0]);
  const fallback = countPicks(weightedRandom.build(none), 10_000, context({ random: mulberry32(5) }));
  assertShares(fallback, none, 10_000, 'equal');
});
