import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AttemptLimiter } from './attempt-limiter.ts';

test('a key may try `limit` times per window, then waits for the window to end', () => {
  let now = 1_000;
  const limiter = new AttemptLimiter(3, 60_000, () => now);
  for (let i = 0; i < 3; i++) {
    assert.equal(limiter.retryAfterMs('alice'), 0);
    limiter.record('alice');
  }
  assert.equal(limiter.retryAfterMs('alice'), 60_000);
  assert.equal(limiter.retryAfterMs('bob'), 0, 'keys are counted apart');
  now += 59_000;
  assert.equal(limiter.retryAfterMs('alice'), 1_000);
  now += 1_000;
  assert.equal(limiter.retryAfterMs('alice'), 0, 'a new window starts afresh');
});

test('forget clears a key, and the number of keys kept is bounded', () => {
  const limiter = new AttemptLimiter(1, 60_000, () => 0, 2);
  limiter.record('a');
  limiter.forget('a');
  assert.equal(limiter.retryAfterMs('a'), 0);
  limiter.record('a');
  limiter.record('b');
  limiter.record('c');
  assert.equal(limiter.retryAfterMs('a'), 0, 'the oldest key was forgotten to make room');
  assert.ok(limiter.retryAfterMs('c') > 0);
});
