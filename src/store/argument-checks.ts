import type { Instance } from '../core/instance.ts';
import { DataError } from './instance-record.ts';

/**
 * Checks every store makes on what it is given, with messages that name the
 * store. A bad argument is a bug in the caller (TypeError), never a 503.
 */
export function argumentChecks(store: string) {
  return {
    positive(name: string, value: number): number {
      if (!Number.isFinite(value) || value <= 0) throw new TypeError(`${store}: ${name} must be a positive number`);
      return value;
    },
    requireFinite(value: number, name: string): void {
      if (!Number.isFinite(value)) throw new TypeError(`${store}: ${name} must be a finite number`);
    },
    /** A KV write's key, its value and (compare-and-set) the value it expects: strings, the values possibly null. */
    kvArguments(key: string, value: string | null, expected: string | null): void {
      const valueOk = (v: unknown) => v === null || typeof v === 'string';
      if (typeof key !== 'string' || !valueOk(value) || !valueOk(expected)) {
        throw new TypeError(`${store}: kv keys must be strings and values strings or null`);
      }
    },
    /** Refuses an instance the store could not read back, before it takes a revision. */
    validated(build: () => Instance): Instance {
      try {
        return build();
      } catch (err) {
        if (err instanceof DataError) throw new TypeError(`${store}: invalid instance: ${err.message}`);
        throw err;
      }
    },
  };
}
