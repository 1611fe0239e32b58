import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runStoreConformance } from '../conformance/suite.ts';
import { MemoryStore } from './memory-store.ts';

runStoreConformance({
  name: 'local',
  shared: false,
  backendExpires: false,
  minTtlMs: 0,
  start: async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'maxine-conformance-local-'));
    t.after(() => rmSync(dataDir, { recursive: true, force: true }));
    return {
      replica: (options) => new MemoryStore({ dataDir, instanceId: options.instanceId, onWarning: () => {} }),
      dropHistory: async () => {},
    };
  },
});
