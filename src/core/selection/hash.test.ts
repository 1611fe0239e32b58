import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ID_SEED_2, fmix32, hashString, hashWords3 } from './hash.ts';
import { addressKeys } from './test-instances.ts';

test('hashString is FNV-1a finalised with fmix32', () => {
  // Published FNV-1a 32-bit vectors.
  assert.equal(hashString(''), fmix32(0x811c9dc5));
  assert.equal(hashString('a'), fmix32(0xe40c292c));
  assert.equal(hashString('foobar'), fmix32(0xbf9cf968));
});

test('hashWords3 is murmur3_x86_32 of the three little-endian words', () => {
  // Checked against a reference murmur3 (which reproduces the published
  // vectors) over the bytes 01 00 00 00 ef be ad de 2a 00 00 00.
  assert.equal(hashWords3(1, 0xdeadbeef, 42), 0x4e690fe2);
});

test('hash values are pinned: changing them would remap every key', () => {
  assert.deepEqual(
    ['10.0.0.1', 'user-42', 'node-000', 'ünïcode ✓'].map((s) => hashString(s)),
    [0xaebc85ae, 0x7c2a1196, 0x456ccaa3, 0xd2500950],
  );
  assert.equal(hashString('node-000', ID_SEED_2), 0x05f3a139);
});

test('hashString spreads consecutive addresses evenly over the top bits', () => {
  const buckets = new Array<number>(64).fill(0);
  const keys = addressKeys(64_000);
  for (const key of keys) buckets[hashString(key) >>> 26]!++;
  for (const count of buckets) assert.ok(Math.abs(count - 1_000) < 150, `bucket count ${count}`);
});

test('the seed gives a different function of the same string', () => {
  let equal = 0;
  for (const key of addressKeys(10_000)) if (hashString(key) === hashString(key, ID_SEED_2)) equal++;
  assert.equal(equal, 0);
});
