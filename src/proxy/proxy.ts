import type { Catalog } from '../core/catalog.ts';
import type { LoadSignals } from '../core/selection/strategy.ts';
import { Agents } from './agents.ts';
import { Breakers, type BreakerView } from './breaker.ts';
import { ProxyCounters, type AnsweredStatus } from './counters.ts';
import { Forwarder, type ForwardArgs, type ProxyTracing } from './forwarder.ts';
import { instanceKey } from '../core/keys.ts';
import { LoadTracker } from './load-tracker.ts';
import { OutlierDetector, type OutlierStats, type OutlierView } from './outlier.ts';
import type { ProxyPolicy } from './policy.ts';
import { PolicyBook } from './policy-book.ts';
import { RetryBudgets } from './retry-budget.ts';

export interface ProxyOptions {
  readonly catalog: Catalog;
  /** The policy of a service that has none stored, and the base a stored partial policy fills in. */
  readonly defaults: ProxyPolicy;
  /** Let instance names resolve to link-local and metadata addresses (MAXINE_ALLOW_LINK_LOCAL_REGISTRATION). */
  readonly allowLinkLocal: boolean;
  /** Epoch ms; for breakers, ejections, budgets and the latency EWMA. */
  readonly clock?: () => number;
  /** Uniform in [0, 1); for backoff jitter. */
  readonly random?: () => number;
  /** Stored policies that do not parse, and forwards that failed through a bug. */
  readonly onWarning?: (message: string) => void;
  /** Client spans for attempts, when tracing is on. */
  readonly tracing?: ProxyTracing | undefined;
}

/** One instance as the proxy sees it, for the actuator. */
export interface UpstreamView {
  readonly service: string;
  readonly id: string;
  readonly address: string;
  readonly inFlight: number;
  readonly ewmaLatencyMs: number;
  /** Attempts sent to it, and those that failed (connection failure, timeout, 5xx). */
  readonly requests: number;
  readonly failures: number;
  /** Out of this replica's picks by outlier detection. */
  readonly ejected: boolean;
  readonly breaker: BreakerView;
  readonly outlier: OutlierView;
}

export interface ProxyStats {
  readonly requests: number;
  readonly retries: number;
  readonly retriesDeniedByBudget: number;
  readonly clientAborts: number;
  readonly inFlight: number;
  readonly upstreamResponses: Readonly<Record<'2xx' | '3xx' | '4xx' | '5xx', number>>;
  readonly answered: Readonly<Record<AnsweredStatus, number>>;
  readonly breakersOpen: number;
  readonly outlier: OutlierStats;
}

const REMOVALS: ReadonlySet<string> = new Set(['service_deregistered', 'service_expired', 'service_evicted']);

const NO_OUTLIER_STATE: OutlierView = Object.freeze({ consecutiveFailures: 0, timesEjected: 0, ejected: false, ejectedUntil: null });

/**
 * The proxy data path for one replica's catalog: policies, load signals for
 * the strategies, breakers, outlier ejection, retry budgets and the
 * forwarder. Framework-free: a route hijacks the reply and hands over
 * node's request and response.
 */
export class Proxy {
  /** Live in-flight counts and latencies, for least-requests and p2c-ewma picks. */
  readonly load: LoadSignals;
  readonly policies: PolicyBook;
  private readonly tracker: LoadTracker;
  private readonly breakers: Breakers;
  private readonly outliers: OutlierDetector;
  private readonly budgets: RetryBudgets;
  private readonly counters = new ProxyCounters();
  private readonly agents: Agents;
  private readonly forwarder: Forwarder;
  private readonly unsubscribe: () => void;
  private readonly catalog: Catalog;

  constructor(options: ProxyOptions) {
    const { catalog } = options;
    const clock = options.clock ?? Date.now;
    const onWarning = options.onWarning ?? (() => undefined);
    this.catalog = catalog;
    this.tracker = new LoadTracker(clock);
    this.load = this.tracker;
    this.breakers = new Breakers(clock);
    this.outliers = new OutlierDetector(catalog, clock);
    this.budgets = new RetryBudgets(clock);
    this.agents = new Agents(options.allowLinkLocal);
    this.policies = new PolicyBook(catalog, options.defaults, onWarning);
    this.forwarder = new Forwarder({
      agents: this.agents,
      load: this.tracker,
      breakers: this.breakers,
      outliers: this.outliers,
      budgets: this.budgets,
      counters: this.counters,
      random: options.random ?? Math.random,
      tracing: options.tracing,
      onError: (error) =>
        onWarning(`A proxied request failed unexpectedly: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`),
    });
    this.unsubscribe = catalog.subscribe({
      event: (event) => {
        if (event.type !== 'config_changed' && REMOVALS.has(event.type)) this.forget(event.service, event.id);
      },
      reset: () => this.resync(),
    });
  }

  /** Forward one client request; resolves once the response is complete, answered or cut. */
  forward(args: ForwardArgs): Promise<void> {
    return this.forwarder.forward(args);
  }

  /** Every instance of `service` (or of every service) with the proxy's view of it. */
  upstreams(service?: string): UpstreamView[] {
    const views: UpstreamView[] = [];
    const services = service === undefined ? [...this.catalog.allServices()] : [this.catalog.service(service)];
    for (const state of services) {
      if (state === undefined) continue;
      for (const entry of state.entries.values()) {
        const { instance } = entry;
        const key = instanceKey(instance.service, instance.id);
        const load = this.tracker.get(instance.service, instance.id);
        views.push({
          service: instance.service,
          id: instance.id,
          address: instance.address,
          inFlight: load?.inflight ?? 0,
          ewmaLatencyMs: this.tracker.ewmaLatencyMs(instance),
          requests: load?.requests ?? 0,
          failures: load?.failures ?? 0,
          ejected: entry.ejected,
          breaker: this.breakers.view(key),
          outlier: this.outliers.view(key) ?? NO_OUTLIER_STATE,
        });
      }
    }
    return views;
  }

  stats(): ProxyStats {
    const c = this.counters;
    return {
      requests: c.requests,
      retries: c.retries,
      retriesDeniedByBudget: c.retriesDeniedByBudget,
      clientAborts: c.clientAborts,
      inFlight: this.tracker.totalInflight,
      upstreamResponses: { ...c.upstream },
      answered: { ...c.answered },
      breakersOpen: this.breakers.openNow,
      outlier: this.outliers.stats(),
    };
  }

  /** Stop following the catalog, lift this replica's ejections and close every upstream connection. */
  async close(): Promise<void> {
    this.unsubscribe();
    this.policies.close();
    this.outliers.stop();
    await this.agents.close();
  }

  private forget(service: string, id: string): void {
    this.tracker.forget(service, id);
    const key = instanceKey(service, id);
    this.breakers.forget(key);
    this.outliers.forget(key);
    if (this.catalog.service(service) === undefined) this.budgets.forget(service);
  }

  /** After a catalog reset: drop the state of instances that are gone. */
  private resync(): void {
    const present = (service: string, id: string): boolean => this.catalog.entry({ service, id }) !== undefined;
    this.tracker.prune(present);
    const live = new Set<string>();
    for (const state of this.catalog.allServices()) for (const id of state.entries.keys()) live.add(instanceKey(state.name, id));
    this.breakers.prune((key) => live.has(key));
    this.outliers.resync();
    this.budgets.prune((service) => this.catalog.service(service) !== undefined);
  }
}
