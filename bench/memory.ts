/**
 * The `memory` scenario, run in its own process (it needs --expose-gc and a
 * heap nobody else uses):
 *   node --expose-gc --import tsx bench/memory.ts <data-dir>
 * Registers 10,000 services x 10 instances in-process through the Registry,
 * measures the heap they take, stops (writing a snapshot), then times a fresh
 * catalog and store restoring them from the data directory. Prints one JSON
 * line: MemoryResult.
 */
import { Catalog } from '../src/core/catalog.ts';
import type { InstanceSpec } from '../src/core/instance.ts';
import { testSpec } from '../src/core/fixtures.ts';
import { ZERO_LOAD } from '../src/core/selection/index.ts';
import { Registry } from '../src/registry/registry.ts';
import { createMemoryStore } from '../src/store/memory/index.ts';

export interface MemoryResult {
  readonly instances: number;
  readonly heapBytesPerInstance: number;
  readonly restoreMs: number;
  readonly restoredInstances: number;
}

const SERVICES = 10_000;
const PER_SERVICE = 10;
const INSTANCES = SERVICES * PER_SERVICE;
/** Registrations in flight at once, so log writes are batched as under real concurrent load. */
const IN_FLIGHT = 1000;
/** Maxine's default --event-ring-size; the ring keeps the last events, part of the real cost. */
const EVENT_RING_SIZE = 10_000;

const dataDir = process.argv[2];
if (dataDir === undefined) throw new Error('usage: memory.ts <data-dir>');
const gc = globalThis.gc;
if (gc === undefined) throw new Error('memory.ts needs node --expose-gc');

function openRegistry(): Registry {
  const catalog = new Catalog(EVENT_RING_SIZE);
  const store = createMemoryStore({
    dataDir: dataDir!,
    // A background snapshot in progress holds transient copies of the catalog;
    // the heap is measured at rest, and stop() writes the snapshot anyway.
    snapshotEveryRecords: Number.MAX_SAFE_INTEGER,
  });
  return new Registry({
    store,
    catalog,
    clock: Date.now,
    maxInstancesPerService: PER_SERVICE,
    load: ZERO_LOAD,
    // Nothing can expire within the hour-long TTL; if expiry fails anyway, the run must fail loudly.
    onExpiryError: (error) => {
      throw error;
    },
  });
}

/** Built per instance with fresh strings, as parsing each registration request would. */
function spec(index: number): InstanceSpec {
  const service = Math.floor(index / PER_SERVICE);
  const node = index % PER_SERVICE;
  return testSpec(`bench-svc-${String(service).padStart(5, '0')}`, `node-${node}`, {
    host: `10.${(index >> 16) & 255}.${(index >> 8) & 255}.${index & 255}`,
    port: 8000 + node,
    ttlMs: 3_600_000,
  });
}

/** Several passes: one full GC can leave garbage that only a later one finds (weak refs, finalizers). */
function heapAfterGc(): number {
  for (let i = 0; i < 4; i++) gc!();
  return process.memoryUsage().heapUsed;
}

const registry = openRegistry();
await registry.start();
const before = heapAfterGc();
for (let start = 0; start < INSTANCES; start += IN_FLIGHT) {
  const batch: Promise<unknown>[] = [];
  for (let i = start; i < Math.min(start + IN_FLIGHT, INSTANCES); i++) batch.push(registry.register(spec(i)));
  await Promise.all(batch);
}
const after = heapAfterGc();
const registered = registry.catalog.instanceCount;
if (registered !== INSTANCES) throw new Error(`registered ${registered} instances, expected ${INSTANCES}`);
await registry.stop();

const restored = openRegistry();
const started = performance.now();
await restored.start();
const restoreMs = performance.now() - started;
const restoredInstances = restored.catalog.instanceCount;
await restored.stop();

const result: MemoryResult = {
  instances: INSTANCES,
  heapBytesPerInstance: (after - before) / INSTANCES,
  restoreMs,
  restoredInstances,
};
console.log(JSON.stringify(result));
