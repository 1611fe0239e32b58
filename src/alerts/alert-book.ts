import { FIRES_AT_ONCE, fingerprintOf, RULE_SCOPE, RULE_SEVERITY, type AlertIdentity, type AlertRule, type Condition } from './rules.ts';
import type { DeliveryStatus } from './delivery.ts';

/** One notification of an alert (its firing or its resolution) and how its deliveries went. */
export interface Notification {
  readonly status: 'firing' | 'resolved';
  /** The replica that sent it. */
  readonly sentBy: string;
  /** Epoch ms of the first attempt. */
  readonly sentAt: number;
  readonly deliveries: readonly DeliveryStatus[];
}

/** An alert this replica knows: pending (condition seen, waiting for alertForMs), firing, or resolved. */
export interface Alert extends AlertIdentity {
  summary: string;
  details: Condition['details'];
  /** Epoch ms the condition was first seen (this time round). */
  readonly pendingSince: number;
  firedAt: number | null;
  resolvedAt: number | null;
  /** Newest last; at most one firing and one resolution. */
  notifications: Notification[];
}

export type Transition = { readonly kind: 'fired' | 'resolved'; readonly alert: Alert };

export interface AlertBookOptions {
  /** How long a condition must hold before its alert fires (rules in FIRES_AT_ONCE excepted). */
  readonly forMs: number;
  /** Alerts pending or firing at once; conditions beyond are not tracked (counted in `untracked`). */
  readonly maxActive: number;
  /** Resolved alerts kept for /api/actuator/alerts. */
  readonly recentSize: number;
}

function subjectKey(c: Condition): string {
  return `${c.rule}\u0000${c.service ?? ''}\u0000${c.instanceId ?? ''}\u0000${c.replica ?? ''}`;
}

/**
 * The alert state machine: a condition becomes a pending alert, fires once
 * it has held `forMs`, and resolves once it no longer holds; a pending alert
 * whose condition goes away is forgotten without a word. Pure: the caller
 * supplies the conditions and the time.
 */
export class AlertBook {
  private readonly active = new Map<string, Alert>();
  private readonly byFingerprint = new Map<string, Alert>();
  private readonly resolved: Alert[] = [];
  /** Alerts fired since start, by rule (each rule has one severity). */
  readonly fired = new Map<AlertRule, number>();
  /** Conditions the last update did not track because maxActive alerts were already active. */
  untracked = 0;

  constructor(private readonly options: AlertBookOptions) {}

  /**
   * Apply what holds now. `alreadyFiring` says whether an alert is known to
   * have fired before (the leader's record of a notification): such an alert
   * fires again at once instead of waiting, so a restart or a new leader does
   * not resolve and re-fire it.
   */
  update(conditions: readonly Condition[], now: number, alreadyFiring: (fingerprint: string) => boolean): Transition[] {
    const transitions: Transition[] = [];
    const holding = new Map<string, Condition>();
    for (const condition of conditions) holding.set(subjectKey(condition), condition);
    // Resolutions first: they make room for new alerts under maxActive.
    for (const [key, alert] of this.active) {
      if (holding.has(key)) continue;
      this.active.delete(key);
      this.byFingerprint.delete(alert.fingerprint);
      if (alert.firedAt === null) continue;
      alert.resolvedAt = now;
      this.remember(alert);
      transitions.push({ kind: 'resolved', alert });
    }
    let untracked = 0;
    for (const [key, condition] of holding) {
      let alert = this.active.get(key);
      if (alert === undefined) {
        if (this.active.size >= this.options.maxActive) {
          untracked++;
          continue;
        }
        alert = {
          fingerprint: fingerprintOf(condition),
          rule: condition.rule,
          severity: RULE_SEVERITY[condition.rule],
          scope: RULE_SCOPE[condition.rule],
          service: condition.service,
          instanceId: condition.instanceId,
          replica: condition.replica,
          summary: condition.summary,
          details: condition.details,
          pendingSince: now,
          firedAt: null,
          resolvedAt: null,
          notifications: [],
        };
        this.active.set(key, alert);
        this.byFingerprint.set(alert.fingerprint, alert);
      }
      alert.summary = condition.summary;
      alert.details = condition.details;
      if (alert.firedAt === null && (FIRES_AT_ONCE.has(alert.rule) || now - alert.pendingSince >= this.options.forMs || alreadyFiring(alert.fingerprint))) {
        alert.firedAt = now;
        this.fired.set(alert.rule, (this.fired.get(alert.rule) ?? 0) + 1);
        transitions.push({ kind: 'fired', alert });
      }
    }
    this.untracked = untracked;
    return transitions;
  }

  /** The pending or firing alert with this fingerprint. */
  activeAlert(fingerprint: string): Alert | undefined {
    return this.byFingerprint.get(fingerprint);
  }

  /** A recently resolved alert with this fingerprint. */
  resolvedAlert(fingerprint: string): Alert | undefined {
    for (let i = this.resolved.length - 1; i >= 0; i--) if (this.resolved[i]!.fingerprint === fingerprint) return this.resolved[i];
    return undefined;
  }

  activeAlerts(): IterableIterator<Alert> {
    return this.active.values();
  }

  /** Newest first. */
  resolvedAlerts(): Alert[] {
    return [...this.resolved].reverse();
  }

  private remember(alert: Alert): void {
    this.resolved.push(alert);
    if (this.resolved.length > this.options.recentSize) this.resolved.shift();
  }
}
