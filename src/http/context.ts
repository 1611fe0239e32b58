import type { AlertMonitor } from '../alerts/monitor.ts';
import type { Security } from '../auth/security.ts';
import type { MaxineConfig } from '../config/schema.ts';
import type { AuditLog } from '../observe/audit.ts';
import type { Metrics } from '../observe/metrics.ts';
import type { RecentRequests } from '../observe/recent-requests.ts';
import type { EventHub } from './events/hub.ts';
import type { RecentLines } from '../observe/recent-lines.ts';
import type { CheckDefaults } from '../health/check-spec.ts';
import type { HealthChecker } from '../health/checker.ts';
import type { Proxy } from '../proxy/proxy.ts';
import type { ClientAddress } from './client-address.ts';
import type { Registry } from '../registry/registry.ts';
import type { RevisionWaiters } from '../registry/revision-waiters.ts';
import type { RuntimeConfig } from '../registry/runtime-config.ts';

/** What every surface needs; surfaces hold no registry state of their own. */
export interface AppContext {
  readonly registry: Registry;
  /** Blocking queries on the listings: their indexes and the requests parked on them. */
  readonly revisionWaiters: RevisionWaiters;
  readonly runtime: RuntimeConfig;
  readonly config: MaxineConfig;
  /** This replica's name in leadership (MAXINE_INSTANCE_ID or <hostname>-<pid>). */
  readonly instanceId: string;
  /** The client address as trustProxy allows it to be believed. */
  readonly clientAddress: ClientAddress;
  /** The MAXINE_ACTIVE_HEALTH_CHECK_* settings, which fill in registered checks. */
  readonly checkDefaults: CheckDefaults;
  /** The data path of the proxy routes, and its per-instance state for the actuator. */
  readonly proxy: Proxy;
  /** Active checks (probing only on the leader), for the actuator. */
  readonly checker: HealthChecker;
  /** Users, tokens, keys and the access policy. */
  readonly security: Security;
  /** Every change and every refusal, for the audit log and /api/actuator/audit. */
  readonly audit: AuditLog;
  /** Live events for WebSocket and SSE subscribers. */
  readonly events: EventHub;
  /** This replica's recent log lines, for /api/logs. */
  readonly recentLogs: RecentLines;
  /**
   * This replica's recently answered requests, for /api/actuator/traces;
   * null while tracing is off: recording takes an onResponse hook, and with
   * one fastify sets up response listeners on every request (measured).
   */
  readonly recentRequests: RecentRequests | null;
  /** Counts the hot paths feed, and the Prometheus exposition. */
  readonly metrics: Metrics;
  /** Alert rules, their states and notifications, for /api/actuator/alerts. */
  readonly alerts: AlertMonitor;
}
