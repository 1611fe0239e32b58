/**
 * One queue for every lease in the catalog: a binary min-heap keyed by the
 * deadline an entry had when it was queued. A renewal only moves the entry's
 * own deadline forward (O(1), no heap work); when the queued deadline comes
 * due, the entry is re-queued at its current deadline if it was renewed in
 * the meantime. So a heartbeat costs O(1) and an expiry check O(log n),
 * with no sweep over the catalog and no timer per instance.
 */
export interface Lease {
  /** Current deadline (epoch ms); renewals move it. */
  deadline: number;
  /** The deadline this lease is queued under; any other queued copy is stale. */
  queuedAt: number;
  /** False once the lease's owner is gone; its queued copies are dropped. */
  live: boolean;
}

export class ExpiryQueue<T extends Lease> {
  private readonly due: number[] = [];
  private readonly items: T[] = [];

  get queued(): number {
    return this.items.length;
  }

  /** Queue a new lease, or one whose deadline moved earlier than it is queued. */
  schedule(lease: T): void {
    lease.queuedAt = lease.deadline;
    this.push(lease.deadline, lease);
  }

  /** Remove and return every live lease whose current deadline is <= now. */
  takeExpired(now: number): T[] {
    const expired: T[] = [];
    while (this.due.length > 0 && this.due[0]! <= now) {
      const queuedAt = this.due[0]!;
      const lease = this.pop();
      if (!lease.live || lease.queuedAt !== queuedAt) continue;
      if (lease.deadline > now) this.schedule(lease);
      else expired.push(lease);
    }
    return expired;
  }

  private push(due: number, item: T): void {
    const { due: keys, items } = this;
    let i = keys.length;
    keys.push(due);
    items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (keys[parent]! <= due) break;
      keys[i] = keys[parent]!;
      items[i] = items[parent]!;
      i = parent;
    }
    keys[i] = due;
    items[i] = item;
  }

  private pop(): T {
    const { due: keys, items } = this;
    const top = items[0]!;
    const lastKey = keys.pop()!;
    const lastItem = items.pop()!;
    const n = keys.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= n) break;
        const right = left + 1;
        const child = right < n && keys[right]! < keys[left]! ? right : left;
        if (keys[child]! >= lastKey) break;
        keys[i] = keys[child]!;
        items[i] = items[child]!;
        i = child;
      }
      keys[i] = lastKey;
      items[i] = lastItem;
    }
    return top;
  }
}
