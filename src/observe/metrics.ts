import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Catalog } from '../core/catalog.ts';
import { isEligible } from '../core/instance.ts';
import type { AlertMonitor } from '../alerts/monitor.ts';
import { RULE_SEVERITY } from '../alerts/rules.ts';
import type { HealthCheckerStats } from '../health/checker.ts';
import type { EventStats } from '../http/events/hub.ts';
import type { LeadershipState, RegistryStore } from '../store/store.ts';
import { DURATION_BUCKETS, PairTally, RequestTimings, ServiceLabels, Tally, type TimedSeries } from './metrics-series.ts';
import type { StoreErrorKind, StoreOperation, StoreRecorder } from './metrics-store.ts';

export interface MetricsOptions {
  readonly catalog: Catalog;
  /** Leadership and reachability as the store last saw them (no I/O). */
  readonly store: Pick<RegistryStore, 'leadership' | 'health'>;
  /** Services named in labels before the rest share `_other` (MAXINE_METRICS_MAX_SERVICES). */
  readonly maxServices: number;
  /** Read at scrape time only, so they may name parts wired after the metrics. */
  readonly checks: () => HealthCheckerStats;
  readonly proxiedRequests: () => number;
  readonly events: () => EventStats;
  readonly alerts: () => Pick<AlertMonitor, 'stats' | 'webhooks' | 'deliveryCounts'>;
}

/** How often leadership is compared with the last view, so a change between scrapes is still counted. */
const LEADERSHIP_SAMPLE_MS = 1000;

/** Registration to its arrival in this replica's catalog: local writes take milliseconds, a backend's feed can take seconds. */
const FEED_LAG_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

const REQUEST_DURATION = 'maxine_http_request_duration_seconds';
const REQUEST_DURATION_HELP =
  'Time from a request reaching its route to its response finishing, by method, route pattern and status class (proxied requests include the upstream exchange, event streams their whole life).';

/** The catalog as the gauges show it, counted once per change rather than once per gauge and scrape. */
interface Census {
  readonly virtualNodes: number;
  readonly unhealthy: number;
  /** By service label and health. */
  readonly instances: PairTally;
  /** By service label: instances discover may pick on this replica. */
  readonly eligible: ReadonlyMap<string, number>;
}

/** Prometheus label value escaping: backslash, double quote and line feed. */
function labelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function histogramText(name: string, help: string, series: Iterable<TimedSeries>): string {
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`];
  for (const { method, route, status, buckets } of series) {
    const labels = `method="${labelValue(method)}",route="${labelValue(route)}",status="${status}"`;
    let cumulative = 0;
    for (const [i, bound] of buckets.bounds.entries()) {
      cumulative += buckets.counts[i]!;
      lines.push(`${name}_bucket{${labels},le="${bound}"} ${cumulative}`);
    }
    lines.push(`${name}_bucket{${labels},le="+Inf"} ${buckets.count}`, `${name}_sum{${labels}} ${buckets.sum}`, `${name}_count{${labels}} ${buckets.count}`);
  }
  return `${lines.join('\n')}\n`;
}

let processRegistry: Registry | undefined;

/** Process metrics (CPU, memory, event loop, GC) belong to the process: collected once, whatever the number of servers in it. */
function processMetrics(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry();
    // Unprefixed: process_* and nodejs_* are the names every Node.js dashboard and alert expects.
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/**
 * One replica's metrics, in a registry of its own (tests run several
 * servers in one process). Hot paths only increment plain counts
 * (metrics-series.ts); everything else is read from its owner when scraped.
 */
export class Metrics implements StoreRecorder {
  private readonly registry: Registry;
  /** Request durations; the HTTP layer binds one RouteTimings per route. */
  readonly requests = new RequestTimings();
  private readonly services: ServiceLabels;
  private readonly picks = new PairTally();
  private readonly misses = new PairTally();
  private readonly heartbeats = new Tally();
  private readonly expirations = new Tally();
  private readonly evictions = new Tally();
  private readonly registryEvents = new Tally();
  private fastLaneAnswers = 0;
  private authSuccesses = 0;
  private authFailures = 0;
  private registrations = 0;
  private leaderChanges = 0;
  /** Null until first sampled: the store's feed may not be open yet when the metrics are made. */
  private leadership: LeadershipState | null = null;
  private census: Census | null = null;
  private readonly storeDurations: Histogram<'operation'>;
  private readonly storeErrors: Counter<'operation' | 'error'>;
  private readonly feedLag: Histogram;
  private readonly sampler: NodeJS.Timeout;
  private readonly unsubscribe: () => void;

  constructor(private readonly options: MetricsOptions) {
    const { catalog, store } = options;
    const own = new Registry();
    this.services = new ServiceLabels(options.maxServices, (service) => catalog.service(service) !== undefined);

    // collect() runs with the metric as `this`: what it reads is taken from here.
    const registers = [own];
    const { picks, misses, registryEvents } = this;
    const census = () => this.takeCensus();
    const counter = (name: string, help: string, read: () => number) =>
      new Counter({ name, help, registers, collect() { this.reset(); this.inc(read()); } });
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({ name, help, registers, collect() { this.set(read()); } });
    const byService = (name: string, help: string, tally: Tally) =>
      new Counter({
        name,
        help,
        labelNames: ['service'],
        registers,
        collect() {
          this.reset();
          for (const [service, n] of tally.entries()) this.inc({ service }, n);
        },
      });

    // The original's names.
    counter('maxine_requests_total', 'HTTP requests answered by a route (requests matching no route are not counted).', () => this.requests.total());
    counter(
      'maxine_http_fast_lane_total',
      'Requests answered by the fast lane (src/http/fast-lane.ts) rather than through the framework; included in maxine_requests_total.',
      () => this.fastLaneAnswers,
    );
    counter('maxine_auth_success_total', 'Successful sign-ins.', () => this.authSuccesses);
    counter(
      'maxine_auth_failures_total',
      'Failed authentication: sign-ins with a wrong user name or password, and requests whose credentials were refused (invalid, expired or revoked).',
      () => this.authFailures,
    );
    counter(
      'maxine_registrations_total',
      'Registrations that changed the registry on this replica (new or changed instances); re-registrations that only renew count as heartbeats.',
      () => this.registrations,
    );
    counter('maxine_discoveries_total', 'Discover requests answered by this replica (REST, Lightning and GraphQL), with or without an instance.', () =>
      picks.total() + misses.total(),
    );
    counter('maxine_proxied_requests_total', 'Client requests handed to the proxy.', options.proxiedRequests);
    counter('maxine_health_checks_total', 'Active health check probes made by this replica (only the leader probes).', () => options.checks().probes);
    counter('maxine_health_check_failures_total', 'Probes that failed.', () => options.checks().failures);
    counter('maxine_health_evictions_total', 'Instances this replica evicted as leader after failing their checks for too long.', () => options.checks().evictions);
    new Counter({
      name: 'maxine_alerts_total',
      help: "Alerts fired by this replica's evaluation, by rule and severity (every replica evaluates the cluster rules; only the leader notifies them).",
      labelNames: ['rule', 'severity'],
      registers,
      collect() {
        this.reset();
        for (const [rule, n] of options.alerts().stats().fired) this.inc({ rule, severity: RULE_SEVERITY[rule] }, n);
      },
    });
    gauge('maxine_registered_services', 'Services with at least one instance.', () => catalog.serviceCount);
    gauge('maxine_registered_parent_nodes', 'Registered instances.', () => catalog.instanceCount);
    gauge('maxine_registered_virtual_nodes', "Sum of the instances' weights (the original expanded each weight into as many virtual nodes).", () => census().virtualNodes);
    gauge('maxine_cluster_is_leader', '1 while this replica leads (runs expiry and health checks).', () => Number(this.sampleLeadership().isLeader));
    gauge('maxine_cluster_has_leader', '1 while this replica knows of a leader.', () => Number(this.sampleLeadership().leaderId !== null));
    gauge('maxine_unhealthy_upstreams', 'Instances whose health is critical.', () => census().unhealthy);

    // Registry activity.
    new Counter({
      name: 'maxine_picks_total',
      help: 'Instance picks for discover requests by service, strategy and outcome (picked, or none eligible); proxy retries are not counted.',
      labelNames: ['service', 'strategy', 'outcome'],
      registers,
      collect() {
        this.reset();
        for (const [service, strategy, n] of picks.entries()) this.inc({ service, strategy, outcome: 'picked' }, n);
        for (const [service, strategy, n] of misses.entries()) this.inc({ service, strategy, outcome: 'none' }, n);
      },
    });
    byService('maxine_heartbeats_total', 'Lease renewals this replica handled: heartbeats, and re-registrations that changed nothing.', this.heartbeats);
    byService('maxine_expirations_total', "Instances removed because their lease lapsed, as applied to this replica's catalog (every replica sees every one).", this.expirations);
    byService('maxine_evictions_total', "Instances evicted by the health checks, as applied to this replica's catalog (every replica sees every one).", this.evictions);
    new Counter({
      name: 'maxine_registry_events_total',
      help: "Registry changes applied to this replica's catalog, by event type.",
      labelNames: ['type'],
      registers,
      collect() {
        this.reset();
        for (const [type, n] of registryEvents.entries()) this.inc({ type }, n);
      },
    });
    new Gauge({
      name: 'maxine_instances',
      help: 'Registered instances by service and health.',
      labelNames: ['service', 'health'],
      registers,
      collect() {
        this.reset();
        for (const [service, health, n] of census().instances.entries()) this.set({ service, health }, n);
      },
    });
    new Gauge({
      name: 'maxine_eligible_instances',
      help: 'Instances discover may pick on this replica (status up, health not critical, not ejected), by service.',
      labelNames: ['service'],
      registers,
      collect() {
        this.reset();
        for (const [service, n] of census().eligible) this.set({ service }, n);
      },
    });

    // The store and its feed.
    this.storeDurations = new Histogram({
      name: 'maxine_store_operation_duration_seconds',
      help: "Store writes by operation, from the call until the change is durable and applied to this replica's catalog; failed ones included.",
      labelNames: ['operation'],
      buckets: [...DURATION_BUCKETS],
      registers,
    });
    this.storeErrors = new Counter({
      name: 'maxine_store_operation_errors_total',
      help: "Store writes that failed, by operation and error (unavailable: the backend could not take it; fenced: a stale leader's write; other: a bug).",
      labelNames: ['operation', 'error'],
      registers,
    });
    gauge('maxine_store_reachable', "1 while the store's backend is reachable; 0 while reads come from the last known catalog and writes fail.", () =>
      Number(store.health().reachable),
    );
    gauge('maxine_feed_revision', "Revision of the last change applied to this replica's catalog; max() across replicas minus this is its revision gap.", () => catalog.revision);
    this.feedLag = new Histogram({
      name: 'maxine_feed_lag_seconds',
      help: 'New registrations: time from the registering replica accepting one to this replica applying it from the feed (write plus delivery; includes clock skew between replicas).',
      buckets: FEED_LAG_BUCKETS,
      registers,
    });
    counter('maxine_leader_changes_total', "Changes of the leader, or of this replica's leadership, seen by this replica (sampled every second).", () => this.leaderChanges);

    // Event streams.
    gauge('maxine_event_connections', 'Open WebSocket and SSE event streams.', () => options.events().connections);
    new Counter({
      name: 'maxine_events_sent_total',
      help: 'Events delivered to event stream subscribers, by type.',
      labelNames: ['type'],
      registers,
      collect() {
        this.reset();
        for (const [type, n] of Object.entries(options.events().sent)) this.inc({ type }, n);
      },
    });
    counter('maxine_events_dropped_total', 'Events not delivered to subscribers that fell too far behind.', () => options.events().dropped);
    counter('maxine_event_resyncs_total', 'Resync markers sent to subscribers in place of dropped events.', () => options.events().resyncs);

    // Alerts.
    new Gauge({
      name: 'maxine_alerts_firing',
      help: 'Alerts firing now on this replica, by rule and severity.',
      labelNames: ['rule', 'severity'],
      registers,
      collect() {
        this.reset();
        for (const [rule, n] of options.alerts().stats().firing) this.set({ rule, severity: RULE_SEVERITY[rule] }, n);
      },
    });
    gauge('maxine_alerts_untracked', 'Alert conditions holding at the last evaluation but not tracked, because MAXINE_ALERT_MAX_ACTIVE alerts were active.', () => options.alerts().stats().untracked);
    new Counter({
      name: 'maxine_alert_deliveries_total',
      help: 'Alert notifications to webhooks that ended, by webhook and outcome (delivered, or failed after every retry).',
      labelNames: ['webhook', 'outcome'],
      registers,
      collect() {
        this.reset();
        const alerts = options.alerts();
        for (const { name } of alerts.webhooks) {
          const counts = alerts.deliveryCounts(name);
          this.inc({ webhook: name, outcome: 'delivered' }, counts.delivered);
          this.inc({ webhook: name, outcome: 'failed' }, counts.failed);
        }
      },
    });

    // Merging copies the metrics registered so far: last.
    this.registry = Registry.merge([own, processMetrics()]);
    this.sampler = setInterval(() => this.sampleLeadership(), LEADERSHIP_SAMPLE_MS);
    this.sampler.unref();
    this.unsubscribe = catalog.subscribe({
      event: (event) => {
        registryEvents.add(event.type);
        if (event.type === 'config_changed') return;
        this.census = null;
        const service = this.services.of(event.service);
        if (event.type === 'service_expired') this.expirations.add(service);
        else if (event.type === 'service_evicted') this.evictions.add(service);
        else if (event.type === 'service_registered') this.feedLag.observe(Math.max(0, event.timestamp - event.instance.registeredAt) / 1000);
      },
      reset: () => {
        this.census = null;
      },
      // Ejections change who may be picked without a registry change.
      local: () => {
        this.census = null;
      },
    });
  }

  /** The exposition in Prometheus text format. */
  async text(): Promise<string> {
    return `${await this.registry.metrics()}\n${histogramText(REQUEST_DURATION, REQUEST_DURATION_HELP, this.requests.series())}`;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** On the discover path: one increment. */
  picked(service: string, strategy: string, found: boolean): void {
    (found ? this.picks : this.misses).add(this.services.of(service), strategy);
  }

  /** On the fast lane: one increment. */
  fastLaneAnswered(): void {
    this.fastLaneAnswers++;
  }

  signedIn(succeeded: boolean): void {
    if (succeeded) this.authSuccesses++;
    else this.authFailures++;
  }

  credentialsRefused(): void {
    this.authFailures++;
  }

  operation(operation: StoreOperation, seconds: number, error: StoreErrorKind | null): void {
    this.storeDurations.observe({ operation }, seconds);
    if (error !== null) this.storeErrors.inc({ operation, error });
    else if (operation === 'upsert') this.registrations++;
  }

  /** On the heartbeat path: one increment. */
  renewed(instance: { readonly service: string }): void {
    this.heartbeats.add(this.services.of(instance.service));
  }

  close(): void {
    clearInterval(this.sampler);
    this.unsubscribe();
  }

  private sampleLeadership(): LeadershipState {
    const seen = this.options.store.leadership();
    const last = this.leadership;
    if (last !== null && (seen.leaderId !== last.leaderId || seen.isLeader !== last.isLeader)) this.leaderChanges++;
    this.leadership = seen;
    return seen;
  }

  private takeCensus(): Census {
    if (this.census !== null) return this.census;
    let virtualNodes = 0;
    let unhealthy = 0;
    const instances = new PairTally();
    const eligible = new Map<string, number>();
    for (const service of this.options.catalog.allServices()) {
      const label = this.services.of(service.name);
      let picks = eligible.get(label) ?? 0;
      for (const { instance, ejected } of service.entries.values()) {
        virtualNodes += instance.weight;
        if (instance.health === 'critical') unhealthy++;
        instances.add(label, instance.health);
        if (isEligible(instance) && !ejected) picks++;
      }
      eligible.set(label, picks);
    }
    this.census = { virtualNodes, unhealthy, instances, eligible };
    return this.census;
  }
}
