/** Statuses the proxy answers itself, with Maxine's JSON error body. */
export type AnsweredStatus = 413 | 501 | 502 | 503 | 504;

/** Totals since start, for metrics. Plain fields: the hot path only increments. */
export class ProxyCounters {
  /** Client requests handed to forward(). */
  requests = 0;
  /** Extra attempts made. */
  retries = 0;
  /** Retries that were safe but refused by the retry budget. */
  retriesDeniedByBudget = 0;
  /** Exchanges the client left before the response was complete. */
  clientAborts = 0;
  /** Responses relayed from instances, by class. */
  readonly upstream = { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };
  /** Responses the proxy answered itself, by status. */
  readonly answered: Record<AnsweredStatus, number> = { 413: 0, 501: 0, 502: 0, 503: 0, 504: 0 };

  /** A final (non-1xx) status relayed to the client. */
  relayed(status: number): void {
    if (status >= 500) this.upstream['5xx']++;
    else if (status >= 400) this.upstream['4xx']++;
    else if (status >= 300) this.upstream['3xx']++;
    else this.upstream['2xx']++;
  }
}
