import { cpSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { CatalogEntry } from '../../core/catalog.ts';
import type { Change, Snapshot } from '../../core/changes.ts';
import { testInstance } from '../../core/fixtures.ts';
import type { Instance, InstanceKey } from '../../core/instance.ts';
import type { FeedSink, StateSource } from '../store.ts';
import { MemoryStore } from './memory-store.ts';
import type { MemoryStoreOptions } from './memory-store.ts';

/**
 * Test helpers for the memory store: a stand-in for the catalog (a Map fed by
 * the store), instance builders and data-directory utilities.
 */

interface Entry {
  instance: Instance;
  renewedAt: number;
}

const keyOf = (key: InstanceKey): string => `${key.service}\u0000${key.id}`;

export class FakeCatalog implements FeedSink, StateSource {
  revision = 0;
  resets = 0;
  /** Revisions in the order the store delivered them. */
  readonly applied: number[] = [];
  readonly instances = new Map<string, Entry>();
  readonly kv = new Map<string, string>();

  reset(snapshot: Snapshot): void {
    this.resets++;
    this.revision = snapshot.revision;
    this.instances.clear();
    this.kv.clear();
    for (const { instance, renewedAt } of snapshot.instances) this.instances.set(keyOf(instance), { instance, renewedAt });
    for (const [key, value] of snapshot.kv) this.kv.set(key, value);
  }

  apply(change: Change): void {
    if (change.revision <= this.revision) throw new Error(`revision ${change.revision} arrived after ${this.revision}`);
    this.revision = change.revision;
    this.applied.push(change.revision);
    switch (change.kind) {
      case 'upsert':
        this.instances.set(keyOf(change.instance), { instance: change.instance, renewedAt: change.renewedAt });
        break;
      case 'remove':
        this.instances.delete(keyOf(change.key));
        break;
      case 'kv':
        if (change.value === null) this.kv.delete(change.key);
        else this.kv.set(change.key, change.value);
        break;
    }
  }

  snapshot(): Snapshot {
    return { revision: this.revision, instances: [...this.instances.values()], kv: [...this.kv] };
  }

  get(key: InstanceKey): Instance | undefined {
    return this.instances.get(keyOf(key))?.instance;
  }

  kvGet(key: string): string | undefined {
    return this.kv.get(key);
  }

  renew(key: InstanceKey, renewedAt: number): void {
    const entry = this.instances.get(keyOf(key));
    if (entry) entry.renewedAt = renewedAt;
  }

  /** No lease queue here: expiry is tested by the conformance suite, with the real catalog. */
  takeExpired(): CatalogEntry[] {
    return [];
  }

  retryExpiry(): void {}

  /** What the registry does on a heartbeat: renew in the catalog, then tell the store. */
  renewVia(store: MemoryStore, key: InstanceKey, now: number): void {
    const entry = this.instances.get(keyOf(key));
    if (!entry) throw new Error(`no instance ${key.service}/${key.id}`);
    entry.renewedAt = now;
    store.renew(entry.instance, now);
  }

  /** A comparable picture of the whole state. */
  state(): { revision: number; instances: Array<[string, Entry]>; kv: Array<[string, string]> } {
    const byKey = (a: [string, unknown], b: [string, unknown]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
    return {
      revision: this.revision,
      instances: [...this.instances].map(([k, e]): [string, Entry] => [k, { ...e }]).sort(byKey),
      kv: [...this.kv].sort(byKey),
    };
  }
}

export function makeInstance(service: string, id: string, overrides: Partial<Instance> = {}): Instance {
  return testInstance(service, id, {
    host: '10.0.0.1',
    tags: Object.freeze(['a', 'b']),
    version: '1.0.0',
    zone: 'z1',
    metadata: Object.freeze({ team: 'core' }),
    healthCheckPath: '/health',
    ...overrides,
  });
}

/** A fresh directory, removed when the test ends. */
export function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'maxine-memory-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A copy of the data directory as it is now: what a crash (kill -9) would
 * leave. The copy is not atomic, so take it while no snapshot is in progress
 * (a snapshot renames and deletes files while the copy walks the directory).
 */
export function crashImage(t: TestContext, dir: string): string {
  const copy = tempDir(t);
  cpSync(dir, copy, { recursive: true });
  return copy;
}

export function logFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => name.startsWith('log-'))
    .sort()
    .map((name) => join(dir, name));
}

export function logBytes(dir: string): number {
  return logFiles(dir).reduce((sum, file) => sum + statSync(file).size, 0);
}

export async function openStore(
  dir: string,
  options: Omit<MemoryStoreOptions, 'dataDir'> = {},
): Promise<{ store: MemoryStore; catalog: FakeCatalog; warnings: string[] }> {
  const warnings: string[] = [];
  const store = new MemoryStore({ onWarning: (message) => warnings.push(message), ...options, dataDir: dir });
  const catalog = new FakeCatalog();
  await store.open(catalog, catalog);
  return { store, catalog, warnings };
}

export async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
