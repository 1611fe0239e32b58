/**
 * What the hot paths count with: plain maps and arrays that only ever
 * increment. prom-client's own `inc` and `observe` hash their label object
 * on every call (about 0.3 and 0.45 µs measured, against a few ns here);
 * these are read into the exposition at scrape time instead.
 */

/** The label value of every service past the cap. Service names start with a letter or digit, so none is called this. */
export const OTHER_SERVICES = '_other';

/**
 * Bounds the `service` label: the first `max` services keep their name in
 * every series, later ones share `_other`. Only services the catalog knows
 * are admitted, so discovering made-up names cannot use the slots up.
 * Admission is for good: a counter's series outlives its service.
 */
export class ServiceLabels {
  private readonly admitted = new Set<string>();

  constructor(
    private readonly max: number,
    private readonly known: (service: string) => boolean,
  ) {}

  of(service: string): string {
    if (this.admitted.has(service)) return service;
    if (this.admitted.size >= this.max || !this.known(service)) return OTHER_SERVICES;
    this.admitted.add(service);
    return service;
  }
}

/** Counts per label value. */
export class Tally {
  private readonly counts = new Map<string, number>();

  add(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  entries(): IterableIterator<[string, number]> {
    return this.counts.entries();
  }

  total(): number {
    let sum = 0;
    for (const n of this.counts.values()) sum += n;
    return sum;
  }
}

/** Counts per pair of label values, without building a key per increment. */
export class PairTally {
  private readonly rows = new Map<string, Tally>();

  add(first: string, second: string): void {
    let row = this.rows.get(first);
    if (row === undefined) this.rows.set(first, (row = new Tally()));
    row.add(second);
  }

  *entries(): Generator<[string, string, number]> {
    for (const [first, row] of this.rows) for (const [second, n] of row.entries()) yield [first, second, n];
  }

  total(): number {
    let sum = 0;
    for (const row of this.rows.values()) sum += row.total();
    return sum;
  }
}

/**
 * Request duration bounds, seconds. 10 ms and 50 ms must stay bounds: the
 * discover latency SLI counts the requests under them.
 */
export const DURATION_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** One histogram series. Counts are per bucket (the last one past every bound); the exposition accumulates them. */
export class Buckets {
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    const { bounds } = this;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

export interface TimedSeries {
  readonly method: string;
  readonly route: string;
  readonly status: (typeof STATUS_CLASSES)[number];
  readonly buckets: Buckets;
}

/** Durations of one route's requests by method and status class; bound to the route when it is added. */
export class RouteTimings {
  private readonly byMethod = new Map<string, (Buckets | undefined)[]>();

  constructor(readonly route: string) {}

  observe(method: string, status: number, seconds: number): void {
    let byClass = this.byMethod.get(method);
    if (byClass === undefined) this.byMethod.set(method, (byClass = []));
    const index = Math.min(Math.max(Math.floor(status / 100), 1), 5) - 1;
    (byClass[index] ??= new Buckets(DURATION_BUCKETS)).observe(seconds);
  }

  *series(): Generator<TimedSeries> {
    for (const [method, byClass] of this.byMethod) {
      for (const [index, buckets] of byClass.entries()) {
        if (buckets !== undefined) yield { method, route: this.route, status: STATUS_CLASSES[index]!, buckets };
      }
    }
  }
}

/** Every route's timings. The label is the route's pattern, never the requested URL. */
export class RequestTimings {
  private readonly routes = new Map<string, RouteTimings>();

  route(pattern: string): RouteTimings {
    let timings = this.routes.get(pattern);
    if (timings === undefined) this.routes.set(pattern, (timings = new RouteTimings(pattern)));
    return timings;
  }

  *series(): Generator<TimedSeries> {
    for (const timings of this.routes.values()) yield* timings.series();
  }

  total(): number {
    return this.totals().total;
  }

  /** Requests answered, and of them those answered with a 5xx status; a walk over the series, for scrapes and alert evaluations. */
  totals(): { total: number; errors: number } {
    let total = 0;
    let errors = 0;
    for (const { status, buckets } of this.series()) {
      total += buckets.count;
      if (status === '5xx') errors += buckets.count;
    }
    return { total, errors };
  }
}
