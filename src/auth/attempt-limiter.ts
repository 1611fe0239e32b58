/**
 * Counts attempts per key in fixed windows and refuses once a key has used
 * its allowance. Sign-in uses two: failed attempts per user name (a guesser
 * locks a name for one window at most) and all attempts per client address.
 * Counts are per replica: N replicas allow N times the limit, which still
 * turns online guessing from millions of tries into a handful.
 */
export class AttemptLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly clock: () => number = Date.now,
    /** Bounds memory under a flood of distinct keys: the oldest windows are forgotten first. */
    private readonly maxKeys = 100_000,
  ) {}

  /** Milliseconds until `key` may try again, or 0 when it may now. */
  retryAfterMs(key: string): number {
    const window = this.current(key);
    if (window === undefined || window.count < this.limit) return 0;
    return window.start + this.windowMs - this.clock();
  }

  record(key: string): void {
    const window = this.current(key);
    if (window !== undefined) {
      window.count++;
      return;
    }
    if (this.windows.size >= this.maxKeys) {
      const oldest = this.windows.keys().next();
      if (!oldest.done) this.windows.delete(oldest.value);
    }
    this.windows.set(key, { start: this.clock(), count: 1 });
  }

  forget(key: string): void {
    this.windows.delete(key);
  }

  private current(key: string): { start: number; count: number } | undefined {
    const window = this.windows.get(key);
    if (window === undefined) return undefined;
    if (this.clock() - window.start < this.windowMs) return window;
    this.windows.delete(key);
    return undefined;
  }
}
