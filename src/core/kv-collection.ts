import type { Catalog } from './catalog.ts';

/**
 * The parsed records stored under one KV prefix, kept in step with the
 * catalog's KV through its events, so every replica answers from memory and a
 * change made on one holds on all once the feed delivers it. A value that
 * does not parse (written by hand, or by another version) is left out, with
 * a warning.
 */
export class KvCollection<T> {
  private readonly records = new Map<string, T>();
  private readonly unsubscribe: () => void;
  private changes = 0;

  constructor(
    private readonly catalog: Catalog,
    readonly prefix: string,
    private readonly parse: (value: unknown) => T | null,
    private readonly onWarning: (message: string) => void,
    /** Called when the feed deletes a record this collection held (not on a reload), with that record. */
    private readonly onDeleted?: (name: string, previous: T) => void,
  ) {
    this.unsubscribe = catalog.subscribe({
      event: (event) => {
        if (event.type !== 'config_changed' || !event.key.startsWith(prefix)) return;
        const name = event.key.slice(prefix.length);
        const previous = this.records.get(name);
        this.load(event.key, event.value);
        if (previous !== undefined && event.value === null) this.onDeleted?.(name, previous);
      },
      reset: () => this.reloadAll(),
    });
    this.reloadAll();
  }

  get(name: string): T | undefined {
    return this.records.get(name);
  }

  /** Moves on with every change, so derived views can be cached until it does. */
  get version(): number {
    return this.changes;
  }

  get size(): number {
    return this.records.size;
  }

  values(): IterableIterator<T> {
    return this.records.values();
  }

  /** The records' names: their keys without the prefix. */
  names(): IterableIterator<string> {
    return this.records.keys();
  }

  /** The record's value as stored (what a compare-and-set of it expects), or undefined. */
  stored(name: string): string | undefined {
    return this.catalog.kvGet(this.keyOf(name));
  }

  /** The KV key a record named `name` is stored under. */
  keyOf(name: string): string {
    return this.prefix + name;
  }

  close(): void {
    this.unsubscribe();
  }

  private reloadAll(): void {
    this.records.clear();
    for (const [key, value] of this.catalog.kvEntries()) if (key.startsWith(this.prefix)) this.load(key, value);
  }

  private load(key: string, stored: string | null): void {
    const name = key.slice(this.prefix.length);
    this.changes++;
    this.records.delete(name);
    if (stored === null) return;
    let parsed: T | null = null;
    try {
      parsed = this.parse(JSON.parse(stored));
    } catch {
      parsed = null;
    }
    if (parsed === null) this.onWarning(`The stored record "${key}" is not valid; it is ignored.`);
    else this.records.set(name, parsed);
  }
}
