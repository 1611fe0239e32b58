interface Waiter {
  readonly revision: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * Writes waiting for the feed to deliver their revision, oldest revision
 * first. Revisions of concurrent writes arrive nearly in order, so inserting
 * scans from the end and settling takes from the front.
 */
export class RevisionWaiters {
  private queue: Waiter[] = [];

  /** Resolves once `advance` reaches `revision`; rejects with `onTimeout()` after `timeoutMs`. */
  wait(revision: number, timeoutMs: number, onTimeout: () => Error): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.queue = this.queue.filter((w) => w !== waiter);
        reject(onTimeout());
      }, Math.max(0, timeoutMs));
      timer.unref();
      const waiter: Waiter = { revision, resolve, reject, timer };
      let at = this.queue.length;
      while (at > 0 && this.queue[at - 1]!.revision > revision) at--;
      this.queue.splice(at, 0, waiter);
    });
  }

  advance(revision: number): void {
    let settled = 0;
    while (settled < this.queue.length && this.queue[settled]!.revision <= revision) {
      const waiter = this.queue[settled++]!;
      clearTimeout(waiter.timer);
      waiter.resolve();
    }
    if (settled > 0) this.queue.splice(0, settled);
  }

  rejectAll(error: Error): void {
    const queue = this.queue;
    this.queue = [];
    for (const waiter of queue) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
  }
}
