import type { Catalog } from '../core/catalog.ts';
import type { RegistryStore } from '../store/store.ts';
import { AlertBook, type Alert, type Notification } from './alert-book.ts';
import type { DeliveryCounts, WebhookDispatcher } from './delivery.ts';
import type { KvCollection } from '../core/kv-collection.ts';
import { NOTIFIED_KV_PREFIX, notifiedRecords, type NotifiedRecord } from './notified-records.ts';
import { RegistryConditions } from './registry-conditions.ts';
import { ReplicaConditions, type ErrorRateRule, type RequestTotals } from './replica-conditions.ts';
import type { AlertRule, Condition } from './rules.ts';
import type { InstanceThresholds } from './thresholds.ts';
import type { AlertPayload, NotificationStatus, Webhook } from './webhooks.ts';

export interface AlertSettings {
  readonly intervalMs: number;
  readonly forMs: number;
  readonly maxActive: number;
  readonly recentSize: number;
  readonly thresholds: InstanceThresholds;
  readonly errorRate: ErrorRateRule;
}

export interface AlertMonitorOptions {
  readonly catalog: Catalog;
  readonly store: Pick<RegistryStore, 'leadership' | 'health'>;
  /** This replica's instance id. */
  readonly replica: string;
  readonly settings: AlertSettings;
  readonly requestTotals: () => RequestTotals;
  /** A KV write through the registry (for the leader's notified records). */
  readonly writeKv: (key: string, value: string | null) => Promise<void>;
  readonly dispatcher: WebhookDispatcher;
  readonly clock?: () => number;
  readonly onWarning: (message: string) => void;
}

export interface AlertStats {
  /** Alerts fired on this replica's evaluation, by rule. */
  readonly fired: ReadonlyMap<AlertRule, number>;
  /** Alerts firing now, by rule. */
  readonly firing: ReadonlyMap<AlertRule, number>;
  /** Conditions not tracked at the last evaluation (MAXINE_ALERT_MAX_ACTIVE). */
  readonly untracked: number;
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

function payloadOf(alert: Alert): AlertPayload {
  const { fingerprint, rule, severity, scope, service, instanceId, replica, summary, details } = alert;
  return { fingerprint, rule, severity, scope, service, instanceId, replica, summary, details, startsAt: iso(alert.firedAt ?? alert.pendingSince)!, endsAt: iso(alert.resolvedAt) };
}

/**
 * Evaluates the alert rules every `intervalMs` and notifies webhooks.
 * Replica alerts are notified by this replica when they fire and resolve.
 * Cluster alerts are evaluated alike on every replica, but only the leader
 * notifies, by making the notified records in the store's KV match what it
 * evaluates: that de-duplicates across replicas and carries over a change
 * of leader (at least once: a leader that dies between sending and
 * recording is repeated by the next, with the same fingerprint).
 */
export class AlertMonitor {
  private readonly clock: () => number;
  private readonly book: AlertBook;
  private readonly registryConditions: RegistryConditions;
  private readonly replicaConditions: ReplicaConditions;
  private readonly records: KvCollection<NotifiedRecord>;
  /** Cluster alerts whose notification or record write is under way. */
  private readonly inFlight = new Set<string>();
  /** Record writes not yet in the store (failed, or under way): the leader's own view overrides the KV's. */
  private readonly unrecorded = new Map<string, NotifiedRecord | null>();
  /** Replica alerts: the last notification of each, so a resolution is sent after its firing. */
  private readonly replicaSends = new Map<string, Promise<void>>();
  /** Fingerprints whose record write failed and was reported: reported once, retried every evaluation. */
  private readonly failingWrites = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: AlertMonitorOptions) {
    const { catalog, settings } = options;
    this.clock = options.clock ?? Date.now;
    this.book = new AlertBook({ forMs: settings.forMs, maxActive: settings.maxActive, recentSize: settings.recentSize });
    this.registryConditions = new RegistryConditions(catalog, settings.thresholds);
    this.replicaConditions = new ReplicaConditions({
      store: options.store,
      replica: options.replica,
      errorRate: settings.errorRate,
      requestTotals: options.requestTotals,
      settleMs: settings.forMs,
    });
    this.records = notifiedRecords(catalog, options.onWarning);
  }

  start(): void {
    this.timer = setInterval(() => this.evaluate(), this.options.settings.intervalMs);
    this.timer.unref();
  }

  /** One evaluation; the timer calls it, tests may too. */
  evaluate(): void {
    const now = this.clock();
    const conditions: Condition[] = [];
    this.registryConditions.collect(conditions);
    this.replicaConditions.collect(conditions, now);
    const untrackedBefore = this.book.untracked;
    const transitions = this.book.update(conditions, now, (fingerprint) => this.recorded(fingerprint) !== null);
    if (this.book.untracked > 0 && untrackedBefore === 0) {
      this.options.onWarning(`${this.book.untracked} alert conditions are not tracked: ${this.options.settings.maxActive} alerts are active already (MAXINE_ALERT_MAX_ACTIVE).`);
    }
    for (const { kind, alert } of transitions) if (alert.scope === 'replica') this.notifyReplicaAlert(kind === 'fired' ? 'firing' : 'resolved', alert);
    if (this.options.store.leadership().isLeader) this.reconcile(now);
    else {
      this.unrecorded.clear();
      this.failingWrites.clear();
    }
  }

  /** Active alerts (firing, then pending), then the recently resolved, newest first within each. */
  alerts(): Alert[] {
    const active = [...this.book.activeAlerts()].sort((a, b) => Number(a.firedAt === null) - Number(b.firedAt === null) || b.pendingSince - a.pendingSince);
    return [...active, ...this.book.resolvedAlerts()];
  }

  /**
   * The notifications of an alert as this replica knows them: its own
   * sends, or for a cluster alert the leader's record in the KV.
   */
  notificationsOf(alert: Alert): readonly Notification[] {
    if (alert.notifications.length > 0 || alert.scope === 'replica') return alert.notifications;
    const record = this.recorded(alert.fingerprint);
    return record === null ? [] : [{ status: 'firing', sentBy: record.sentBy, sentAt: record.sentAt, deliveries: record.deliveries }];
  }

  get webhooks(): readonly Webhook[] {
    return this.options.dispatcher.webhooks;
  }

  deliveryCounts(webhook: string): DeliveryCounts {
    return this.options.dispatcher.countsOf(webhook);
  }

  /** Whether this replica notifies cluster alerts (it leads). */
  get notifiesClusterAlerts(): boolean {
    return this.options.store.leadership().isLeader;
  }

  stats(): AlertStats {
    const firing = new Map<AlertRule, number>();
    for (const { rule, firedAt } of this.book.activeAlerts()) if (firedAt !== null) firing.set(rule, (firing.get(rule) ?? 0) + 1);
    return { fired: this.book.fired, firing, untracked: this.book.untracked };
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.registryConditions.close();
    this.records.close();
    await this.options.dispatcher.close();
  }

  private recorded(fingerprint: string): NotifiedRecord | null {
    const own = this.unrecorded.get(fingerprint);
    if (own !== undefined) return own;
    return this.records.get(fingerprint) ?? null;
  }

  private notifyReplicaAlert(status: NotificationStatus, alert: Alert): void {
    const routes = this.options.dispatcher.routesFor(alert);
    if (routes.length === 0) return;
    const payload = payloadOf(alert);
    const previous = this.replicaSends.get(alert.fingerprint) ?? Promise.resolve();
    const next = previous.then(async () => {
      await this.send(status, payload, routes, alert);
    });
    this.replicaSends.set(alert.fingerprint, next);
    void next.then(() => {
      if (this.replicaSends.get(alert.fingerprint) === next) this.replicaSends.delete(alert.fingerprint);
    });
  }

  /** The leader's part: notify every cluster alert whose state differs from its record, then record it. */
  private reconcile(now: number): void {
    for (const [fingerprint, record] of this.unrecorded) if (!this.inFlight.has(fingerprint)) void this.record(fingerprint, record);
    for (const alert of this.book.activeAlerts()) {
      const { fingerprint } = alert;
      if (alert.scope !== 'cluster' || alert.firedAt === null || this.inFlight.has(fingerprint) || this.recorded(fingerprint) !== null) continue;
      const routes = this.options.dispatcher.routesFor(alert);
      if (routes.length === 0) continue;
      const payload = payloadOf(alert);
      this.inFlight.add(fingerprint);
      const sentAt = this.clock();
      void this.send('firing', payload, routes, alert)
        .then((deliveries) => this.record(fingerprint, { alert: payload, sentBy: this.options.replica, sentAt, deliveries }))
        .finally(() => this.inFlight.delete(fingerprint));
    }
    // An untracked condition (MAXINE_ALERT_MAX_ACTIVE) may be one of the recorded alerts, still holding: no resolution then.
    if (this.book.untracked > 0) return;
    for (const fingerprint of new Set([...this.records.names(), ...this.unrecorded.keys()])) {
      const record = this.recorded(fingerprint);
      if (record === null || this.inFlight.has(fingerprint) || this.book.activeAlert(fingerprint) !== undefined) continue;
      const resolved = this.book.resolvedAlert(fingerprint);
      const payload: AlertPayload = { ...record.alert, endsAt: iso(resolved?.resolvedAt ?? now) };
      const routes = this.options.dispatcher.routesFor(payload);
      this.inFlight.add(fingerprint);
      void this.send('resolved', payload, routes, resolved)
        .then(() => this.record(fingerprint, null))
        .finally(() => this.inFlight.delete(fingerprint));
    }
  }

  /** Sends to `routes` and resolves with the final delivery statuses; shows them on `alert` meanwhile. */
  private async send(status: NotificationStatus, payload: AlertPayload, routes: readonly Webhook[], alert: Alert | undefined): Promise<Notification['deliveries']> {
    if (routes.length === 0) return [];
    const sentAt = this.clock();
    const { deliveries, settled } = this.options.dispatcher.send(status, payload, routes);
    alert?.notifications.push({ status, sentBy: this.options.replica, sentAt, deliveries });
    await settled;
    return deliveries;
  }

  private async record(fingerprint: string, record: NotifiedRecord | null): Promise<void> {
    this.unrecorded.set(fingerprint, record);
    this.inFlight.add(fingerprint);
    try {
      await this.options.writeKv(NOTIFIED_KV_PREFIX + fingerprint, record === null ? null : JSON.stringify(record));
      if (this.unrecorded.get(fingerprint) === record) this.unrecorded.delete(fingerprint);
      this.failingWrites.delete(fingerprint);
    } catch (error) {
      if (!this.failingWrites.has(fingerprint)) {
        this.failingWrites.add(fingerprint);
        this.options.onWarning(`Recording the notification of alert ${fingerprint} failed (${error instanceof Error ? error.message : String(error)}); retrying.`);
      }
    } finally {
      this.inFlight.delete(fingerprint);
    }
  }
}
