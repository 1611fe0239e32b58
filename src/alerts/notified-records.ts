import type { Catalog } from '../core/catalog.ts';
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

function parseRecord(value: string): NotifiedRecord | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return null;
  }
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

/** The notified records as the catalog's KV holds them, parsed once per change. */
export class NotifiedRecords {
  private readonly records = new Map<string, NotifiedRecord>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly catalog: Catalog,
    private readonly onWarning: (message: string) => void,
  ) {
    this.unsubscribe = catalog.subscribe({
      event: (event) => {
        if (event.type === 'config_changed' && event.key.startsWith(NOTIFIED_KV_PREFIX)) this.load(event.key, event.value);
      },
      reset: () => this.reloadAll(),
    });
    this.reloadAll();
  }

  get(fingerprint: string): NotifiedRecord | undefined {
    return this.records.get(fingerprint);
  }

  has(fingerprint: string): boolean {
    return this.records.has(fingerprint);
  }

  fingerprints(): IterableIterator<string> {
    return this.records.keys();
  }

  close(): void {
    this.unsubscribe();
  }

  private reloadAll(): void {
    this.records.clear();
    for (const [key, value] of this.catalog.kvEntries()) if (key.startsWith(NOTIFIED_KV_PREFIX)) this.load(key, value);
  }

  private load(key: string, value: string | null): void {
    const fingerprint = key.slice(NOTIFIED_KV_PREFIX.length);
    this.records.delete(fingerprint);
    if (value === null) return;
    const record = parseRecord(value);
    if (record === null) this.onWarning(`The alert record ${key} in the store is not one this version reads; it is ignored.`);
    else this.records.set(fingerprint, record);
  }
}
