import type { Catalog, CatalogListener } from '../core/catalog.ts';
import type { RegistryEvent } from '../core/events.ts';
import { sameCheck, type Health, type HealthCheck, type Instance, type InstanceKey } from '../core/instance.ts';
import type { HealthChange } from '../registry/registry.ts';
import { FencedError, type LeadershipState } from '../store/store.ts';
import { effectiveCheck, type CheckDefaults } from './check-spec.ts';
import { DueHeap } from './due-heap.ts';
import { probeTarget, type ProbeOutcome, type ProbeResult, type ProbeTarget } from './probe.ts';
import { WorkerProber, type WorkerProberOptions } from './worker-prober.ts';

/** What the checker needs from the registry (a `Registry` is one); narrow so tests can wrap it. */
export interface HealthWriter {
  leadership(): LeadershipState;
  setHealth(seen: Instance, change: HealthChange, fencingToken: number): Promise<Instance | null>;
  evict(key: InstanceKey, fencingToken: number): Promise<number | null>;
}

export interface HealthCheckerOptions {
  readonly catalog: Catalog;
  readonly registry: HealthWriter;
  readonly defaults: CheckDefaults;
  /** MAXINE_ALLOW_LINK_LOCAL_INSTANCES. */
  readonly allowLinkLocal: boolean;
  /** Epoch ms; the schedule's timer itself runs on real time. */
  readonly clock?: () => number;
  /** [0, 1): spreads first probes and adds jitter. */
  readonly random?: () => number;
  /** A write or eviction failed (not a lost leadership, which just stops the checker); the next probe tries again. */
  readonly onError?: (error: unknown, instance: Instance) => void;
  /** Probe connections: see ProberOptions. */
  readonly keepAliveTimeoutMs?: number;
  readonly maxSockets?: number;
}

/** One instance's check as /api/actuator/upstreams shows it (leader only). */
export interface CheckState {
  readonly service: string;
  readonly id: string;
  readonly type: HealthCheck['type'];
  /** The probed URL (`tcp://host:port` for TCP). */
  readonly target: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly rise: number;
  readonly fall: number;
  /** The verdict in the catalog (shared by every replica). */
  readonly health: Health;
  readonly lastProbeAt: number | null;
  readonly lastResult: ProbeResult | null;
  readonly lastReason: string;
  readonly lastDurationMs: number | null;
  readonly consecutivePasses: number;
  readonly consecutiveWarnings: number;
  readonly consecutiveFailures: number;
  /** Null while a probe is in flight. */
  readonly nextProbeAt: number | null;
  readonly inFlight: boolean;
}

export interface HealthCheckerStats {
  /** This replica leads and runs the checks. */
  readonly leading: boolean;
  /** Instances with a check being followed. */
  readonly targets: number;
  /** Waiting for their next probe (targets minus those in flight). */
  readonly scheduled: number;
  readonly inFlight: number;
  /** Most probes ever in flight at once (never above `concurrency`). */
  readonly maxInFlight: number;
  /** How late the most overdue waiting probe is, ms (0 when none is overdue): above 0 for long means `concurrency` is too low. */
  readonly lagMs: number;
  readonly probes: number;
  readonly passes: number;
  readonly warnings: number;
  readonly failures: number;
  /** Probe results thrown away (leadership lost, instance changed or gone meanwhile). */
  readonly dropped: number;
  /** Health writes sent to the registry (verdicts, promotions, reason updates, cleared verdicts). */
  readonly writes: number;
  /** Writes the registry refused because the instance had changed meanwhile (re-judged on the next probe). */
  readonly conflicts: number;
  readonly writeErrors: number;
  readonly evictions: number;
  /** Probe connections open now and opened since the start. */
  readonly sockets: number;
  readonly connects: number;
}

/** Even with nothing due the timer wakes this often, to notice leadership gained (leadership() is no I/O). */
const LEADERSHIP_POLL_MS = 1000;

/** The reason written when an instance that has no check any more still carries an old verdict. */
export const NO_CHECK_REASON = 'no active health check';

interface Target {
  readonly service: string;
  readonly id: string;
  instance: Instance;
  check: HealthCheck;
  probe: ProbeTarget;
  /** Epoch ms of the next probe; meaningful while queued. */
  due: number;
  heapIndex: number;
  inFlight: boolean;
  /** Bumped when the check or address changes: a probe of the old one is not judged. */
  generation: number;
  removed: boolean;
  /** A health write or eviction for this instance is in flight: no second one until it settles. */
  writing: boolean;
  passes: number;
  warns: number;
  fails: number;
  /** How many results in a row had exactly `streakReason` (reason-only updates wait for `fall` of them). */
  streakReason: string;
  streakCount: number;
  lastAt: number | null;
  lastResult: ProbeResult | null;
  lastReason: string;
  lastDurationMs: number | null;
}

/**
 * Active health checks. Only the leader probes, and every verdict is written
 * to the store (fenced by the leader's token), so all replicas see the same
 * health through their catalogs; the counters behind the verdicts live in
 * the leader's memory and start over when leadership moves.
 *
 * Scheduling: one min-heap of due times and ONE timer, armed for the
 * earliest due probe (and at least every second to follow leadership). A
 * new instance's first probe is at a random point within its interval, so
 * thousands registered at once spread out; after a probe that started at t
 * the next is due at t + intervalMs + random(0..jitterMs). At most
 * `defaults.concurrency` probes are in flight; due probes beyond that wait
 * in due order and start as others finish (concurrently, never one after
 * another). Catalog events keep the heap in step: O(log n) per change, no
 * sweep over all instances except when leadership is gained or the catalog
 * is reset.
 *
 * The verdict, given the health the catalog has now. Each probe result
 * extends its own streak and ends the other two (`pass`, `warn` = HTTP 429,
 * `fail`):
 *
 *   passing  -> critical   after `fall` fails in a row
 *   passing  -> warning    after `fall` warns in a row
 *   warning  -> critical   after `fall` fails in a row
 *   warning  -> passing    after `rise` passes in a row
 *   critical -> passing    after `rise` passes in a row
 *   critical -> warning    after `rise` warns in a row (it answers again, throttled: it has to prove that `rise` times, like a pass)
 *
 * Anything else changes nothing: a flapping instance (results alternating
 * before a streak completes) keeps its health. A `starting` instance is
 * promoted to `up` by its first passing probe (no `rise` needed) in the same
 * write; its health follows the rules above. Heartbeats and
 * re-registrations never touch health (Registry keeps it), so a critical
 * instance comes back only through `rise` passing probes. While the verdict
 * stands, the reason is rewritten only when `fall` results in a row gave the
 * same new reason (e.g. "HTTP 503" became "connection refused"): identical
 * failures write nothing. An instance critical for longer than its check's
 * `deregisterCriticalAfterMs` (since healthChangedAt) is evicted. Instances
 * in maintenance or draining are probed like any other.
 *
 * An instance whose check went away (re-registered without one, global
 * checks off) but still carries a warning/critical verdict is set back to
 * passing ("no active health check"): nothing would ever judge it again.
 */
export class HealthChecker {
  private readonly catalog: Catalog;
  private readonly registry: HealthWriter;
  private readonly defaults: CheckDefaults;
  private readonly clock: () => number;
  private readonly random: () => number;
  private readonly onError: (error: unknown, instance: Instance) => void;
  private prober: WorkerProber | undefined;
  private readonly proberOptions: WorkerProberOptions;
  private readonly heap = new DueHeap<Target>();
  private readonly targets = new Map<string, Map<string, Target>>();
  private readonly pending = new Set<Promise<unknown>>();
  /** Instances being set back to passing because they have no check. */
  private readonly clearing = new Set<Instance>();
  private unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private started = false;
  private leading = false;
  private token = 0;
  /** A token the store refused: leadership is not resumed until leadership() shows another one. */
  private fencedToken: number | null = null;
  /** Bumped whenever leadership is gained or lost: probes and writes of an older epoch are not acted on. */
  private epoch = 0;
  private targetCount = 0;
  private inFlight = 0;
  private readonly counters = {
    maxInFlight: 0,
    probes: 0,
    passes: 0,
    warnings: 0,
    failures: 0,
    dropped: 0,
    writes: 0,
    conflicts: 0,
    writeErrors: 0,
    evictions: 0,
  };

  constructor(options: HealthCheckerOptions) {
    this.catalog = options.catalog;
    this.registry = options.registry;
    this.defaults = options.defaults;
    this.clock = options.clock ?? Date.now;
    this.random = options.random ?? Math.random;
    this.onError = options.onError ?? (() => undefined);
    this.proberOptions = {
      allowLinkLocal: options.allowLinkLocal,
      keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? Math.min(60_000, Math.max(5_000, options.defaults.intervalMs + options.defaults.jitterMs + 4_000)),
      ...(options.maxSockets === undefined ? {} : { maxSockets: options.maxSockets }),
    };
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.prober = new WorkerProber(this.proberOptions);
    const listener: CatalogListener = {
      event: (event) => this.onEvent(event),
      reset: () => {
        if (this.leading) this.reconcile();
      },
    };
    this.unsubscribe = this.catalog.subscribe(listener);
    this.tick();
  }

  /** Stops probing; in-flight probes are cut short and their results dropped. Resolves once they and any writes have settled. */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.abandon();
    await this.prober?.close();
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  /** Per-instance check state, ordered by service and id; empty on a replica that does not lead. */
  view(service?: string): CheckState[] {
    const out: CheckState[] = [];
    const services = service === undefined ? [...this.targets.keys()].sort() : this.targets.has(service) ? [service] : [];
    for (const name of services) {
      const byId = this.targets.get(name)!;
      for (const id of [...byId.keys()].sort()) out.push(this.stateOf(byId.get(id)!));
    }
    return out;
  }

  stats(): HealthCheckerStats {
    const top = this.heap.peek();
    const prober = this.prober?.stats() ?? { sockets: 0, connects: 0 };
    return {
      leading: this.leading,
      targets: this.targetCount,
      scheduled: this.heap.size,
      inFlight: this.inFlight,
      lagMs: top === undefined ? 0 : Math.max(0, this.clock() - top.due),
      ...this.counters,
      sockets: prober.sockets,
      connects: prober.connects,
    };
  }

  // ---- leadership -------------------------------------------------------

  /** Follows leadership; true while this replica leads under the token it started with. */
  private confirmLeadership(): boolean {
    const leadership = this.registry.leadership();
    const leads = leadership.isLeader && leadership.fencingToken !== this.fencedToken;
    if (!leads) {
      if (this.leading) this.abandon();
      return false;
    }
    if (this.leading && leadership.fencingToken === this.token) return true;
    // Gained leadership, or a new term began under us: the schedule is rebuilt from the catalog.
    if (this.leading) this.abandon();
    this.fencedToken = null;
    this.leading = true;
    this.token = leadership.fencingToken;
    this.epoch++;
    this.reconcile();
    return true;
  }

  private abandon(): void {
    this.leading = false;
    this.epoch++;
    this.heap.clear();
    for (const byId of this.targets.values()) for (const target of byId.values()) target.removed = true;
    this.targets.clear();
    this.targetCount = 0;
    this.clearing.clear();
  }

  private fenced(token: number): void {
    if (this.fencedToken === null || token > this.fencedToken) this.fencedToken = token;
    if (this.leading && this.token === token) this.abandon();
    this.arm();
  }

  // ---- following the catalog -------------------------------------------

  private onEvent(event: RegistryEvent): void {
    if (!this.leading || event.type === 'config_changed') return;
    switch (event.type) {
      case 'service_registered':
      case 'service_updated':
      case 'health_changed':
        this.track(event.instance);
        break;
      case 'service_deregistered':
      case 'service_expired':
      case 'service_evicted':
        this.untrack(event.service, event.id);
        break;
    }
    this.arm();
  }

  /** Bring the schedule in line with the whole catalog (leadership gained, or the catalog was reset). */
  private reconcile(): void {
    for (const [service, byId] of [...this.targets]) {
      for (const id of [...byId.keys()]) if (this.catalog.get({ service, id }) === undefined) this.untrack(service, id);
    }
    for (const view of this.catalog.allServices()) for (const entry of view.entries.values()) this.track(entry.instance);
    this.arm();
  }

  private track(instance: Instance): void {
    const check = effectiveCheck(instance, this.defaults);
    const byId = this.targets.get(instance.service);
    const existing = byId?.get(instance.id);
    if (check === null) {
      if (existing !== undefined) this.untrack(instance.service, instance.id);
      if (instance.health !== 'passing') this.clearVerdict(instance);
      return;
    }
    if (existing !== undefined && existing.instance.address === instance.address && sameCheck(existing.check, check)) {
      existing.instance = instance;
      return;
    }
    let probe: ProbeTarget;
    try {
      probe = probeTarget(instance, check);
    } catch (error) {
      if (existing !== undefined) this.untrack(instance.service, instance.id);
      this.onError(error, instance);
      return;
    }
    const due = this.clock() + Math.floor(this.random() * check.intervalMs);
    if (existing !== undefined) {
      // The check or address changed: a fresh start, counters and all (the catalog keeps its verdict).
      existing.instance = instance;
      existing.check = check;
      existing.probe = probe;
      existing.generation++;
      resetCounters(existing);
      existing.due = due;
      if (!existing.inFlight) this.heap.put(existing);
      return;
    }
    const target: Target = {
      service: instance.service,
      id: instance.id,
      instance,
      check,
      probe,
      due,
      heapIndex: -1,
      inFlight: false,
      generation: 0,
      removed: false,
      writing: false,
      passes: 0,
      warns: 0,
      fails: 0,
      streakReason: '',
      streakCount: 0,
      lastAt: null,
      lastResult: null,
      lastReason: '',
      lastDurationMs: null,
    };
    if (byId === undefined) this.targets.set(instance.service, new Map([[instance.id, target]]));
    else byId.set(instance.id, target);
    this.targetCount++;
    this.heap.put(target);
  }

  private untrack(service: string, id: string): void {
    const byId = this.targets.get(service);
    const target = byId?.get(id);
    if (byId === undefined || target === undefined) return;
    target.removed = true;
    this.heap.remove(target);
    byId.delete(id);
    if (byId.size === 0) this.targets.delete(service);
    this.targetCount--;
  }

  // ---- the schedule ----------------------------------------------------

  private arm(): void {
    if (!this.started) return;
    const now = this.clock();
    let at = now + LEADERSHIP_POLL_MS;
    const top = this.heap.peek();
    // With every probe slot taken, a finishing probe starts the next; the timer only polls.
    if (this.leading && top !== undefined && this.inFlight < this.defaults.concurrency) at = Math.min(at, top.due);
    if (this.timer !== undefined && this.timerAt <= at) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.tick(), Math.max(0, at - now));
    this.timer.unref();
  }

  private tick(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    if (!this.started) return;
    if (this.confirmLeadership()) this.pump();
    this.arm();
  }

  /** Start every due probe there is a slot for. */
  private pump(): void {
    const now = this.clock();
    const concurrency = this.defaults.concurrency;
    while (this.inFlight < concurrency) {
      const top = this.heap.peek();
      if (top === undefined || top.due > now) break;
      this.heap.pop();
      this.launch(top, now);
    }
  }

  private launch(target: Target, startedAt: number): void {
    target.inFlight = true;
    this.inFlight++;
    if (this.inFlight > this.counters.maxInFlight) this.counters.maxInFlight = this.inFlight;
    this.counters.probes++;
    const epoch = this.epoch;
    const generation = target.generation;
    const done = this.prober!
      .probe(target.probe, target.check)
      .then(
        (outcome) => {
          this.inFlight--;
          target.inFlight = false;
          this.finish(target, epoch, generation, startedAt, outcome);
        },
        // probe() reports failures as outcomes; anything thrown is a bug, but must not stop the schedule.
        (error: unknown) => {
          this.inFlight--;
          target.inFlight = false;
          this.onError(error, target.instance);
          if (!target.removed && epoch === this.epoch) this.requeue(target, startedAt);
        },
      )
      .catch((error: unknown) => this.onError(error, target.instance))
      .finally(() => {
        this.pending.delete(done);
        if (this.started && this.leading) {
          this.pump();
          this.arm();
        }
      });
    this.pending.add(done);
  }

  private requeue(target: Target, startedAt: number): void {
    const { intervalMs, jitterMs } = target.check;
    target.due = Math.max(this.clock(), startedAt + intervalMs + Math.floor(this.random() * (jitterMs + 1)));
    this.heap.put(target);
  }

  private finish(target: Target, epoch: number, generation: number, startedAt: number, outcome: ProbeOutcome): void {
    if (target.removed || epoch !== this.epoch || !this.started) {
      this.counters.dropped++;
      return;
    }
    if (generation !== target.generation) {
      // Its check changed while this probe ran: the new check's first probe is already set (target.due).
      this.counters.dropped++;
      this.heap.put(target);
      return;
    }
    // Leadership may have gone while the probe ran: then it is not judged (and the schedule is gone).
    if (!this.confirmLeadership() || epoch !== this.epoch) {
      this.counters.dropped++;
      return;
    }
    target.lastAt = startedAt;
    target.lastResult = outcome.result;
    target.lastReason = outcome.reason;
    target.lastDurationMs = outcome.durationMs;
    this.requeue(target, startedAt);
    this.judge(target, outcome);
  }

  // ---- verdicts --------------------------------------------------------

  private judge(target: Target, outcome: ProbeOutcome): void {
    switch (outcome.result) {
      case 'pass':
        this.counters.passes++;
        target.passes++;
        target.warns = 0;
        target.fails = 0;
        break;
      case 'warn':
        this.counters.warnings++;
        target.warns++;
        target.passes = 0;
        target.fails = 0;
        break;
      case 'fail':
        this.counters.failures++;
        target.fails++;
        target.passes = 0;
        target.warns = 0;
        break;
    }
    if (outcome.reason === target.streakReason) target.streakCount++;
    else {
      target.streakReason = outcome.reason;
      target.streakCount = 1;
    }

    const current = this.catalog.get(target);
    if (current === undefined || target.writing) return;
    const { rise, fall } = target.check;
    const verdict = nextHealth(current.health, target, rise, fall);
    const promote = outcome.result === 'pass' && current.status === 'starting';
    const reasonUpdate =
      verdict === current.health &&
      current.health !== 'passing' &&
      outcome.result === (current.health === 'critical' ? 'fail' : 'warn') &&
      target.streakCount >= fall &&
      outcome.reason !== current.healthReason;
    if (verdict !== current.health || promote || reasonUpdate) {
      const reason = verdict !== current.health || reasonUpdate ? outcome.reason : current.healthReason;
      this.write(target, current, { health: verdict, reason, promote });
      return;
    }
    const after = target.check.deregisterCriticalAfterMs;
    if (current.health === 'critical' && after > 0 && this.clock() - current.healthChangedAt >= after) this.evict(target, current);
  }

  private write(target: Target, seen: Instance, change: HealthChange): void {
    target.writing = true;
    this.counters.writes++;
    this.leaderWrite(seen, () => this.registry.setHealth(seen, change, this.token), (stored) => {
      if (stored === null) this.counters.conflicts++;
    }).finally(() => {
      target.writing = false;
    });
  }

  private evict(target: Target, seen: Instance): void {
    target.writing = true;
    this.counters.evictions++;
    this.leaderWrite(seen, () => this.registry.evict(seen, this.token), () => undefined).finally(() => {
      target.writing = false;
    });
  }

  /** An instance without a check keeps no verdict: set it back to passing (once). */
  private clearVerdict(instance: Instance): void {
    if (this.clearing.has(instance)) return;
    this.clearing.add(instance);
    this.counters.writes++;
    this.leaderWrite(instance, () => this.registry.setHealth(instance, { health: 'passing', reason: NO_CHECK_REASON, promote: false }, this.token), (stored) => {
      if (stored === null) this.counters.conflicts++;
    }).finally(() => this.clearing.delete(instance));
  }

  private leaderWrite<T>(instance: Instance, operation: () => Promise<T>, then: (value: T) => void): Promise<void> {
    const token = this.token;
    let promise: Promise<unknown>;
    try {
      promise = operation();
    } catch (error) {
      promise = Promise.reject(error);
    }
    const done = promise.then(
      (value) => then(value as T),
      (error: unknown) => {
        if (error instanceof FencedError || (error instanceof Error && error.cause instanceof FencedError)) {
          this.fenced(token);
          return;
        }
        this.counters.writeErrors++;
        this.onError(error, instance);
      },
    );
    const tracked = done.finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
    return tracked;
  }

  private stateOf(target: Target): CheckState {
    return {
      service: target.service,
      id: target.id,
      type: target.check.type,
      target: target.probe.url,
      intervalMs: target.check.intervalMs,
      timeoutMs: target.check.timeoutMs,
      rise: target.check.rise,
      fall: target.check.fall,
      health: this.catalog.get(target)?.health ?? target.instance.health,
      lastProbeAt: target.lastAt,
      lastResult: target.lastResult,
      lastReason: target.lastReason,
      lastDurationMs: target.lastDurationMs,
      consecutivePasses: target.passes,
      consecutiveWarnings: target.warns,
      consecutiveFailures: target.fails,
      nextProbeAt: target.inFlight ? null : target.due,
      inFlight: target.inFlight,
    };
  }
}

/** The rules in HealthChecker's comment: the health after the latest result, given the catalog's. */
export function nextHealth(current: Health, streaks: { passes: number; warns: number; fails: number }, rise: number, fall: number): Health {
  switch (current) {
    case 'passing':
      if (streaks.fails >= fall) return 'critical';
      if (streaks.warns >= fall) return 'warning';
      return 'passing';
    case 'warning':
      if (streaks.fails >= fall) return 'critical';
      if (streaks.passes >= rise) return 'passing';
      return 'warning';
    case 'critical':
      if (streaks.passes >= rise) return 'passing';
      if (streaks.warns >= rise) return 'warning';
      return 'critical';
  }
}

function resetCounters(target: Target): void {
  target.passes = 0;
  target.warns = 0;
  target.fails = 0;
  target.streakReason = '';
  target.streakCount = 0;
}
