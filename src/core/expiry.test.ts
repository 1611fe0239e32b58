import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ExpiryQueue, type Lease } from './expiry.ts';

const lease = (deadline: number): Lease & { name: string } => ({ deadline, queuedAt: 0, live: true, name: String(deadline) });

test('takes leases in deadline order and only when due', () => {
  const q = new ExpiryQueue<ReturnType<typeof lease>>();
  for (const d of [50, 10, 40, 20, 30]) q.schedule(lease(d));
  assert.deepEqual(q.takeExpired(5), []);
  assert.deepEqual(q.takeExpired(25).map((l) => l.deadline), [10, 20]);
  assert.deepEqual(q.takeExpired(100).map((l) => l.deadline), [30, 40, 50]);
  assert.equal(q.queued, 0);
});

test('a renewal moves the deadline without heap work and is honoured lazily', () => {
  const q = new ExpiryQueue<ReturnType<typeof lease>>();
  const l = lease(10);
  q.schedule(l);
  l.deadline = 100;
  assert.deepEqual(q.takeExpired(50), []);
  assert.equal(q.queued, 1, 're-queued at its new deadline');
  assert.deepEqual(q.takeExpired(99), [], 'not before its new deadline');
  assert.deepEqual(q.takeExpired(100), [l]);
});

test('a shortened deadline is rescheduled and the stale copy ignored', () => {
  const q = new ExpiryQueue<ReturnType<typeof lease>>();
  const l = lease(100);
  q.schedule(l);
  l.deadline = 20;
  q.schedule(l);
  assert.deepEqual(q.takeExpired(20), [l]);
  assert.deepEqual(q.takeExpired(1000), [], 'the copy queued at 100 is stale');
});

test('dead leases are dropped', () => {
  const q = new ExpiryQueue<ReturnType<typeof lease>>();
  const l = lease(10);
  q.schedule(l);
  l.live = false;
  assert.deepEqual(q.takeExpired(10), []);
});

test('many leases: every one expires exactly once, in order', () => {
  const q = new ExpiryQueue<ReturnType<typeof lease>>();
  const all = Array.from({ length: 10_000 }, (_, i) => lease((i * 7919) % 10_007));
  for (const l of all) q.schedule(l);
  const taken = q.takeExpired(20_000);
  assert.equal(taken.length, all.length);
  for (let i = 1; i < taken.length; i++) assert.ok(taken[i - 1]!.deadline <= taken[i]!.deadline);
});
