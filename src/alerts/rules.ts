import { createHash } from 'node:crypto';

/**
 * What Maxine alerts on. Cluster rules describe the shared registry: every
 * replica evaluates them alike from its catalog, and the leader notifies.
 * Replica rules describe one replica (its view of the store and of the
 * leadership, its own error rate): the replica that sees the condition
 * notifies, since the condition may be exactly that it cannot reach the
 * others.
 */
export const ALERT_RULES = [
  'service_instances_low',
  'instance_evicted',
  'leadership_lost',
  'no_leader',
  'store_unreachable',
  'error_rate_high',
] as const;
export type AlertRule = (typeof ALERT_RULES)[number];

export const SEVERITIES = ['critical', 'warning'] as const;
export type Severity = (typeof SEVERITIES)[number];

export type AlertScope = 'cluster' | 'replica';

export const RULE_SEVERITY: Readonly<Record<AlertRule, Severity>> = {
  service_instances_low: 'critical',
  instance_evicted: 'warning',
  leadership_lost: 'warning',
  no_leader: 'critical',
  store_unreachable: 'critical',
  error_rate_high: 'warning',
};

export const RULE_SCOPE: Readonly<Record<AlertRule, AlertScope>> = {
  service_instances_low: 'cluster',
  instance_evicted: 'cluster',
  leadership_lost: 'replica',
  no_leader: 'replica',
  store_unreachable: 'replica',
  error_rate_high: 'replica',
};

/**
 * Rules that fire as soon as their condition is seen: an eviction already
 * waited for the checks' fall threshold, and a lost leadership is a moment,
 * not a state. The others wait for the condition to hold `alertForMs`.
 */
export const FIRES_AT_ONCE: ReadonlySet<AlertRule> = new Set(['instance_evicted', 'leadership_lost']);

export function isAlertRule(value: unknown): value is AlertRule {
  return typeof value === 'string' && (ALERT_RULES as readonly string[]).includes(value);
}

export function isSeverity(value: unknown): value is Severity {
  return typeof value === 'string' && (SEVERITIES as readonly string[]).includes(value);
}

/** What a condition is about; two conditions with the same subject are the same alert. */
export interface AlertSubject {
  readonly rule: AlertRule;
  readonly service: string | null;
  readonly instanceId: string | null;
  /** The replica a replica-scoped alert is about; null for cluster alerts. */
  readonly replica: string | null;
}

/** An alert's subject with its stable name and its class: what the book's alerts and the webhooks' payloads share. */
export interface AlertIdentity extends AlertSubject {
  readonly fingerprint: string;
  readonly severity: Severity;
  readonly scope: AlertScope;
}

/** A condition that holds now, as its rule describes it. */
export interface Condition extends AlertSubject {
  /** One line for people, e.g. "orders has 1 eligible instance (threshold 2)". */
  readonly summary: string;
  /** The figures behind the summary, for machines. */
  readonly details: Readonly<Record<string, string | number | boolean | null>>;
}

/**
 * A stable name for an alert, the same on every replica and across
 * restarts: receivers de-duplicate on it, and the leader records what it
 * notified under it.
 */
export function fingerprintOf(subject: AlertSubject): string {
  const identity = JSON.stringify([subject.rule, subject.service, subject.instanceId, subject.replica]);
  return createHash('sha256').update(identity).digest('hex').slice(0, 24);
}
