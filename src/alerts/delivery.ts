import { randomUUID } from 'node:crypto';
import { Agent, request } from 'undici';
import { notificationBody, SIGNATURE_HEADER, TIMESTAMP_HEADER, type AlertPayload, type NotificationStatus, type Webhook } from './webhooks.ts';

export const DELIVERY_STATES = ['sending', 'retrying', 'delivered', 'failed', 'cancelled'] as const;

/** How one notification's delivery to one webhook went; updated in place while it runs. */
export interface DeliveryStatus {
  readonly webhook: string;
  state: (typeof DELIVERY_STATES)[number];
  attempts: number;
  /** The last response's status; null when no response came. */
  statusCode: number | null;
  /** Why the last attempt failed; null once delivered. */
  error: string | null;
  /** Epoch ms. */
  lastAttemptAt: number | null;
  /** Epoch ms of the next attempt while retrying. */
  nextAttemptAt: number | null;
}

export interface DispatcherOptions {
  readonly webhooks: readonly Webhook[];
  /** Attempts after the first one. */
  readonly retries: number;
  /** Wait before the first retry; each later one waits twice as long, up to MAX_BACKOFF_MS. */
  readonly backoffMs: number;
  /** Connect, response headers and body each within this. */
  readonly timeoutMs: number;
  /** The replica sending, named in every body. */
  readonly sender: string;
  readonly userAgent: string;
  readonly clock?: () => number;
}

export interface DeliveryCounts {
  delivered: number;
  failed: number;
}

const MAX_BACKOFF_MS = 5 * 60_000;

/** Statuses worth another attempt: the receiver is overloaded, timing out, or broken for now. */
function retryable(statusCode: number): boolean {
  return statusCode === 408 || statusCode === 429 || statusCode >= 500;
}

/** Retry-After in seconds (the HTTP-date form is rare from webhook receivers and is ignored). */
function retryAfterMs(header: string | string[] | undefined): number {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || !/^\d{1,6}$/.test(value.trim())) return 0;
  return Number(value.trim()) * 1000;
}

/**
 * Sends notifications to the webhooks that match them: a POST of the JSON
 * body, signed when the webhook has a secret, retried on connection
 * failures, timeouts, 408, 429 and 5xx with exponential backoff and jitter
 * (a Retry-After longer than the backoff is honoured); other 4xx answers are
 * final. Redirects are not followed. Each delivery keeps one id across its
 * attempts (x-maxine-delivery) so a receiver can drop repeats.
 */
export class WebhookDispatcher {
  private readonly agent: Agent;
  private readonly clock: () => number;
  private readonly counts = new Map<string, DeliveryCounts>();
  private readonly closing = new AbortController();
  private readonly waits = new Set<{ timer: NodeJS.Timeout; wake: () => void }>();
  private closed: Promise<void> | undefined;

  constructor(private readonly options: DispatcherOptions) {
    this.clock = options.clock ?? Date.now;
    this.agent = new Agent({
      connect: { timeout: options.timeoutMs },
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      connections: 8,
    });
    for (const webhook of options.webhooks) this.counts.set(webhook.name, { delivered: 0, failed: 0 });
  }

  get webhooks(): readonly Webhook[] {
    return this.options.webhooks;
  }

  routesFor(alert: Pick<AlertPayload, 'severity' | 'rule' | 'service'>): Webhook[] {
    return this.options.webhooks.filter((webhook) => webhook.matches(alert));
  }

  /** Deliveries per webhook since start. */
  countsOf(webhook: string): DeliveryCounts {
    return this.counts.get(webhook) ?? { delivered: 0, failed: 0 };
  }

  /**
   * Start delivering to `webhooks` (from routesFor). The statuses are
   * returned at once and updated as attempts go; `settled` resolves when
   * every delivery is delivered, failed or cancelled. Never rejects.
   */
  send(status: NotificationStatus, alert: AlertPayload, webhooks: readonly Webhook[]): { deliveries: DeliveryStatus[]; settled: Promise<void> } {
    const body = notificationBody(status, alert, this.options.sender, this.clock());
    const deliveries = webhooks.map((webhook) => this.deliver(webhook, status, body));
    return { deliveries: deliveries.map((d) => d.status), settled: Promise.all(deliveries.map((d) => d.done)).then(() => undefined) };
  }

  /** Cancels waiting retries and requests in flight; idempotent. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.closing.abort();
      for (const wait of this.waits) {
        clearTimeout(wait.timer);
        wait.wake();
      }
      await this.agent.close();
    })();
    return this.closed;
  }

  private deliver(webhook: Webhook, status: NotificationStatus, body: string): { status: DeliveryStatus; done: Promise<void> } {
    const delivery: DeliveryStatus = { webhook: webhook.name, state: 'sending', attempts: 0, statusCode: null, error: null, lastAttemptAt: null, nextAttemptAt: null };
    const id = randomUUID();
    const done = (async () => {
      for (let attempt = 0; ; attempt++) {
        if (this.closing.signal.aborted) {
          delivery.state = 'cancelled';
          delivery.nextAttemptAt = null;
          return;
        }
        delivery.state = attempt === 0 ? 'sending' : 'retrying';
        delivery.attempts++;
        delivery.lastAttemptAt = this.clock();
        delivery.nextAttemptAt = null;
        const outcome = await this.attempt(webhook, status, body, id);
        delivery.statusCode = outcome.statusCode;
        delivery.error = outcome.error;
        if (outcome.error === null) {
          delivery.state = 'delivered';
          this.countsOf(webhook.name).delivered++;
          return;
        }
        if (!outcome.retry || attempt >= this.options.retries || this.closing.signal.aborted) {
          delivery.state = this.closing.signal.aborted ? 'cancelled' : 'failed';
          if (delivery.state === 'failed') this.countsOf(webhook.name).failed++;
          return;
        }
        const backoff = Math.min(this.options.backoffMs * 2 ** attempt, MAX_BACKOFF_MS);
        // ±20 %: receivers that failed together are not all retried in the same instant.
        const wait = Math.max(backoff * (0.8 + Math.random() * 0.4), Math.min(outcome.retryAfterMs, MAX_BACKOFF_MS));
        delivery.state = 'retrying';
        delivery.nextAttemptAt = this.clock() + Math.round(wait);
        await this.sleep(wait);
      }
    })();
    return { status: delivery, done };
  }

  private async attempt(webhook: Webhook, status: NotificationStatus, body: string, id: string): Promise<{ statusCode: number | null; error: string | null; retry: boolean; retryAfterMs: number }> {
    const timestamp = Math.floor(this.clock() / 1000);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': this.options.userAgent,
      'x-maxine-delivery': id,
      'x-maxine-event': status,
      [TIMESTAMP_HEADER]: String(timestamp),
    };
    const signature = webhook.signature(timestamp, body);
    if (signature !== null) headers[SIGNATURE_HEADER] = signature;
    try {
      const response = await request(webhook.spec.url, { method: 'POST', headers, body, dispatcher: this.agent, signal: this.closing.signal });
      // Read to the end so the connection is reused; the body itself is not needed.
      await response.body.dump();
      const { statusCode } = response;
      if (statusCode >= 200 && statusCode < 300) return { statusCode, error: null, retry: false, retryAfterMs: 0 };
      return { statusCode, error: `answered ${statusCode}`, retry: retryable(statusCode), retryAfterMs: retryAfterMs(response.headers['retry-after']) };
    } catch (error) {
      const message = error instanceof Error ? `${(error as { code?: string }).code ?? error.name}: ${error.message}` : String(error);
      return { statusCode: null, error: message, retry: true, retryAfterMs: 0 };
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wait = {
        timer: setTimeout(() => {
          this.waits.delete(wait);
          resolve();
        }, ms),
        wake: () => {
          this.waits.delete(wait);
          resolve();
        },
      };
      this.waits.add(wait);
    });
  }
}
