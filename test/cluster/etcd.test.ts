import { startEtcd } from '../helpers/backends.ts';
import { runClusterScenarios } from './scenarios.ts';

runClusterScenarios({
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
});
