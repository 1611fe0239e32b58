import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Instance } from '../instance.ts';
import { p2cEwma } from './p2c-ewma.ts';
import type { LoadSignals } from './strategy.ts';
import { FakeLoad, assertShares, context, countPicks, makeInstances, mulberry32 } from './test-instances.ts';

function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length]!;
}

test('p2c-ewma spreads evenly under equal load', () => {
  const instances = makeInstances([1, 1, 1, 1, 1]);
  const load = new FakeLoad();
  for (const instance of instances) {
    load.inflightById.set(instance.id, 2);
    load.latencyById.set(instance.id, 25);
  }
  const counts = countPicks(p2cEwma.build(instances), 100_000, context({ load, random: mulberry32(11) }));
  assertShares(counts, instances, 100_000, 'equal');
});

test('p2c-ewma avoids an instance with huge latency', () => {
  const instances = makeInstances([1, 1, 1, 1, 1]);
  const load = new FakeLoad();
  for (const instance of instances) load.latencyById.set(instance.id, 20);
  load.latencyById.set('node-003', 5_000);
  const counts = countPicks(p2cEwma.build(instances), 100_000, context({ load, random: mulberry32(12) }));
  // Its pair always holds a distinct, cheaper candidate, so it never wins.
  assert.equal(counts.get('node-003'), undefined);
  const others = instances.filter((i) => i.id !== 'node-003');
  assertShares(counts, others, 100_000, 'equal');
});

test('p2c-ewma favours lower latency in proportion to how often it is sampled', () => {
  // With latencies ranked, the k-th fastest of n wins every pair with the
  // slower ones: (n - k) / C(n, 2) of picks, i.e. 40%, 30%, 20%, 10%, 0%.
  const instances = makeInstances([1, 1, 1, 1, 1]);
  const load = new FakeLoad();
  [10, 20, 30, 40, 50].forEach((ms, i) => load.latencyById.set(instances[i]!.id, ms));
  const counts = countPicks(p2cEwma.build(instances), 100_000, context({ load, random: mulberry32(13) }));
  const expected = [0.4, 0.3, 0.2, 0.1, 0];
  instances.forEach((instance, i) => {
    const share = (counts.get(instance.id) ?? 0) / 100_000;
    assert.ok(Math.abs(share - expected[i]!) <= 0.02, `${instance.id}: ${share}`);
  });
});

test('p2c-ewma weighs requests in flight', () => {
  const instances = makeInstances([1, 1]);
  const load = new FakeLoad();
  load.inflightById.set('node-000', 10);
  const counts = countPicks(p2cEwma.build(instances), 1_000, context({ load, random: mulberry32(14) }));
  assert.deepEqual(counts, new Map([['node-001', 1_000]]));
});

test('p2c-ewma divides cost by weight', () => {
  const instances = makeInstances([1, 3]);
  const load = new FakeLoad();
  // Costs (10+1)*(0+1)/1 = 11 and (20+1)*(1+1)/3 = 14: the lighter one wins.
  load.latencyById.set('node-000', 10);
  load.latencyById.set('node-001', 20);
  load.inflightById.set('node-001', 1);
  const picker = p2cEwma.build(instances);
  assert.equal(picker.pick(context({ load, random: sequence(0.9, 0) })).id, 'node-000');
  // (20+1)*(0+1)/3 = 7 now undercuts 11.
  load.inflightById.set('node-001', 0);
  assert.equal(picker.pick(context({ load, random: sequence(0.9, 0) })).id, 'node-001');
});

test('p2c-ewma draws two distinct candidates and keeps the first on a tie', () => {
  const instances = makeInstances([1, 1, 1, 1]);
  const seen: Instance[] = [];
  const load: LoadSignals = {
    inflight: (instance) => {
      seen.push(instance);
      return 0;
    },
    ewmaLatencyMs: () => 0,
  };
  const picker = p2cEwma.build(instances);
  // Both draws map to index 2 of their range; the second skips over the first.
  const picked = picker.pick(context({ load, random: sequence(0.6, 0.7) }));
  assert.deepEqual(new Set(seen.map((i) => i.id)), new Set(['node-002', 'node-003']));
  assert.equal(picked.id, 'node-002');
});

test('p2c-ewma returns the only instance without drawing', () => {
  const [only] = makeInstances([1]);
  const picker = p2cEwma.build([only!]);
  const random = () => {
    throw new Error('no draw needed');
  };
  assert.equal(picker.pick(context({ random })), only);
});

test('p2c-ewma never picks an instance of weight 0', () => {
  const instances = makeInstances([1, 0, 1]);
  const counts = countPicks(p2cEwma.build(instances), 10_000, context({ random: mulberry32(15) }));
  assert.equal(counts.get('node-001'), undefined);
  assertShares(counts, [instances[0]!, instances[2]!], 10_000, 'equal');
});
