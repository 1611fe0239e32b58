/**
 * Test-only: the behaviour both hashing strategies share, run against each
 * of them by their own test files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Instance } from '../instance.ts';
import type { Strategy } from './strategy.ts';
import {
  addressKeys,
  assertShares,
  assignKeys,
  context,
  countIds,
  makeInstance,
  makeInstances,
} from './test-instances.ts';

const KEYS = addressKeys(100_000);

function noRandom(): number {
  throw new Error('a hashing strategy must not use ctx.random');
}

function assign(strategy: Strategy, instances: readonly Instance[]): string[] {
  return assignKeys(strategy.build(instances), KEYS, context({ random: noRandom }));
}

export function hashingStrategySuite(strategy: Strategy): void {
  const name = strategy.name;

  test(`${name}: 100,000 keys spread evenly over equal weights`, () => {
    const instances = makeInstances([1, 1, 1, 1, 1]);
    assertShares(countIds(assign(strategy, instances)), instances, KEYS.length, 'equal');
  });

  test(`${name}: 100,000 keys spread in proportion to weight`, () => {
    const instances = makeInstances([1, 2, 3, 4, 10]);
    assertShares(countIds(assign(strategy, instances)), instances, KEYS.length, 'weighted');
  });

  test(`${name}: the same key always maps to the same instance`, () => {
    const instances = makeInstances([1, 1, 1, 1, 1, 1, 1]);
    const picker = strategy.build(instances);
    // Another replica builds its own picker from its own copies.
    const replica = strategy.build(makeInstances([1, 1, 1, 1, 1, 1, 1]));
    const ctx = context({ random: noRandom });
    for (const key of KEYS.slice(0, 2_000)) {
      ctx.key = key;
      const first = picker.pick(ctx);
      for (let i = 0; i < 3; i++) assert.equal(picker.pick(ctx), first);
      assert.equal(replica.pick(ctx).id, first.id);
    }
  });

  test(`${name}: adding an 11th instance moves about 1/11 of keys, all to it`, () => {
    const n = 10;
    const before = makeInstances(Array.from({ length: n }, () => 1));
    const added = makeInstance('node-004b');
    const after = [...before, added].sort((a, b) => (a.id < b.id ? -1 : 1));
    assert.equal(after[5], added, 'the new id sorts inside the set, shifting positions');
    const old = assign(strategy, before);
    const now = assign(strategy, after);
    let moved = 0;
    for (let k = 0; k < KEYS.length; k++) {
      if (now[k] === old[k]) continue;
      moved++;
      assert.equal(now[k], added.id, `key ${KEYS[k]} moved from ${old[k]} to ${now[k]}`);
    }
    const fraction = moved / KEYS.length;
    assert.ok(fraction <= (1 / (n + 1)) * 1.25, `moved ${(fraction * 100).toFixed(2)}%`);
    assert.ok(fraction >= (1 / (n + 1)) * 0.75, `the new instance only took ${(fraction * 100).toFixed(2)}%`);
  });

  test(`${name}: removing one of 10 instances moves only its keys`, () => {
    const all = makeInstances(Array.from({ length: 10 }, () => 1));
    const old = assign(strategy, all);
    for (const removed of [0, 4, 9]) {
      const removedId = all[removed]!.id;
      const now = assign(strategy, all.filter((_, i) => i !== removed));
      let released = 0;
      for (let k = 0; k < KEYS.length; k++) {
        if (old[k] === removedId) {
          released++;
          assert.notEqual(now[k], removedId);
        } else {
          assert.equal(now[k], old[k], `key ${KEYS[k]} moved although ${old[k]} stayed`);
        }
      }
      assert.ok(released > 0, `${removedId} owned keys before its removal`);
    }
  });

  test(`${name}: an instance of weight 0 gets no keys`, () => {
    const instances = makeInstances([1, 0, 1]);
    const counts = countIds(assign(strategy, instances));
    assert.equal(counts.get('node-001'), undefined);
    assertShares(counts, [instances[0]!, instances[2]!], KEYS.length, 'equal');
  });

  test(`${name}: a single instance gets every key`, () => {
    const [only] = makeInstances([0.001]);
    assert.deepEqual(countIds(assign(strategy, [only!])), new Map([[only!.id, KEYS.length]]));
  });
}
