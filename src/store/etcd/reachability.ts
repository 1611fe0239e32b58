import { REACHABLE, type StoreHealth } from '../store.ts';
import { describe } from './client.ts';

/**
 * Whether etcd answered the last thing this replica asked of it. Every part
 * of the store (writes, the feed, the election, keep-alives) reports here;
 * the latest outcome wins, so the health recovers with the first success.
 */
export class Reachability {
  private error: string | null = null;

  ok(): void {
    this.error = null;
  }

  failed(error: unknown): void {
    this.error = describe(error);
  }

  /** Called on every request: the reachable answer is one shared object. */
  health(): StoreHealth {
    return this.error === null ? REACHABLE : { reachable: false, error: this.error };
  }
}

