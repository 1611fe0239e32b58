import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { CheckedCatalog } from '../conformance/checked-catalog.ts';
import { LOG_DIR } from './layout.ts';
import { SharedFileStore, type SharedFileStoreOptions } from './shared-file-store.ts';

/** Test helpers for the shared-file store: replicas (a store and a checking catalog) on one temporary directory. */

export interface Replica {
  readonly store: SharedFileStore;
  readonly catalog: CheckedCatalog;
}

export type ReplicaOverrides = Partial<Omit<SharedFileStoreOptions, 'dir'>>;

export const LEASE = { leaderLeaseMs: 1000, leaderRenewMs: 250 } as const;

/**
 * A temporary shared directory and a way to open replicas on it. When the
 * test ends every replica is closed, then the directory is removed (in that
 * order, so no replica writes into a directory being deleted).
 */
export async function sharedDir(t: TestContext): Promise<{ dir: string; open(id: string, overrides?: ReplicaOverrides, catalog?: CheckedCatalog): Promise<Replica> }> {
  const dir = await mkdtemp(join(tmpdir(), 'maxine-shared-file-'));
  const stores: SharedFileStore[] = [];
  t.after(async () => {
    await Promise.all(stores.map((store) => store.close()));
    await rm(dir, { recursive: true, force: true });
  });
  return {
    dir,
    async open(id, overrides = {}, catalog = new CheckedCatalog()) {
      const store = new SharedFileStore({ ...LEASE, ...overrides, instanceId: id, dir });
      stores.push(store);
      await store.open(catalog, catalog);
      return { store, catalog };
    },
  };
}

/** Record files in the log, ascending. */
export async function recordFiles(dir: string): Promise<string[]> {
  return (await readdir(join(dir, LOG_DIR))).filter((name) => /^\d+\.json$/.test(name)).sort();
}

export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
