import { test } from 'node:test';
import assert from 'node:assert/strict';
import { random } from './random.ts';
import { assertShares, context, countPicks, makeInstances, mulberry32 } from './test-instances.ts';

test('random is uniform over the set', () => {
  const instances = makeInstances([1, 1, 1, 1, 1]);
  const counts = countPicks(random.build(instances), 100_000, context({ random: mulberry32(42) }));
  assertShares(counts, instances, 100_000, 'equal');
});

test('random ignores weights', () => {
  const instances = makeInstances([1, 2, 3, 4, 10]);
  const counts = countPicks(random.build(instances), 100_000, context({ random: mulberry32(7) }));
  assertShares(counts, instances, 100_000, 'equal');
});

test('random takes its randomness only from the context', () => {
  const instances = makeInstances([1, 1, 1, 1, 1]);
  const a = random.build(instances);
  const b = random.build(instances);
  const ctxA = context({ random: mulberry32(3) });
  const ctxB = context({ random: mulberry32(3) });
  for (let i = 0; i < 1_000; i++) assert.equal(a.pick(ctxA), b.pick(ctxB));
});

test('random maps the ends of [0, 1) to the first and last instance', () => {
  const instances = makeInstances([1, 1, 1]);
  const picker = random.build(instances);
  assert.equal(picker.pick(context({ random: () => 0 })), instances[0]);
  assert.equal(picker.pick(context({ random: () => 1 - Number.EPSILON / 2 })), instances[2]);
});
