import { test } from 'node:test';
import assert from 'node:assert/strict';
import { STRATEGIES, ZERO_LOAD, getStrategy } from './index.ts';
import { STRATEGY_NAMES, type StrategyName } from './strategy.ts';
import { context, makeInstances } from './test-instances.ts';

test('every strategy name has its strategy', () => {
  assert.deepEqual([...STRATEGIES.keys()].sort(), [...STRATEGY_NAMES].sort());
  for (const name of STRATEGY_NAMES) {
    assert.equal(getStrategy(name).name, name);
    assert.equal(getStrategy(name), STRATEGIES.get(name));
  }
});

test('getStrategy rejects a name that bypassed parsing', () => {
  assert.throws(() => getStrategy('fastest' as StrategyName), /unknown selection strategy: fastest/);
});

test('every strategy picks from its set with the zero load signals', () => {
  const instances = makeInstances([1, 2, 3]);
  const ctx = context({ key: '192.0.2.7', load: ZERO_LOAD });
  for (const strategy of STRATEGIES.values()) {
    const picker = strategy.build(instances);
    for (let i = 0; i < 10; i++) assert.ok(instances.includes(picker.pick(ctx)), strategy.name);
  }
  assert.equal(ZERO_LOAD.inflight(instances[0]!), 0);
  assert.equal(ZERO_LOAD.ewmaLatencyMs(instances[0]!), 0);
});
