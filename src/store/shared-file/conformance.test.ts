import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { runStoreConformance } from '../conformance/suite.ts';
import { compactDirectory } from './compaction.ts';
import { createSharedFileStore } from './shared-file-store.ts';

// Removed after every test, not by each test's own after hook: those run
// before the suite's hooks that close the replicas using the directory.
const dirs: string[] = [];
after(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

runStoreConformance({
  name: 'shared-file',
  shared: true,
  backendExpires: false,
  minTtlMs: 1000,
  async start() {
    const dir = await mkdtemp(join(tmpdir(), 'maxine-shared-file-'));
    dirs.push(dir);
    return {
      replica: (options) => createSharedFileStore({ ...options, dir }),
      // A snapshot at the head; every record before it deleted.
      dropHistory: async () => {
        await compactDirectory(dir, { retainRecords: 0 });
      },
    };
  },
});
