import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ZERO_LOAD } from './index.ts';
import { leastRequests } from './least-requests.ts';
import { FakeLoad, assertShares, context, countPicks, makeInstances } from './test-instances.ts';

test('least-requests with zero load is fair round robin', () => {
  const instances = makeInstances([1, 1, 1, 1, 1]);
  const picker = leastRequests.build(instances);
  const ctx = context({ load: ZERO_LOAD });
  assert.deepEqual(
    Array.from({ length: 5 }, () => picker.pick(ctx).id),
    instances.map((i) => i.id),
  );
  assertShares(countPicks(picker, 100_000, ctx), instances, 100_000, 'equal');
});

test('least-requests picks the instance with the fewest requests in flight', () => {
  const instances = makeInstances([1, 1, 1, 1, 1]);
  const load = new FakeLoad();
  [5, 3, 0, 7, 2].forEach((n, i) => load.inflightById.set(instances[i]!.id, n));
  const counts = countPicks(leastRequests.build(instances), 1_000, context({ load }));
  assert.deepEqual(counts, new Map([['node-002', 1_000]]));
});

test('least-requests follows the load as it changes', () => {
  const instances = makeInstances([1, 1, 1]);
  const picker = leastRequests.build(instances);
  const load = new FakeLoad();
  const ctx = context({ load });
  // Each pick adds a request in flight, as the proxy would.
  for (let i = 0; i < 30; i++) {
    const picked = picker.pick(ctx);
    load.inflightById.set(picked.id, load.inflight(picked) + 1);
  }
  for (const instance of instances) assert.equal(load.inflight(instance), 10);
  load.inflightById.set('node-001', 0);
  assert.equal(picker.pick(ctx).id, 'node-001');
});

test('least-requests shares fairly among the instances that tie', () => {
  const instances = makeInstances([1, 1, 1, 1, 1]);
  const load = new FakeLoad();
  [0, 9, 0, 9, 0].forEach((n, i) => load.inflightById.set(instances[i]!.id, n));
  const counts = countPicks(leastRequests.build(instances), 30_000, context({ load }));
  assert.deepEqual(
    counts,
    new Map([
      ['node-000', 10_000],
      ['node-002', 10_000],
      ['node-004', 10_000],
    ]),
  );
});

test('least-requests compares requests in flight per unit of weight', () => {
  const instances = makeInstances([1, 4]);
  const load = new FakeLoad();
  load.inflightById.set('node-000', 2);
  load.inflightById.set('node-001', 6);
  const picker = leastRequests.build(instances);
  assert.equal(picker.pick(context({ load })).id, 'node-001');
  load.inflightById.set('node-001', 9);
  assert.equal(picker.pick(context({ load })).id, 'node-000');
});

test('least-requests never picks an instance of weight 0', () => {
  const instances = makeInstances([0, 1, 1]);
  const load = new FakeLoad();
  load.inflightById.set('node-001', 3);
  load.inflightById.set('node-002', 3);
  const counts = countPicks(leastRequests.build(instances), 1_000, context({ load }));
  assert.equal(counts.get('node-000'), undefined);
});
