import type { Logger } from 'pino';
import type { MaxineConfig } from '../config/schema.ts';
import type { RegistryStore, ReplicaOptions } from './store.ts';

/**
 * The store chosen by MAXINE_REGISTRY_STATE_MODE. Each store's module is
 * loaded only when chosen: the etcd client alone (gRPC and its protocol
 * definitions) adds about 8 MB of heap, and a larger heap makes V8's
 * incremental marking slow down every request (measured on discover).
 */
export async function openStore(config: MaxineConfig, logger: Logger, instanceId: string): Promise<RegistryStore> {
  switch (config.registryStateMode) {
    case 'local': {
      const { createMemoryStore } = await import('./memory/index.ts');
      return createMemoryStore({
        dataDir: config.dataDir,
        instanceId,
        fsync: config.fsync,
        fsyncIntervalMs: config.fsyncIntervalMs,
        snapshotIntervalMs: config.snapshotIntervalMs,
        leaseCheckpointMs: config.leaseCheckpointMs,
        onWarning: (message) => logger.warn({ store: 'local' }, message),
      });
    }
    case 'redis': {
      const { createRedisStore } = await import('./redis/index.ts');
      return createRedisStore({
        ...replicaOptions(config, logger, instanceId),
        // loadConfig refuses redis mode without a URL.
        url: config.redisUrl!,
        keyPrefix: config.redisKeyPrefix,
        ...(config.redisTlsCaFile === undefined ? {} : { tlsCaFile: config.redisTlsCaFile }),
      });
    }
    case 'etcd': {
      const { createEtcdStore } = await import('./etcd/index.ts');
      return createEtcdStore({
        ...replicaOptions(config, logger, instanceId),
        endpoints: [...config.etcdEndpoints],
        keyPrefix: config.etcdKeyPrefix,
      });
    }
    case 'shared-file': {
      const { createSharedFileStore } = await import('./shared-file/index.ts');
      return createSharedFileStore({ ...replicaOptions(config, logger, instanceId), dir: config.registryStateFile });
    }
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
