import type { Logger } from 'pino';
import type { MaxineConfig } from '../config/schema.ts';
import { createEtcdStore } from './etcd/index.ts';
import { createMemoryStore } from './memory/index.ts';
import { createRedisStore } from './redis/index.ts';
import { createSharedFileStore } from './shared-file/index.ts';
import type { RegistryStore, ReplicaOptions } from './store.ts';

/** The store chosen by MAXINE_REGISTRY_STATE_MODE. */
export function openStore(config: MaxineConfig, logger: Logger, instanceId: string): RegistryStore {
  switch (config.registryStateMode) {
    case 'local':
      return createMemoryStore({
        dataDir: config.dataDir,
        instanceId,
        fsync: config.fsync,
        fsyncIntervalMs: config.fsyncIntervalMs,
        snapshotIntervalMs: config.snapshotIntervalMs,
        leaseCheckpointMs: config.leaseCheckpointMs,
        onWarning: (message) => logger.warn({ store: 'local' }, message),
      });
    case 'redis':
      return createRedisStore({
        ...replicaOptions(config, logger, instanceId),
        // loadConfig refuses redis mode without a URL.
        url: config.redisUrl!,
        keyPrefix: config.redisKeyPrefix,
        ...(config.redisTlsCaFile === undefined ? {} : { tlsCaFile: config.redisTlsCaFile }),
      });
    case 'etcd':
      return createEtcdStore({
        ...replicaOptions(config, logger, instanceId),
        endpoints: [...config.etcdEndpoints],
        keyPrefix: config.etcdKeyPrefix,
      });
    case 'shared-file':
      return createSharedFileStore({ ...replicaOptions(config, logger, instanceId), dir: config.registryStateFile });
  }
}

function replicaOptions(config: MaxineConfig, logger: Logger, instanceId: string): ReplicaOptions {
  return {
    instanceId,
    leaderLeaseMs: config.leaderLeaseMs,
    leaderRenewMs: config.leaderRenewMs,
    onWarning: (message) => logger.warn({ store: config.registryStateMode }, message),
  };
}
