import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { LeadershipState, StoreHealth } from '../store/store.ts';
import { ReplicaConditions, type ErrorRateRule, type RequestTotals } from './replica-conditions.ts';
import type { Condition } from './rules.ts';

/** What the store says, changed by the tests between evaluations. */
interface StoreView {
  leadership: LeadershipState;
  health: StoreHealth;
}

const OFF: ErrorRateRule = { percent: 0, windowMs: 60_000, minRequests: 20 };

function leading(leaderId: string | null, isLeader = false): LeadershipState {
  return { isLeader, leaderId, fencingToken: leaderId === null ? 0 : 1, observedAt: 0 };
}

function setup(options: { errorRate?: ErrorRateRule; settleMs?: number } = {}) {
  const view: StoreView = { leadership: leading('r0'), health: { reachable: true, error: null } };
  const totals: { current: RequestTotals; reads: number } = { current: { total: 0, errors: 0 }, reads: 0 };
  const conditions = new ReplicaConditions({
    store: { leadership: () => view.leadership, health: () => view.health },
    replica: 'r1',
    errorRate: options.errorRate ?? OFF,
    requestTotals: () => {
      totals.reads++;
      return totals.current;
    },
    settleMs: options.settleMs ?? 1000,
  });
  const collect = (now: number): Condition[] => {
    const into: Condition[] = [];
    conditions.collect(into, now);
    return into;
  };
  const rules = (now: number): string[] => collect(now).map((c) => c.rule);
  return { view, totals, collect, rules };
}

describe('ReplicaConditions: store_unreachable', () => {
  test('holds while health().reachable is false, with the error in the details', () => {
    const { view, collect, rules } = setup();
    assert.deepEqual(collect(0), []);
    view.health = { reachable: false, error: 'connect ECONNREFUSED 127.0.0.1:6379' };
    assert.deepEqual(collect(1000), [
      {
        rule: 'store_unreachable',
        service: null,
        instanceId: null,
        replica: 'r1',
        summary: 'replica r1 cannot reach its store (connect ECONNREFUSED 127.0.0.1:6379)',
        details: { error: 'connect ECONNREFUSED 127.0.0.1:6379' },
      },
    ]);
    assert.deepEqual(rules(2000), ['store_unreachable']);
    view.health = { reachable: true, error: null };
    assert.deepEqual(collect(3000), []);
  });

  test('an unreachable store without an error says so', () => {
    const { view, collect } = setup();
    view.health = { reachable: false, error: null };
    const [condition] = collect(0);
    assert.equal(condition?.summary, 'replica r1 cannot reach its store (no reason given)');
    assert.deepEqual(condition?.details, { error: null });
  });
});

describe('ReplicaConditions: no_leader', () => {
  test('holds while leaderId is null', () => {
    const { view, collect, rules } = setup();
    view.leadership = leading(null);
    assert.deepEqual(collect(0), [
      {
        rule: 'no_leader',
        service: null,
        instanceId: null,
        replica: 'r1',
        summary: 'replica r1 sees no leader: expiry, health checks and cluster alerts are stopped',
        details: {},
      },
    ]);
    assert.deepEqual(rules(5000), ['no_leader']);
    view.leadership = leading('r2');
    assert.deepEqual(rules(6000), [], 'a replica that never led has nothing to lose');
  });
});

describe('ReplicaConditions: leadership_lost', () => {
  test('fires on isLeader true -> false and stays until a leader has been known for settleMs after the loss', () => {
    const { view, collect, rules } = setup({ settleMs: 1000 });
    view.leadership = leading('r1', true);
    assert.deepEqual(collect(0), []);
    assert.deepEqual(collect(500), []);

    view.leadership = leading(null);
    assert.deepEqual(collect(1000), [
      {
        rule: 'no_leader',
        service: null,
        instanceId: null,
        replica: 'r1',
        summary: 'replica r1 sees no leader: expiry, health checks and cluster alerts are stopped',
        details: {},
      },
      {
        rule: 'leadership_lost',
        service: null,
        instanceId: null,
        replica: 'r1',
        summary: 'replica r1 lost the leadership; no leader yet',
        details: { lostAt: '1970-01-01T00:00:01.000Z', newLeader: null },
      },
    ]);
    assert.deepEqual(rules(1400), ['no_leader', 'leadership_lost'], 'no leader: the failover is under way however long it takes');

    view.leadership = leading('r2');
    const [lost] = collect(1500);
    assert.equal(lost?.summary, 'replica r1 lost the leadership to r2');
    assert.deepEqual(lost?.details, { lostAt: '1970-01-01T00:00:01.000Z', newLeader: 'r2' });
    assert.deepEqual(rules(2499), ['leadership_lost'], 'r2 known for 999 ms');
    assert.deepEqual(rules(2500), [], 'r2 known for settleMs: settled');
    assert.deepEqual(rules(9000), [], 'and stays settled');
  });

  test('a loss straight to another leader settles settleMs after the loss', () => {
    const { view, rules } = setup({ settleMs: 1000 });
    view.leadership = leading('r1', true);
    rules(0);
    view.leadership = leading('r2');
    assert.deepEqual(rules(5000), ['leadership_lost'], 'a leader known since before the loss does not settle it at once');
    assert.deepEqual(rules(5999), ['leadership_lost']);
    assert.deepEqual(rules(6000), []);
  });

  test('clears at once when this replica leads again', () => {
    const { view, rules } = setup({ settleMs: 60_000 });
    view.leadership = leading('r1', true);
    rules(0);
    view.leadership = leading(null);
    assert.deepEqual(rules(100), ['no_leader', 'leadership_lost']);
    view.leadership = leading('r1', true);
    assert.deepEqual(rules(200), []);
    view.leadership = leading('r3');
    const after = rules(300);
    assert.deepEqual(after, ['leadership_lost'], 'a second loss is a new loss');
  });

  test('a leader that disappears during the settling restarts it', () => {
    const { view, collect, rules } = setup({ settleMs: 1000 });
    view.leadership = leading('r1', true);
    rules(0);
    view.leadership = leading('r2');
    rules(1000);
    view.leadership = leading(null);
    assert.deepEqual(rules(1500), ['no_leader', 'leadership_lost']);
    view.leadership = leading('r3');
    assert.deepEqual(rules(2000), ['leadership_lost'], 'would have settled at 2000 had r2 stayed');
    assert.deepEqual(collect(2999)[0]?.details, { lostAt: '1970-01-01T00:00:01.000Z', newLeader: 'r3' });
    assert.deepEqual(rules(3000), []);
  });

  test('never fires on a replica that never led', () => {
    const { view, rules } = setup();
    view.leadership = leading('r2');
    assert.deepEqual(rules(0), []);
    view.leadership = leading('r3');
    assert.deepEqual(rules(100), []);
  });
});

describe('ReplicaConditions: error_rate_high', () => {
  const RULE: ErrorRateRule = { percent: 10, windowMs: 30_000, minRequests: 20 };

  test('fires at the threshold percent, with the figures in the details', () => {
    const { totals, collect } = setup({ errorRate: RULE });
    totals.current = { total: 1000, errors: 50 };
    assert.deepEqual(collect(0), [], 'the first sample is only a baseline');
    totals.current = { total: 1100, errors: 60 };
    assert.deepEqual(collect(10_000), [
      {
        rule: 'error_rate_high',
        service: null,
        instanceId: null,
        replica: 'r1',
        summary: 'replica r1 answered 10% of 100 requests with a 5xx status (threshold 10%)',
        details: { ratePercent: 10, thresholdPercent: 10, answered: 100, failed: 10, windowSeconds: 10 },
      },
    ]);
  });

  test('below the threshold percent: nothing', () => {
    const { totals, collect } = setup({ errorRate: RULE });
    totals.current = { total: 1000, errors: 50 };
    collect(0);
    totals.current = { total: 1100, errors: 59 };
    assert.deepEqual(collect(10_000), []);
  });

  test('needs minRequests answers in the window', () => {
    const { totals, collect, rules } = setup({ errorRate: RULE });
    collect(0);
    totals.current = { total: 19, errors: 19 };
    assert.deepEqual(rules(1000), [], '19 answers, all failed: too few to mean anything');
    totals.current = { total: 20, errors: 19 };
    const [condition] = collect(2000);
    assert.deepEqual(condition?.details, { ratePercent: 95, thresholdPercent: 10, answered: 20, failed: 19, windowSeconds: 2 });
  });

  test('the rate is rounded to one decimal', () => {
    const { totals, collect } = setup({ errorRate: { percent: 30, windowMs: 60_000, minRequests: 3 } });
    collect(0);
    totals.current = { total: 3, errors: 1 };
    const [condition] = collect(1000);
    assert.equal(condition?.details['ratePercent'], 33.3);
    assert.equal(condition?.summary, 'replica r1 answered 33.3% of 3 requests with a 5xx status (threshold 30%)');
  });

  test('the baseline moves with the window: old errors age out', () => {
    const { totals, collect, rules } = setup({ errorRate: RULE });
    const at = (now: number, total: number, errors: number) => {
      totals.current = { total, errors };
      return collect(now);
    };
    at(0, 0, 0);
    assert.deepEqual(at(10_000, 100, 50)[0]?.details, { ratePercent: 50, thresholdPercent: 10, answered: 100, failed: 50, windowSeconds: 10 });
    at(20_000, 200, 50);
    // Window [0, 30000]: the baseline is still the sample at 0.
    assert.deepEqual(at(30_000, 300, 50)[0]?.details, { ratePercent: 16.7, thresholdPercent: 10, answered: 300, failed: 50, windowSeconds: 30 });
    // Window [10000, 40000]: the sample at 10000 is the baseline; the 50 errors before it are out.
    totals.current = { total: 400, errors: 50 };
    assert.deepEqual(rules(40_000), []);
    // Errors again, measured from the sample at 20000 now.
    assert.deepEqual(at(50_000, 500, 80)[0]?.details, { ratePercent: 10, thresholdPercent: 10, answered: 300, failed: 30, windowSeconds: 30 });
  });

  test('with irregular samples the baseline is the newest sample at or before the window start', () => {
    const { totals, collect } = setup({ errorRate: RULE });
    const at = (now: number, total: number, errors: number) => {
      totals.current = { total, errors };
      return collect(now);
    };
    at(0, 0, 0);
    at(5000, 100, 0);
    at(25_000, 200, 20);
    // Window start 10000: the sample at 5000 covers it (the one at 25000 would cover only 15 s).
    assert.deepEqual(at(40_000, 300, 40)[0]?.details, { ratePercent: 20, thresholdPercent: 10, answered: 200, failed: 40, windowSeconds: 35 });
    // Window start 25000: the sample taken exactly there is the baseline; 5000 is dropped.
    assert.deepEqual(at(55_000, 400, 40)[0]?.details, { ratePercent: 10, thresholdPercent: 10, answered: 200, failed: 20, windowSeconds: 30 });
  });

  test('percent 0 turns the rule off: no samples are even taken', () => {
    const { totals, rules } = setup({ errorRate: { percent: 0, windowMs: 1000, minRequests: 1 } });
    rules(0);
    totals.current = { total: 1000, errors: 1000 };
    assert.deepEqual(rules(500), []);
    assert.equal(totals.reads, 0);
  });

  test('the totals are read once per evaluation', () => {
    const { totals, rules } = setup({ errorRate: RULE });
    rules(0);
    rules(1000);
    assert.equal(totals.reads, 2);
  });
});

describe('ReplicaConditions: all at once', () => {
  test('leadership first, then the store, then the error rate', () => {
    const { view, totals, rules } = setup({ errorRate: { percent: 50, windowMs: 10_000, minRequests: 1 } });
    view.leadership = leading('r1', true);
    rules(0);
    view.leadership = leading(null);
    view.health = { reachable: false, error: 'timeout' };
    totals.current = { total: 10, errors: 10 };
    assert.deepEqual(rules(1000), ['no_leader', 'leadership_lost', 'store_unreachable', 'error_rate_high']);
  });
});
