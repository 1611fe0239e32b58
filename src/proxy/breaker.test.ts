import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Breakers } from './breaker.ts';

const FAILURES = 3;
const OPEN_MS = 1000;

function breakers(): { b: Breakers; at: (ms: number) => void } {
  let now = 10_000;
  return { b: new Breakers(() => now), at: (ms) => (now = ms) };
}

test('opens after N consecutive failures; a success in between starts the count over', () => {
  const { b, at } = breakers();
  at(10_000);
  b.record('k', false, 'failure', FAILURES, OPEN_MS);
  b.record('k', false, 'failure', FAILURES, OPEN_MS);
  b.record('k', false, 'success', FAILURES, OPEN_MS);
  b.record('k', false, 'failure', FAILURES, OPEN_MS);
  b.record('k', false, 'failure', FAILURES, OPEN_MS);
  assert.equal(b.admit('k', FAILURES), 'allowed');
  assert.deepEqual(b.view('k'), { state: 'closed', consecutiveFailures: 2, openedAt: null, nextTrialAt: null, opens: 0 });
  b.record('k', false, 'failure', FAILURES, OPEN_MS);
  assert.deepEqual(b.view('k'), { state: 'open', consecutiveFailures: 3, openedAt: 10_000, nextTrialAt: 11_000, opens: 1 });
  assert.equal(b.openNow, 1);
  assert.equal(b.admit('k', FAILURES), 'refused');
  assert.equal(b.admit('other', FAILURES), 'allowed');
});

test('after breakerOpenMs exactly one trial: success closes, failure opens again, no verdict frees the trial', () => {
  const { b, at } = breakers();
  at(0);
  for (let i = 0; i < FAILURES; i++) b.record('k', false, 'failure', FAILURES, OPEN_MS);
  at(999);
  assert.equal(b.admit('k', FAILURES), 'refused');
  at(1000);
  assert.equal(b.view('k').state, 'half-open');
  assert.equal(b.admit('k', FAILURES), 'trial');
  assert.equal(b.admit('k', FAILURES), 'refused', 'only one trial at a time');
  // An attempt that started before the breaker opened says nothing new.
  b.record('k', false, 'success', FAILURES, OPEN_MS);
  assert.equal(b.admit('k', FAILURES), 'refused');

  b.record('k', true, 'neutral', FAILURES, OPEN_MS);
  assert.equal(b.admit('k', FAILURES), 'trial', 'a trial without a verdict (client gone) frees the slot');
  b.record('k', true, 'failure', FAILURES, OPEN_MS);
  assert.deepEqual(b.view('k'), { state: 'open', consecutiveFailures: 3, openedAt: 1000, nextTrialAt: 2000, opens: 2 });
  at(2000);
  assert.equal(b.admit('k', FAILURES), 'trial');
  b.record('k', true, 'success', FAILURES, OPEN_MS);
  assert.deepEqual(b.view('k'), { state: 'closed', consecutiveFailures: 0, openedAt: null, nextTrialAt: null, opens: 2 });
  assert.equal(b.openNow, 0);
  assert.equal(b.admit('k', FAILURES), 'allowed');
});

test('a trial always gets its verdict, even after the policy disabled the breaker', () => {
  const { b, at } = breakers();
  at(0);
  for (let i = 0; i < FAILURES; i++) b.record('k', false, 'failure', FAILURES, OPEN_MS);
  at(OPEN_MS);
  assert.equal(b.admit('k', FAILURES), 'trial');
  b.record('k', true, 'neutral', 0, OPEN_MS);
  assert.equal(b.admit('k', FAILURES), 'trial', 'the trial slot was given back');
});

test('breakerFailures 0 disables the breaker; forget and prune drop state', () => {
  const { b } = breakers();
  for (let i = 0; i < 10; i++) b.record('k', false, 'failure', 0, OPEN_MS);
  assert.equal(b.admit('k', 0), 'allowed');
  assert.equal(b.view('k').consecutiveFailures, 0);
  for (let i = 0; i < FAILURES; i++) b.record('k', false, 'failure', FAILURES, OPEN_MS);
  for (let i = 0; i < FAILURES; i++) b.record('j', false, 'failure', FAILURES, OPEN_MS);
  assert.equal(b.openNow, 2);
  b.forget('k');
  assert.equal(b.openNow, 1);
  assert.equal(b.admit('k', FAILURES), 'allowed');
  b.prune((key) => key !== 'j');
  assert.equal(b.openNow, 0);
  assert.equal(b.view('j').state, 'closed');
});
