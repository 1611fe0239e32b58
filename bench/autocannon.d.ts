// autocannon ships no types; this declares the part of its programmatic API the benchmarks use.
declare module 'autocannon' {
  interface AutocannonRequest {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: string;
  }

  interface AutocannonOptions {
    url: string;
    connections?: number;
    /** Seconds. */
    duration?: number;
    /** Requests to send in all, instead of a duration. */
    amount?: number;
    /** Seconds to wait for an answer before counting a timeout. */
    timeout?: number;
    /** Each connection sends these in turn, starting over after the last. */
    requests?: AutocannonRequest[];
  }

  interface AutocannonResult {
    errors: number;
    timeouts: number;
    non2xx: number;
    /** Requests per second, over the per-second samples of the run; and how many were answered in all. */
    requests: { average: number; total: number };
  }

  /** The running load: a thenable for the result that also reports each response. */
  interface AutocannonInstance extends PromiseLike<AutocannonResult> {
    /** responseTime is in milliseconds with sub-millisecond precision. */
    on(event: 'response', listener: (client: unknown, statusCode: number, resBytes: number, responseTime: number) => void): this;
  }

  function autocannon(options: AutocannonOptions): AutocannonInstance;
  export default autocannon;
}
