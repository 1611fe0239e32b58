import type { RegistryStore } from '../store/store.ts';
import type { Condition } from './rules.ts';

export interface ErrorRateRule {
  /** 5xx answers as a share of all answers, in percent; 0 turns the rule off. */
  readonly percent: number;
  readonly windowMs: number;
  /** Below this many answers in the window the rate means nothing. */
  readonly minRequests: number;
}

export interface RequestTotals {
  /** Requests answered by a route since start. */
  readonly total: number;
  /** Of which answered with a 5xx status. */
  readonly errors: number;
}

export interface ReplicaConditionsOptions {
  readonly store: Pick<RegistryStore, 'leadership' | 'health'>;
  /** This replica's instance id: the subject of every condition here. */
  readonly replica: string;
  readonly errorRate: ErrorRateRule;
  /** Read once per evaluation (a sum over routes), never per request. */
  readonly requestTotals: () => RequestTotals;
  /** How long a new leader must have been known before a lost leadership counts as settled. */
  readonly settleMs: number;
}

interface Sample extends RequestTotals {
  readonly at: number;
}

/**
 * The replica rules' conditions: what this replica sees of the store and
 * the leadership, and the error rate of its own answers, sampled once per
 * evaluation.
 */
export class ReplicaConditions {
  private wasLeader = false;
  private lostAt: number | null = null;
  private leaderKnownSince: number | null = null;
  private readonly samples: Sample[] = [];

  constructor(private readonly options: ReplicaConditionsOptions) {}

  collect(into: Condition[], now: number): void {
    this.leadership(into, now);
    const health = this.options.store.health();
    if (!health.reachable) {
      into.push(this.condition('store_unreachable', `replica ${this.options.replica} cannot reach its store (${health.error ?? 'no reason given'})`, { error: health.error }));
    }
    this.errorRate(into, now);
  }

  private leadership(into: Condition[], now: number): void {
    const { isLeader, leaderId } = this.options.store.leadership();
    if (leaderId === null) this.leaderKnownSince = null;
    else this.leaderKnownSince ??= now;
    if (isLeader) this.lostAt = null;
    else if (this.wasLeader) this.lostAt = now;
    this.wasLeader = isLeader;
    const { replica } = this.options;
    if (leaderId === null) into.push(this.condition('no_leader', `replica ${replica} sees no leader: expiry, health checks and cluster alerts are stopped`, {}));
    if (this.lostAt === null) return;
    // Settled: a leader has been known for settleMs since the loss. Until then the failover is under way.
    const settledAt = this.leaderKnownSince === null ? null : Math.max(this.leaderKnownSince, this.lostAt) + this.options.settleMs;
    if (settledAt !== null && now >= settledAt) {
      this.lostAt = null;
      return;
    }
    into.push(
      this.condition('leadership_lost', `replica ${replica} lost the leadership${leaderId === null ? '; no leader yet' : ` to ${leaderId}`}`, {
        lostAt: new Date(this.lostAt).toISOString(),
        newLeader: leaderId,
      }),
    );
  }

  private errorRate(into: Condition[], now: number): void {
    const { percent, windowMs, minRequests } = this.options.errorRate;
    if (percent === 0) return;
    const { total, errors } = this.options.requestTotals();
    this.samples.push({ at: now, total, errors });
    // The oldest sample kept is the window's start: drop those before it while the next is still inside.
    while (this.samples.length > 2 && this.samples[1]!.at <= now - windowMs) this.samples.shift();
    const first = this.samples[0]!;
    const answered = total - first.total;
    const failed = errors - first.errors;
    if (answered < minRequests || failed * 100 < percent * answered) return;
    const rate = Math.round((failed * 1000) / answered) / 10;
    into.push(
      this.condition('error_rate_high', `replica ${this.options.replica} answered ${rate}% of ${answered} requests with a 5xx status (threshold ${percent}%)`, {
        ratePercent: rate,
        thresholdPercent: percent,
        answered,
        failed,
        windowSeconds: Math.round((now - first.at) / 1000),
      }),
    );
  }

  private condition(rule: Condition['rule'], summary: string, details: Condition['details']): Condition {
    return { rule, service: null, instanceId: null, replica: this.options.replica, summary, details };
  }
}
