import type { Catalog } from '../core/catalog.ts';
import { KvCollection } from '../core/kv-collection.ts';
import { isAlertRule, isSeverity } from './rules.ts';
import type { DeliveryStatus } from './delivery.ts';
import type { AlertPayload } from './webhooks.ts';

export const NOTIFIED_KV_PREFIX = 'alerts/notified/';

/**
 * The leader's record that a cluster alert's firing was notified, kept in
 * the store's KV under its fingerprint until its resolution is notified. A
 * new leader (or a restarted one) compares it with what it evaluates, so
 * it notifies exactly the differences: no second firing, no lost resolution.
 */
export interface NotifiedRecord {
  readonly alert: AlertPayload;
  readonly sentBy: string;
  /** Epoch ms of the first attempt. */
  readonly sentAt: number;
  readonly deliveries: readonly DeliveryStatus[];
}

function parseRecord(parsed: unknown): NotifiedRecord | null {
  if (typeof parsed !== 'object' || parsed === null) return null;
  const record = parsed as Partial<NotifiedRecord>;
  const alert = record.alert as Partial<AlertPayload> | undefined;
  const wellFormed =
    typeof alert === 'object' &&
    alert !== null &&
    typeof alert.fingerprint === 'string' &&
    isAlertRule(alert.rule) &&
    isSeverity(alert.severity) &&
    typeof record.sentBy === 'string' &&
    typeof record.sentAt === 'number' &&
    Array.isArray(record.deliveries);
  return wellFormed ? (record as NotifiedRecord) : null;
}

/** The notified records as the catalog's KV holds them, by fingerprint, parsed once per change. */
export function notifiedRecords(catalog: Catalog, onWarning: (message: string) => void): KvCollection<NotifiedRecord> {
  return new KvCollection(catalog, NOTIFIED_KV_PREFIX, parseRecord, onWarning);
}
