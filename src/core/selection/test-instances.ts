/** Test-only helpers for the selection strategy tests. */
import assert from 'node:assert/strict';
import type { Instance } from '../instance.ts';
import { testInstance } from '../fixtures.ts';
import type { LoadSignals, PickContext, Picker } from './strategy.ts';

export function makeInstance(id: string, weight = 1, service = 'orders'): Instance {
  return testInstance(service, id, {
    host: `${id}.${service}.internal`,
    weight,
    tags: ['test'],
    version: '1.0.0',
    zone: 'zone-a',
    metadata: { team: 'selection' },
    healthCheckPath: '/health',
    createRevision: 1,
    modifyRevision: 1,
  });
}

/**
 * One instance per weight, with zero-padded ids so the array is in id order,
 * as strategies receive it.
 */
export function makeInstances(weights: readonly number[], prefix = 'node-'): Instance[] {
  return weights.map((w, i) => makeInstance(`${prefix}${String(i).padStart(3, '0')}`, w));
}

/** mulberry32: a tiny seeded PRNG, uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Load signals the test sets per instance id; unset ids are idle. */
export class FakeLoad implements LoadSignals {
  readonly inflightById = new Map<string, number>();
  readonly latencyById = new Map<string, number>();

  inflight(instance: Instance): number {
    return this.inflightById.get(instance.id) ?? 0;
  }

  ewmaLatencyMs(instance: Instance): number {
    return this.latencyById.get(instance.id) ?? 0;
  }
}

/** A context whose key the test may change between picks. */
export interface MutableContext {
  key: string;
  random: () => number;
  load: LoadSignals;
}

export function context(options: Partial<MutableContext> = {}): MutableContext {
  return {
    key: options.key ?? '',
    random: options.random ?? mulberry32(1),
    load: options.load ?? new FakeLoad(),
  };
}

/**
 * Distinct keys shaped like the default hash key, a client address:
 * consecutive IPv4 addresses, which differ in few characters and so also
 * exercise the hash's avalanche.
 */
export function addressKeys(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`);
}

/** Picks per instance id over `picks` picks with a fixed context. */
export function countPicks(picker: Picker, picks: number, ctx: PickContext): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < picks; i++) {
    const id = picker.pick(ctx).id;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

/** The instance id each key maps to. */
export function assignKeys(picker: Picker, keys: readonly string[], ctx: MutableContext): string[] {
  return keys.map((key) => {
    ctx.key = key;
    return picker.pick(ctx).id;
  });
}

export function countIds(ids: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
}

/** The bound: every share within 2 percentage points of expected. */
export const SHARE_TOLERANCE = 0.02;

/**
 * Asserts each instance's share of `total` picks is within the tolerance of
 * its expected share: weight / total weight, or equal when `equal` is set.
 */
export function assertShares(
  counts: ReadonlyMap<string, number>,
  instances: readonly Instance[],
  total: number,
  mode: 'weighted' | 'equal',
): void {
  let weightSum = 0;
  for (const instance of instances) weightSum += instance.weight;
  for (const instance of instances) {
    const expected = mode === 'equal' ? 1 / instances.length : instance.weight / weightSum;
    const actual = (counts.get(instance.id) ?? 0) / total;
    assert.ok(
      Math.abs(actual - expected) <= SHARE_TOLERANCE,
      `${instance.id}: share ${(actual * 100).toFixed(2)}% vs expected ${(expected * 100).toFixed(2)}%`,
    );
  }
  const ids = new Set(instances.map((i) => i.id));
  let counted = 0;
  for (const [id, count] of counts) {
    assert.ok(ids.has(id), `${id} is not in the set`);
    counted += count;
  }
  assert.equal(counted, total);
}
