/** One answered request as /api/actuator/traces shows it. */
export interface RequestSummary {
  /** When the request arrived, ISO-8601. */
  readonly time: string;
  readonly method: string;
  /** The route pattern, never the raw URL (its query may carry tokens). */
  readonly route: string;
  readonly status: number;
  readonly durationMs: number;
  /** The request's trace id (its x-trace-id), null when it had none. */
  readonly traceId: string | null;
}

/** Kept as recorded: formatting waits until someone reads the ring. */
interface Entry {
  readonly startedAt: number;
  readonly method: string;
  readonly route: string;
  readonly status: number;
  readonly durationMs: number;
  readonly traceId: string | null;
}

/**
 * The last `capacity` answered requests of this replica, newest first on
 * read. Recording is one small object and a slot write, on every request.
 */
export class RecentRequests {
  private readonly ring: (Entry | undefined)[];
  private head = 0;

  constructor(readonly capacity: number) {
    this.ring = new Array<Entry | undefined>(capacity);
  }

  record(method: string, route: string, status: number, durationMs: number, traceId: string | null): void {
    this.ring[this.head] = { startedAt: Date.now() - durationMs, method, route, status, durationMs, traceId };
    this.head = (this.head + 1) % this.capacity;
  }

  recent(limit: number = this.capacity): RequestSummary[] {
    const out: RequestSummary[] = [];
    for (let i = 1; i <= this.capacity && out.length < limit; i++) {
      const entry = this.ring[(this.head - i + this.capacity) % this.capacity];
      if (entry === undefined) break;
      out.push({
        time: new Date(entry.startedAt).toISOString(),
        method: entry.method,
        route: entry.route,
        status: entry.status,
        durationMs: Math.round(entry.durationMs * 100) / 100,
        traceId: entry.traceId,
      });
    }
    return out;
  }
}
