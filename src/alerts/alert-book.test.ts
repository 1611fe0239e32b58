import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AlertBook, type AlertBookOptions } from './alert-book.ts';
import { fingerprintOf, type AlertRule, type Condition } from './rules.ts';

const NEVER = (): boolean => false;

function book(overrides: Partial<AlertBookOptions> = {}): AlertBook {
  return new AlertBook({ forMs: 1000, maxActive: 100, recentSize: 10, ...overrides });
}

function low(service: string, eligible = 1): Condition {
  return {
    rule: 'service_instances_low',
    service,
    instanceId: null,
    replica: null,
    summary: `${service} has ${eligible} eligible`,
    details: { eligible, threshold: 2, registered: eligible },
  };
}

function evicted(service: string, id: string): Condition {
  return { rule: 'instance_evicted', service, instanceId: id, replica: null, summary: `${service}/${id} evicted`, details: { reason: 'HTTP 503' } };
}

function replicaCondition(rule: AlertRule, replica: string): Condition {
  return { rule, service: null, instanceId: null, replica, summary: `${rule} on ${replica}`, details: {} };
}

function kinds(transitions: ReturnType<AlertBook['update']>): string[] {
  return transitions.map((t) => `${t.kind}:${t.alert.rule}:${t.alert.service ?? t.alert.replica}`);
}

describe('AlertBook', () => {
  test('a condition is pending first and fires once it has held forMs', () => {
    const b = book({ forMs: 1000 });
    assert.deepEqual(b.update([low('orders')], 10_000, NEVER), []);
    const [pending] = [...b.activeAlerts()];
    assert.ok(pending);
    assert.equal(pending.pendingSince, 10_000);
    assert.equal(pending.firedAt, null);
    assert.equal(pending.severity, 'critical');
    assert.equal(pending.scope, 'cluster');
    assert.equal(pending.fingerprint, fingerprintOf(low('orders')));

    assert.deepEqual(b.update([low('orders')], 10_999, NEVER), [], 'not yet: 999 ms held');
    const fired = b.update([low('orders')], 11_000, NEVER);
    assert.deepEqual(kinds(fired), ['fired:service_instances_low:orders']);
    assert.equal(fired[0]!.alert, pending, 'the same alert object moves on');
    assert.equal(pending.firedAt, 11_000);
    assert.equal(pending.pendingSince, 10_000);

    assert.deepEqual(b.update([low('orders')], 12_000, NEVER), [], 'fires once');
    assert.equal(pending.firedAt, 11_000);
    assert.equal(b.fired.get('service_instances_low'), 1);
  });

  test('rules in FIRES_AT_ONCE fire on the evaluation that first sees them', () => {
    const b = book({ forMs: 60_000 });
    const transitions = b.update([evicted('orders', 'o1'), replicaCondition('leadership_lost', 'r1'), replicaCondition('no_leader', 'r1')], 5000, NEVER);
    assert.deepEqual(kinds(transitions), ['fired:instance_evicted:orders', 'fired:leadership_lost:r1']);
    assert.equal(transitions[0]!.alert.firedAt, 5000);
    assert.equal(transitions[0]!.alert.pendingSince, 5000);
    assert.equal(transitions[0]!.alert.severity, 'warning');
    assert.equal(transitions[1]!.alert.scope, 'replica');
    const noLeader = [...b.activeAlerts()].find((a) => a.rule === 'no_leader');
    assert.equal(noLeader?.firedAt, null, 'no_leader waits for forMs');
  });

  test('a pending alert whose condition goes away is dropped without a transition', () => {
    const b = book({ forMs: 1000 });
    b.update([low('orders')], 0, NEVER);
    const fingerprint = fingerprintOf(low('orders'));
    assert.ok(b.activeAlert(fingerprint));
    assert.deepEqual(b.update([], 500, NEVER), []);
    assert.equal(b.activeAlert(fingerprint), undefined);
    assert.deepEqual([...b.activeAlerts()], []);
    assert.deepEqual(b.resolvedAlerts(), []);
    assert.equal(b.resolvedAlert(fingerprint), undefined);
    assert.equal(b.fired.size, 0);

    // Seen again: pending from scratch, so forMs counts from the new sighting.
    assert.deepEqual(b.update([low('orders')], 600, NEVER), []);
    assert.equal(b.activeAlert(fingerprint)?.pendingSince, 600);
    assert.deepEqual(b.update([low('orders')], 1100, NEVER), [], 'the earlier sighting does not count');
    assert.deepEqual(kinds(b.update([low('orders')], 1600, NEVER)), ['fired:service_instances_low:orders']);
  });

  test('a firing alert resolves when its condition goes away and moves to the resolved list', () => {
    const b = book({ forMs: 0 });
    const [fired] = b.update([low('orders')], 100, NEVER);
    assert.equal(fired?.kind, 'fired');
    const transitions = b.update([], 200, NEVER);
    assert.deepEqual(kinds(transitions), ['resolved:service_instances_low:orders']);
    const alert = transitions[0]!.alert;
    assert.equal(alert, fired.alert);
    assert.equal(alert.firedAt, 100);
    assert.equal(alert.resolvedAt, 200);
    assert.deepEqual([...b.activeAlerts()], []);
    assert.equal(b.activeAlert(alert.fingerprint), undefined);
    assert.equal(b.resolvedAlert(alert.fingerprint), alert);
    assert.deepEqual(b.resolvedAlerts(), [alert]);
    assert.deepEqual(b.update([], 300, NEVER), [], 'resolved once');
  });

  test('resolved alerts: newest first, at most recentSize, the oldest forgotten', () => {
    const b = book({ forMs: 0, recentSize: 2 });
    for (const [i, service] of ['a', 'b', 'c'].entries()) {
      b.update([low(service)], i * 10, NEVER);
      b.update([], i * 10 + 5, NEVER);
    }
    assert.deepEqual(
      b.resolvedAlerts().map((a) => [a.service, a.resolvedAt]),
      [
        ['c', 25],
        ['b', 15],
      ],
    );
    assert.equal(b.resolvedAlert(fingerprintOf(low('a'))), undefined);
    assert.equal(b.resolvedAlert(fingerprintOf(low('b')))?.resolvedAt, 15);
  });

  test('resolvedAlert finds the newest resolution of a fingerprint that resolved twice', () => {
    const b = book({ forMs: 0 });
    b.update([low('a')], 0, NEVER);
    b.update([], 1, NEVER);
    b.update([low('a')], 2, NEVER);
    b.update([], 3, NEVER);
    assert.equal(b.resolvedAlert(fingerprintOf(low('a')))?.resolvedAt, 3);
    assert.equal(b.resolvedAlerts().length, 2);
    assert.equal(b.fired.get('service_instances_low'), 2);
  });

  test('alreadyFiring makes a pending alert fire at once', () => {
    const b = book({ forMs: 60_000 });
    const known = fingerprintOf(low('orders'));
    const asked: string[] = [];
    const transitions = b.update([low('orders'), low('billing')], 1000, (fingerprint) => {
      asked.push(fingerprint);
      return fingerprint === known;
    });
    assert.deepEqual(kinds(transitions), ['fired:service_instances_low:orders']);
    assert.equal(transitions[0]!.alert.firedAt, 1000);
    assert.deepEqual(asked, [known, fingerprintOf(low('billing'))]);
    assert.equal(b.activeAlert(fingerprintOf(low('billing')))?.firedAt, null);
  });

  test('maxActive: conditions beyond it are not tracked, counted per evaluation; a resolution makes room at once', () => {
    const b = book({ forMs: 0, maxActive: 2 });
    const transitions = b.update([low('a'), low('b'), low('c'), low('d')], 0, NEVER);
    assert.deepEqual(kinds(transitions), ['fired:service_instances_low:a', 'fired:service_instances_low:b']);
    assert.equal(b.untracked, 2);
    assert.deepEqual(
      [...b.activeAlerts()].map((a) => a.service),
      ['a', 'b'],
    );
    assert.equal(b.activeAlert(fingerprintOf(low('c'))), undefined);
    b.update([low('a'), low('b'), low('c')], 10, NEVER);
    assert.equal(b.untracked, 1, 'known alerts are kept; only c is left out now');
    // 'a' goes away: its resolution frees a slot for c in the same evaluation.
    assert.deepEqual(kinds(b.update([low('b'), low('c')], 20, NEVER)), ['resolved:service_instances_low:a', 'fired:service_instances_low:c']);
    assert.equal(b.untracked, 0);
  });

  test('fired counts alerts per rule', () => {
    const b = book({ forMs: 0 });
    b.update([low('a'), low('b'), evicted('a', 'a1'), replicaCondition('store_unreachable', 'r1')], 0, NEVER);
    b.update([low('a')], 1, NEVER);
    b.update([low('a'), evicted('a', 'a1')], 2, NEVER);
    assert.deepEqual(
      [...b.fired].sort(([x], [y]) => x.localeCompare(y)),
      [
        ['instance_evicted', 2],
        ['service_instances_low', 2],
        ['store_unreachable', 1],
      ],
    );
  });

  test('summary and details follow the condition while firing, without a new transition', () => {
    const b = book({ forMs: 0 });
    const [fired] = b.update([low('orders', 1)], 0, NEVER);
    assert.ok(fired);
    assert.equal(fired.alert.summary, 'orders has 1 eligible');
    assert.deepEqual(b.update([low('orders', 0)], 10, NEVER), []);
    assert.equal(fired.alert.summary, 'orders has 0 eligible');
    assert.deepEqual(fired.alert.details, { eligible: 0, threshold: 2, registered: 0 });
    assert.equal(fired.alert.firedAt, 0);
    assert.equal(fired.alert.fingerprint, fingerprintOf(low('orders', 1)), 'the figures are not part of the identity');
  });

  test('summary and details follow the condition while pending too', () => {
    const b = book({ forMs: 100 });
    b.update([low('orders', 1)], 0, NEVER);
    b.update([low('orders', 0)], 50, NEVER);
    const alert = b.activeAlert(fingerprintOf(low('orders')));
    assert.equal(alert?.summary, 'orders has 0 eligible');
    assert.equal(alert?.pendingSince, 0);
  });
});

describe('fingerprintOf', () => {
  const subject = { rule: 'instance_evicted', service: 'orders', instanceId: 'o1', replica: null } as const;

  test('stable: 24 lowercase hex characters, equal for equal subjects', () => {
    const a = fingerprintOf(subject);
    assert.match(a, /^[0-9a-f]{24}$/);
    assert.equal(fingerprintOf({ ...subject }), a);
    assert.equal(fingerprintOf(evicted('orders', 'o1')), a, 'summary and details are not part of it');
    // Pinned: receivers de-duplicate on it across versions and restarts, so it must not drift.
    assert.equal(a, '65c4f9d3fad08843d79b366c');
  });

  test('differs when the rule, service, instance or replica differs', () => {
    const base = fingerprintOf(subject);
    const others = [
      fingerprintOf({ ...subject, rule: 'service_instances_low' }),
      fingerprintOf({ ...subject, service: 'billing' }),
      fingerprintOf({ ...subject, instanceId: 'o2' }),
      fingerprintOf({ ...subject, instanceId: null }),
      fingerprintOf({ ...subject, replica: 'r1' }),
      fingerprintOf(replicaCondition('no_leader', 'r1')),
      fingerprintOf(replicaCondition('no_leader', 'r2')),
    ];
    assert.equal(new Set([base, ...others]).size, others.length + 1);
  });

  test('null and empty string are different subjects (no separator ambiguity)', () => {
    assert.notEqual(fingerprintOf({ ...subject, service: '' }), fingerprintOf({ ...subject, service: null }));
    assert.notEqual(fingerprintOf({ ...subject, service: 'a', instanceId: 'b\u0000c' }), fingerprintOf({ ...subject, service: 'a\u0000b', instanceId: 'c' }));
  });

  test('the book keeps separate alerts per replica for the same replica rule', () => {
    const b = book({ forMs: 0 });
    const transitions = b.update([replicaCondition('no_leader', 'r1'), replicaCondition('no_leader', 'r2')], 0, NEVER);
    assert.equal(transitions.length, 2);
    assert.notEqual(transitions[0]!.alert.fingerprint, transitions[1]!.alert.fingerprint);
    assert.equal(b.activeAlert(fingerprintOf(replicaCondition('no_leader', 'r2')))?.replica, 'r2');
  });
});
