import type { Instance, InstanceKey } from '../core/instance.ts';
import type { FeedSink, LeadershipState, RegistryStore, StateSource, StoreHealth, StoreKind } from './store.ts';

/**
 * A store that passes every call on to another: the decorators that watch
 * a store (metrics, tracing) extend it and override only what they observe.
 */
export class ForwardingStore implements RegistryStore {
  readonly kind: StoreKind;
  readonly leasesInCatalog: boolean;

  constructor(protected readonly inner: RegistryStore) {
    this.kind = inner.kind;
    this.leasesInCatalog = inner.leasesInCatalog;
  }

  open(sink: FeedSink, source: StateSource): Promise<void> {
    return this.inner.open(sink, source);
  }

  upsert(instance: Instance, renewedAt: number): Promise<Instance> {
    return this.inner.upsert(instance, renewedAt);
  }

  renew(instance: Instance, renewedAt: number): void {
    this.inner.renew(instance, renewedAt);
  }

  update(instance: Instance, renewedAt: number, fencingToken: number | null): Promise<Instance | null> {
    return this.inner.update(instance, renewedAt, fencingToken);
  }

  remove(key: InstanceKey, reason: 'deregistered'): Promise<number | null> {
    return this.inner.remove(key, reason);
  }

  expire(now: number, fencingToken: number): Promise<number> {
    return this.inner.expire(now, fencingToken);
  }

  evict(key: InstanceKey, fencingToken: number): Promise<number | null> {
    return this.inner.evict(key, fencingToken);
  }

  putKv(key: string, value: string | null): Promise<number> {
    return this.inner.putKv(key, value);
  }

  putKvIf(key: string, expected: string | null, value: string | null): Promise<number | null> {
    return this.inner.putKvIf(key, expected, value);
  }

  leadership(): LeadershipState {
    return this.inner.leadership();
  }

  health(): StoreHealth {
    return this.inner.health();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
