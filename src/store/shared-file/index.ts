export { SharedFileStore, createSharedFileStore } from './shared-file-store.ts';
export type { SharedFileStoreOptions } from './shared-file-store.ts';
