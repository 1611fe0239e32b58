import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { scratchDir, startEtcd, startRedis } from '../helpers/backends.ts';
import type { ClusterBackend } from './scenarios.ts';

export const ETCD: ClusterBackend = {
  name: 'etcd',
  start: async (t) => {
    const etcd = await startEtcd(t, 1);
    if (etcd === null) return null;
    return {
      env: { MAXINE_REGISTRY_STATE_MODE: 'etcd', MAXINE_REGISTRY_ETCD_ENDPOINTS: etcd.endpoints.join(',') },
      stop: () => Promise.all(etcd.members.map((member) => member.stop())).then(() => undefined),
      restart: () => Promise.all(etcd.members.map((member) => member.start())).then(() => undefined),
    };
  },
};

export const REDIS: ClusterBackend = {
  name: 'redis',
  start: async (t) => {
    const redis = await startRedis(t, { password: 'cluster-test-secret' });
    if (redis === null) return null;
    return {
      env: { MAXINE_REGISTRY_STATE_MODE: 'redis', MAXINE_REGISTRY_REDIS_URL: redis.url, MAXINE_REGISTRY_REDIS_KEY_PREFIX: 'cluster-test:' },
      stop: () => redis.process.stop(),
      restart: () => redis.process.start(),
    };
  },
};

export const SHARED_FILE: ClusterBackend = {
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
};
