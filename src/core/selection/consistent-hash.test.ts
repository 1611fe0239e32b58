import { test } from 'node:test';
import { consistentHash, MAX_VNODES_PER_INSTANCE, VNODES_PER_WEIGHT } from './consistent-hash.ts';
import { hashingStrategySuite } from './hashing-suite.ts';
import { addressKeys, assertShares, assignKeys, context, countIds, makeInstances } from './test-instances.ts';

hashingStrategySuite(consistentHash);

test('consistent-hash: weights beyond the per-instance node cap count as the cap', () => {
  const cappedWeight = MAX_VNODES_PER_INSTANCE / VNODES_PER_WEIGHT;
  const instances = makeInstances([cappedWeight, cappedWeight * 4]);
  const keys = addressKeys(100_000);
  const counts = countIds(assignKeys(consistentHash.build(instances), keys, context()));
  assertShares(counts, instances, keys.length, 'equal');
});
