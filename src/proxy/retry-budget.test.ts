import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RetryBudgets } from './retry-budget.ts';

function spend(budgets: RetryBudgets, service: string, percent: number, minPerSecond: number): number {
  let retries = 0;
  while (budgets.canRetry(service, percent, minPerSecond)) {
    budgets.recordRetry(service);
    retries++;
    if (retries > 10_000) throw new Error('unbounded');
  }
  return retries;
}

test('retries are bounded by a percentage of the last 10 s of requests, with a per-second floor', () => {
  let now = 1_000_000;
  const budgets = new RetryBudgets(() => now);
  for (let i = 0; i < 100; i++) budgets.request('svc');
  assert.equal(spend(budgets, 'svc', 20, 0), 20);
  assert.equal(spend(budgets, 'other', 20, 0), 0, 'budgets are per service');
  assert.equal(spend(budgets, 'other', 20, 0.5), 5, 'the floor: 0.5 per second over 10 s');
  now += 5_000;
  for (let i = 0; i < 50; i++) budgets.request('svc');
  assert.equal(spend(budgets, 'svc', 20, 0), 10, '150 requests allow 30 retries; 20 are spent');
});

test('the window slides: requests and retries older than 10 s no longer count', () => {
  let now = 1_000_000;
  const budgets = new RetryBudgets(() => now);
  for (let i = 0; i < 10; i++) budgets.request('svc');
  assert.equal(spend(budgets, 'svc', 50, 0), 5);
  now += 9_000;
  assert.equal(spend(budgets, 'svc', 50, 0), 0, 'still inside the window');
  now += 1_000;
  assert.equal(spend(budgets, 'svc', 50, 0), 0, 'requests and retries left together');
  for (let i = 0; i < 4; i++) budgets.request('svc');
  assert.equal(spend(budgets, 'svc', 50, 0), 2);
  now += 60_000;
  assert.equal(spend(budgets, 'svc', 50, 0.2), 2, 'a long pause clears the window');
  budgets.forget('svc');
  assert.equal(spend(budgets, 'svc', 50, 0), 0);
});
