import { test } from 'node:test';
import assert from 'node:assert/strict';
import { roundRobin } from './round-robin.ts';
import { assertShares, context, countPicks, makeInstances } from './test-instances.ts';

test('round-robin follows the input order', () => {
  const instances = makeInstances([1, 1, 1]);
  const picker = roundRobin.build(instances);
  const ctx = context();
  const ids = Array.from({ length: 7 }, () => picker.pick(ctx).id);
  assert.deepEqual(ids, ['node-000', 'node-001', 'node-002', 'node-000', 'node-001', 'node-002', 'node-000']);
});

test('round-robin is exactly fair: N*k picks give each instance k', () => {
  const instances = makeInstances([1, 1, 1, 1, 1]);
  const counts = countPicks(roundRobin.build(instances), 100_000, context());
  for (const instance of instances) assert.equal(counts.get(instance.id), 20_000);
  assertShares(counts, instances, 100_000, 'equal');
});

test('round-robin ignores weights', () => {
  const instances = makeInstances([1, 2, 3, 4, 10]);
  const counts = countPicks(roundRobin.build(instances), 100_000, context());
  assertShares(counts, instances, 100_000, 'equal');
});

test('round-robin keeps a counter per picker', () => {
  const instances = makeInstances([1, 1, 1]);
  const first = roundRobin.build(instances);
  const second = roundRobin.build(instances);
  const ctx = context();
  first.pick(ctx);
  first.pick(ctx);
  assert.equal(second.pick(ctx).id, 'node-000');
  assert.equal(first.pick(ctx).id, 'node-002');
});

test('round-robin with one instance always returns it', () => {
  const [only] = makeInstances([1]);
  const picker = roundRobin.build([only!]);
  const ctx = context();
  for (let i = 0; i < 3; i++) assert.equal(picker.pick(ctx), only);
});
