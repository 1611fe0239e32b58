import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkedUpstreamPath } from './forwarding.ts';

test('checkedUpstreamPath keeps what the client sent and refuses paths that step outside the prefix', () => {
  for (const path of ['/a/b', '/a/..b', '/a/.b/', '/...', '/a/b.', '/a%20b', '/a?x=../..', '/%7Euser']) assert.equal(checkedUpstreamPath(path), path);
  assert.equal(checkedUpstreamPath(''), '/');
  for (const path of ['/a/../b', '/..', '/.', '/a/.', '/a\\..\\b', '/%2e%2e/x', '/a/%2E', '/a%5c..%5cb', '/x/..?q=1']) {
    assert.throws(() => checkedUpstreamPath(path), /'\.' or '\.\.' segments/, path);
  }
  assert.throws(() => checkedUpstreamPath('/%zz'), /percent-encoded/);
  assert.throws(() => checkedUpstreamPath('/a%00b'), /control characters/);
  assert.throws(() => checkedUpstreamPath('/a%0Ab'), /control characters/);
});
