import { startRedis } from '../helpers/backends.ts';
import { runClusterScenarios } from './scenarios.ts';

runClusterScenarios({
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
});
