import { startRedis } from '../../../test/helpers/backends.ts';
import { runStoreConformance } from '../conformance/suite.ts';
import { trimFeed } from './testing.ts';
import { createRedisStore } from './redis-store.ts';

/** The shared conformance suite on a fresh redis-server per test. */
runStoreConformance({
  name: 'redis',
  shared: true,
  backendExpires: false,
  // Deadlines are epoch ms in a sorted set; the leader's expiry tick is the only limit.
  minTtlMs: 100,
  async start(t) {
    const server = await startRedis(t);
    if (server === null) return null;
    const keyPrefix = 'conformance:';
    return {
      replica: (options) => createRedisStore({ ...options, url: server.url, keyPrefix, onWarning: () => {} }),
      dropHistory: () => trimFeed(server.url, keyPrefix),
    };
  },
});
