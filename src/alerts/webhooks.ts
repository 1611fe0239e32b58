import { createHmac } from 'node:crypto';
import { compilePattern, type NamePattern } from '../auth/glob.ts';
import type { AlertIdentity, AlertRule, Severity } from './rules.ts';

/** A webhook as configured (MAXINE_ALERT_WEBHOOKS); empty filters match everything. */
export interface WebhookSpec {
  readonly name: string;
  readonly url: string;
  readonly severities: readonly Severity[];
  /** Service-name patterns; alerts about no service (replica alerts) reach only webhooks without this filter. */
  readonly services: readonly string[];
  readonly rules: readonly AlertRule[];
}

/** What an alert looks like to a receiver, and in the leader's record of what it notified. */
export interface AlertPayload extends AlertIdentity {
  readonly summary: string;
  readonly details: Readonly<Record<string, string | number | boolean | null>>;
  /** ISO-8601: when it fired. */
  readonly startsAt: string;
  /** ISO-8601: when it resolved; null while firing. */
  readonly endsAt: string | null;
}

export type NotificationStatus = 'firing' | 'resolved';

export const SIGNATURE_HEADER = 'x-maxine-signature';
export const TIMESTAMP_HEADER = 'x-maxine-timestamp';

export class Webhook {
  private readonly servicePatterns: readonly NamePattern[];

  constructor(
    readonly spec: WebhookSpec,
    /** Signs every body when set (MAXINE_ALERT_WEBHOOK_SECRETS). */
    private readonly secret: string | null,
  ) {
    this.servicePatterns = spec.services.map(compilePattern);
  }

  get name(): string {
    return this.spec.name;
  }

  get signed(): boolean {
    return this.secret !== null;
  }

  /** Where it points, for people: the origin only, as paths and queries of webhook URLs often carry a token. */
  get target(): string {
    return new URL(this.spec.url).origin;
  }

  matches(alert: Pick<AlertPayload, 'severity' | 'rule' | 'service'>): boolean {
    const { severities, rules } = this.spec;
    if (severities.length > 0 && !severities.includes(alert.severity)) return false;
    if (rules.length > 0 && !rules.includes(alert.rule)) return false;
    if (this.servicePatterns.length === 0) return true;
    const { service } = alert;
    return service !== null && this.servicePatterns.some((matches) => matches(service));
  }

  /**
   * The signature header's value: HMAC-SHA256 over `<timestamp>.<body>` as
   * lowercase hex, so a receiver can reject both forged bodies and old ones
   * replayed (it compares the timestamp header with its own clock).
   */
  signature(timestampSec: number, body: string): string | null {
    if (this.secret === null) return null;
    return `sha256=${createHmac('sha256', this.secret).update(`${timestampSec}.${body}`).digest('hex')}`;
  }
}

/** The JSON body every webhook receives: one notification about one alert. */
export function notificationBody(status: NotificationStatus, alert: AlertPayload, sender: string, sentAt: number): string {
  return JSON.stringify({ version: 1, status, alert, sender, sentAt: new Date(sentAt).toISOString() });
}
