import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { renderConfigTable } from './render.ts';

test('the README configuration table is the one generated from the schema', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const start = readme.indexOf('<!-- config-table:start');
  const end = readme.indexOf('<!-- config-table:end -->');
  assert.ok(start >= 0 && end > start, 'README has no config-table markers');
  const body = readme.slice(readme.indexOf('\n', start) + 1, end).trim();
  assert.equal(body, renderConfigTable().trim(), 'README is stale: paste the output of renderConfigTable()');
});
