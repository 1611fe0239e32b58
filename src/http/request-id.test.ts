import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, test } from 'node:test';
import { requestIdGenerator } from './request-id.ts';

const requestWith = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

describe('request ids', () => {
  test('count up in base 36 after one prefix per generator, across the blocks they are made in', () => {
    const next = requestIdGenerator();
    const ids = Array.from({ length: 1000 }, () => next(requestWith({})));
    const prefix = ids[0]!.slice(0, 9);
    assert.match(prefix, /^[0-9a-f]{8}-$/);
    assert.deepEqual(ids, Array.from({ length: 1000 }, (_, i) => `${prefix}${(i + 1).toString(36)}`));
    assert.notEqual(requestIdGenerator()(requestWith({})).slice(0, 9), prefix, 'another generator (another boot) has its own prefix');
  });

  test("keep a caller's plain token and replace anything else without skipping a number", () => {
    const next = requestIdGenerator();
    assert.equal(next(requestWith({ 'x-request-id': 'trace-42:a.b_c' })), 'trace-42:a.b_c');
    const first = next(requestWith({ 'x-request-id': 'has space' }));
    assert.match(first, /^[0-9a-f]{8}-1$/);
    for (const hostile of ['__proto__/../x', 'x'.repeat(65), 'ünïcode', '', 'a\nb']) {
      assert.match(next(requestWith({ 'x-request-id': hostile })), /^[0-9a-f]{8}-[0-9a-z]+$/, JSON.stringify(hostile));
    }
    assert.equal(next(requestWith({})), `${first.slice(0, 9)}7`);
  });
});
