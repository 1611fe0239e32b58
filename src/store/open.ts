import type { Logger } from 'pino';
import type { MaxineConfig } from '../config/schema.ts';
import { createMemoryStore } from './memory/index.ts';
import type { RegistryStore } from './store.ts';

/** The store chosen by MAXINE_REGISTRY_STATE_MODE. */
export function openStore(config: MaxineConfig, logger: Logger): RegistryStore {
  switch (config.registryStateMode) {
    case 'local':
      return createMemoryStore({
        dataDir: config.dataDir,
        fsync: config.fsync,
        fsyncIntervalMs: config.fsyncIntervalMs,
        snapshotIntervalMs: config.snapshotIntervalMs,
        leaseCheckpointMs: config.leaseCheckpointMs,
        onWarning: (message) => logger.warn({ store: 'local' }, message),
      });
  }
}
