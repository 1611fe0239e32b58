import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isValidTraceparent, newTraceparent, traceIdOf, withTraceContext } from './headers.ts';

test('new traceparents are version 00, sampled, random and valid', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const value = newTraceparent();
    assert.match(value, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    assert.ok(isValidTraceparent(value));
    seen.add(value.slice(3, 35));
  }
  assert.equal(seen.size, 1000);
});

test('traceparent validation follows W3C Trace Context', () => {
  assert.ok(isValidTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'));
  assert.ok(isValidTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00'));
  assert.ok(isValidTraceparent('01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future'), 'later versions may add fields');
  for (const invalid of [
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra',
    'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
    '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01',
    '',
  ]) {
    assert.equal(isValidTraceparent(invalid), false, invalid);
  }
});

test('traceIdOf reads the trace id of valid traceparents only', () => {
  assert.equal(traceIdOf('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'), '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(traceIdOf('00-00000000000000000000000000000000-00f067aa0ba902b7-01'), null);
  assert.equal(traceIdOf(['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01']), null);
  assert.equal(traceIdOf(undefined), null);
});

test("withTraceContext replaces the trace headers and leaves the list it was given alone", () => {
  const headers = ['accept', '*/*', 'traceparent', 'old', 'tracestate', 'old=1'];
  assert.deepEqual(withTraceContext(headers, 'new', 'new=1'), ['accept', '*/*', 'traceparent', 'new', 'tracestate', 'new=1']);
  assert.deepEqual(withTraceContext(headers, 'new', undefined), ['accept', '*/*', 'traceparent', 'new']);
  assert.deepEqual(headers, ['accept', '*/*', 'traceparent', 'old', 'tracestate', 'old=1']);
});
