export { EtcdStore, createEtcdStore } from './etcd-store.ts';
export type { EtcdStoreOptions } from './etcd-store.ts';
