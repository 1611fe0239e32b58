import { test } from 'node:test';
import assert from 'node:assert/strict';
import { weightedSet } from './weights.ts';
import { makeInstances } from './test-instances.ts';

test('weightedSet keeps the given array when every weight is usable', () => {
  const instances = makeInstances([1, 0.5, 7]);
  const set = weightedSet(instances);
  assert.equal(set.instances, instances);
  assert.deepEqual([...set.weights], [1, 0.5, 7]);
});

test('weightedSet drops instances without a positive finite weight', () => {
  const instances = makeInstances([0, 2, -1, Number.NaN, Number.POSITIVE_INFINITY, 3]);
  const set = weightedSet(instances);
  assert.deepEqual(
    set.instances.map((i) => i.id),
    ['node-001', 'node-005'],
  );
  assert.deepEqual([...set.weights], [2, 3]);
});

test('weightedSet shares equally when no weight is usable', () => {
  const instances = makeInstances([0, -2, 0]);
  const set = weightedSet(instances);
  assert.equal(set.instances, instances);
  assert.deepEqual([...set.weights], [1, 1, 1]);
});
