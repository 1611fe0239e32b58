import { startEtcd } from '../../../test/helpers/backends.ts';
import { runStoreConformance } from '../conformance/suite.ts';
import { createEtcdStore } from './etcd-store.ts';
import { compactHistory } from './testing.ts';

runStoreConformance({
  name: 'etcd',
  shared: true,
  backendExpires: true,
  // etcd leases are whole seconds, at least 2 s.
  minTtlMs: 2000,
  async start(t) {
    // A fresh single-member cluster per test (about 0.4 s to start).
    const cluster = await startEtcd(t);
    if (cluster === null) return null;
    const endpoints = cluster.endpoints;
    return {
      replica: (options) => createEtcdStore({ ...options, endpoints }),
      dropHistory: async () => {
        await compactHistory(endpoints);
      },
    };
  },
});
