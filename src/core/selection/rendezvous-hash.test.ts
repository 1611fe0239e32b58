import { test } from 'node:test';
import { rendezvousHash } from './rendezvous-hash.ts';
import { hashingStrategySuite } from './hashing-suite.ts';
import { addressKeys, assertShares, assignKeys, context, countIds, makeInstances } from './test-instances.ts';

hashingStrategySuite(rendezvousHash);

test('rendezvous-hash: honours large and fractional weight ratios', () => {
  const instances = makeInstances([0.5, 50, 49.5]);
  const keys = addressKeys(100_000);
  const counts = countIds(assignKeys(rendezvousHash.build(instances), keys, context()));
  assertShares(counts, instances, keys.length, 'weighted');
});
