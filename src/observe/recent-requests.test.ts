import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecentRequests } from './recent-requests.ts';

test('the ring keeps the last requests, newest first', () => {
  const ring = new RecentRequests(3);
  assert.deepEqual(ring.recent(), []);
  for (let i = 1; i <= 5; i++) ring.record('GET', `/r${i}`, 200, i + 0.123, i % 2 === 0 ? `${i}`.repeat(32) : null);
  const listed = ring.recent();
  assert.deepEqual(
    listed.map((r) => [r.route, r.durationMs, r.traceId]),
    [
      ['/r5', 5.12, null],
      ['/r4', 4.12, '4'.repeat(32)],
      ['/r3', 3.12, null],
    ],
  );
  assert.ok(Date.parse(listed[0]!.time) <= Date.now());
  assert.deepEqual(ring.recent(1).map((r) => r.route), ['/r5']);
});
