import type { Instance, InstanceKey } from '../core/instance.ts';
import { ForwardingStore } from '../store/forwarding-store.ts';
import { FencedError, StoreUnavailableError, type RegistryStore } from '../store/store.ts';

/** The store writes that are timed. */
export type StoreOperation = 'upsert' | 'update' | 'remove' | 'putKv' | 'putKvIf' | 'expire' | 'evict';

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
class InstrumentedStore extends ForwardingStore {
  constructor(
    inner: RegistryStore,
    private readonly recorder: StoreRecorder,
  ) {
    super(inner);
  }

  override upsert(instance: Instance, renewedAt: number): Promise<Instance> {
    return this.timed('upsert', () => this.inner.upsert(instance, renewedAt));
  }

  /** Fire-and-forget and on the heartbeat path: counted, never timed. */
  override renew(instance: Instance, renewedAt: number): void {
    this.recorder.renewed(instance);
    this.inner.renew(instance, renewedAt);
  }

  override update(instance: Instance, renewedAt: number, fencingToken: number | null): Promise<Instance | null> {
    return this.timed('update', () => this.inner.update(instance, renewedAt, fencingToken));
  }

  override remove(key: InstanceKey, reason: 'deregistered'): Promise<number | null> {
    return this.timed('remove', () => this.inner.remove(key, reason));
  }

  override expire(now: number, fencingToken: number): Promise<number> {
    return this.timed('expire', () => this.inner.expire(now, fencingToken));
  }

  override evict(key: InstanceKey, fencingToken: number): Promise<number | null> {
    return this.timed('evict', () => this.inner.evict(key, fencingToken));
  }

  override putKv(key: string, value: string | null): Promise<number> {
    return this.timed('putKv', () => this.inner.putKv(key, value));
  }

  override putKvIf(key: string, expected: string | null, value: string | null): Promise<number | null> {
    return this.timed('putKvIf', () => this.inner.putKvIf(key, expected, value));
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
