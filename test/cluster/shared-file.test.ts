import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { scratchDir } from '../helpers/backends.ts';
import { runClusterScenarios } from './scenarios.ts';

runClusterScenarios({
  name: 'shared-file',
  start: async (t) => {
    const root = scratchDir(t, 'shared-file-cluster');
    const dir = join(root, 'registry');
    // Tests run as root, so permissions cannot lock the replicas out: the directory is moved away instead.
    const away = join(root, 'unmounted');
    return {
      env: { MAXINE_REGISTRY_STATE_MODE: 'shared-file', MAXINE_REGISTRY_STATE_FILE: dir },
      stop: () => rename(dir, away),
      restart: () => rename(away, dir),
    };
  },
});
