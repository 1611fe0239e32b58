import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecentLines } from './recent-lines.ts';

test('keeps the newest lines within the byte bound, oldest dropped first', () => {
  const recent = new RecentLines(20);
  for (let i = 0; i < 10; i++) recent.push(`line ${i}\n`);
  assert.equal(recent.text(), 'line 8\nline 9\n');
  recent.clear();
  assert.equal(recent.text(), '');
});

test('a line longer than the bound is still kept, alone', () => {
  const recent = new RecentLines(4);
  recent.push('a\n');
  recent.push('a long line\n');
  assert.equal(recent.text(), 'a long line\n');
});

test('stays bounded over many lines', () => {
  const recent = new RecentLines(100);
  for (let i = 0; i < 100_000; i++) recent.push(`${i}\n`);
  assert.ok(recent.text().length <= 100);
  assert.ok(recent.text().endsWith('99999\n'));
});
