export { RedisStore, createRedisStore, type RedisStoreOptions } from './redis-store.ts';
