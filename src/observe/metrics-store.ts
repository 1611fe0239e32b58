import type { Instance, InstanceKey } from '../core/instance.ts';
import {
  FencedError,
  StoreUnavailableError,
  type FeedSink,
  type LeadershipState,
  type RegistryStore,
  type StateSource,
  type StoreHealth,
  type StoreKind,
} from '../store/store.ts';

/** The store writes that are timed. */
export type StoreOperation = 'upsert' | 'update' | 'remove' | 'putKv' | 'expire' | 'evict';

/** unavailable: the backend could not take the write (clients got 503); fenced: a stale leader's write; other: a bug. */
export type StoreErrorKind = 'unavailable' | 'fenced' | 'other';

export interface StoreRecorder {
  /** A timed write finished; `error` is null when it succeeded. */
  operation(operation: StoreOperation, seconds: number, error: StoreErrorKind | null): void;
  /** A lease renewal was handed to the store (heartbeats, and re-registrations that changed nothing). */
  renewed(instance: Instance): void;
}

function errorKind(error: unknown): StoreErrorKind {
  if (error instanceof StoreUnavailableError) return 'unavailable';
  if (error instanceof FencedError) return 'fenced';
  return 'other';
}

/** A RegistryStore that reports how long its writes take and how they fail; everything else passes straight through. */
class InstrumentedStore implements RegistryStore {
  readonly kind: StoreKind;
  readonly leasesInCatalog: boolean;

  constructor(
    private readonly inner: RegistryStore,
    private readonly recorder: StoreRecorder,
  ) {
    this.kind = inner.kind;
    this.leasesInCatalog = inner.leasesInCatalog;
  }

  open(sink: FeedSink, source: StateSource): Promise<void> {
    return this.inner.open(sink, source);
  }

  upsert(instance: Instance, renewedAt: number): Promise<Instance> {
    return this.timed('upsert', () => this.inner.upsert(instance, renewedAt));
  }

  /** Fire-and-forget and on the heartbeat path: counted, never timed. */
  renew(instance: Instance, renewedAt: number): void {
    this.recorder.renewed(instance);
    this.inner.renew(instance, renewedAt);
  }

  update(instance: Instance, renewedAt: number, fencingToken: number | null): Promise<Instance | null> {
    return this.timed('update', () => this.inner.update(instance, renewedAt, fencingToken));
  }

  remove(key: InstanceKey, reason: 'deregistered'): Promise<number | null> {
    return this.timed('remove', () => this.inner.remove(key, reason));
  }

  expire(now: number, fencingToken: number): Promise<number> {
    return this.timed('expire', () => this.inner.expire(now, fencingToken));
  }

  evict(key: InstanceKey, fencingToken: number): Promise<number | null> {
    return this.timed('evict', () => this.inner.evict(key, fencingToken));
  }

  putKv(key: string, value: string | null): Promise<number> {
    return this.timed('putKv', () => this.inner.putKv(key, value));
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

  private async timed<T>(operation: StoreOperation, write: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      const result = await write();
      this.recorder.operation(operation, (performance.now() - started) / 1000, null);
      return result;
    } catch (error) {
      this.recorder.operation(operation, (performance.now() - started) / 1000, errorKind(error));
      throw error;
    }
  }
}

export function instrumentStore(store: RegistryStore, recorder: StoreRecorder): RegistryStore {
  return new InstrumentedStore(store, recorder);
}
