export { MemoryStore, createMemoryStore } from './memory-store.ts';
export type { FsyncPolicy, MemoryStoreOptions, MemoryStoreStats } from './memory-store.ts';
