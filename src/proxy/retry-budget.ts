/** The budget looks back this far, in one-second buckets. */
const WINDOW_SECONDS = 10;

class Window {
  readonly requests = new Int32Array(WINDOW_SECONDS);
  readonly retries = new Int32Array(WINDOW_SECONDS);
  /** The absolute second the newest bucket counts. */
  second = 0;

  advance(second: number): void {
    if (second <= this.second) return;
    if (second - this.second >= WINDOW_SECONDS) {
      this.requests.fill(0);
      this.retries.fill(0);
    } else {
      for (let s = this.second + 1; s <= second; s++) {
        this.requests[s % WINDOW_SECONDS] = 0;
        this.retries[s % WINDOW_SECONDS] = 0;
      }
    }
    this.second = second;
  }
}

function sum(buckets: Int32Array): number {
  let total = 0;
  for (let i = 0; i < buckets.length; i++) total += buckets[i]!;
  return total;
}

/**
 * Retry budgets per service: over the last 10 s, retries may add at most a
 * percentage of the requests, but a floor of retries per second is always
 * allowed (so a quiet service still retries). Without a budget, retries
 * multiply the load on a service exactly when it is failing.
 */
export class RetryBudgets {
  private readonly windows = new Map<string, Window>();

  constructor(private readonly clock: () => number) {}

  /** A client request to `service` was forwarded (retries are not requests). */
  request(service: string): void {
    const window = this.window(service);
    window.requests[window.second % WINDOW_SECONDS]!++;
  }

  /** True when the budget allows one more retry now (count it with recordRetry if it happens). */
  canRetry(service: string, percent: number, minPerSecond: number): boolean {
    const window = this.window(service);
    const allowed = Math.max((sum(window.requests) * percent) / 100, minPerSecond * WINDOW_SECONDS);
    return sum(window.retries) < allowed;
  }

  recordRetry(service: string): void {
    const window = this.window(service);
    window.retries[window.second % WINDOW_SECONDS]!++;
  }

  forget(service: string): void {
    this.windows.delete(service);
  }

  /** Drop the windows of services `keep` rejects (after a catalog reset). */
  prune(keep: (service: string) => boolean): void {
    for (const service of this.windows.keys()) if (!keep(service)) this.windows.delete(service);
  }

  private window(service: string): Window {
    let window = this.windows.get(service);
    if (window === undefined) {
      window = new Window();
      this.windows.set(service, window);
    }
    window.advance(Math.floor(this.clock() / 1000));
    return window;
  }
}
