import { Catalog } from '../../src/core/catalog.ts';

/**
 * The store's KV as one replica sees it, for unit tests: the store itself
 * (`store`, where compare-and-set decides) takes a write at once, and this
 * replica's catalog gets it a turn later, when the write resolves, as with
 * a real feed. `elsewhere` is a write another replica made that the feed
 * has not delivered here yet; `put` one it has.
 */
export class LaggingKv {
  readonly catalog = new Catalog(100);
  /** Every write made through this replica, in order. */
  readonly writes: Array<[string, string | null]> = [];
  readonly store = new Map<string, string>();
  private revision = 0;

  /** As registry.putKv. */
  async write(key: string, value: string | null): Promise<void> {
    this.writes.push([key, value]);
    this.elsewhere(key, value);
    await new Promise((resolve) => setImmediate(resolve));
    this.deliver(key, value);
  }

  /** As registry.putKvIf: compared with what the store holds, which the catalog may not have yet. */
  async writeIf(key: string, expected: string | null, value: string | null): Promise<boolean> {
    if ((this.store.get(key) ?? null) !== expected) return false;
    await this.write(key, value);
    return true;
  }

  /** A change made on another replica and delivered here. */
  put(key: string, value: string | null): void {
    this.elsewhere(key, value);
    this.deliver(key, value);
  }

  /** A change made on another replica that the store holds but the feed has not delivered here yet. */
  elsewhere(key: string, value: string | null): void {
    if (value === null) this.store.delete(key);
    else this.store.set(key, value);
  }

  private deliver(key: string, value: string | null): void {
    this.catalog.apply({ kind: 'kv', revision: ++this.revision, key, value });
  }
}
