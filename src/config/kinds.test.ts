import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { headerName, host, integer, oneOf, strategy, trustProxy, type Kind, type Parsed } from './kinds.ts';

function value<T>(kind: Kind<T>, raw: unknown): T {
  const result: Parsed<T> = kind.parse(raw);
  assert.ok(result.ok, `${JSON.stringify(raw)} should be accepted`);
  return result.value;
}

function rejects<T>(kind: Kind<T>, raw: unknown): string | undefined {
  const result = kind.parse(raw);
  assert.ok(!result.ok, `${JSON.stringify(raw)} should be rejected`);
  return result.detail;
}

describe('trustProxy', () => {
  test('booleans, as words in any case or as YAML/JSON booleans', () => {
    assert.equal(value(trustProxy, 'true'), true);
    assert.equal(value(trustProxy, 'FALSE'), false);
    assert.equal(value(trustProxy, true), true);
    assert.equal(value(trustProxy, false), false);
  });

  test('hop counts, as strings or numbers', () => {
    assert.equal(value(trustProxy, '0'), 0);
    assert.equal(value(trustProxy, '2'), 2);
    assert.equal(value(trustProxy, 3), 3);
    rejects(trustProxy, '-1');
    rejects(trustProxy, 1.5);
  });

  test('comma-separated addresses and CIDRs, trimmed', () => {
    assert.deepEqual(value(trustProxy, '10.0.0.1, 192.168.0.0/16,::1,fd00::/8'), [
      '10.0.0.1',
      '192.168.0.0/16',
      '::1',
      'fd00::/8',
    ]);
    assert.deepEqual(value(trustProxy, '0.0.0.0/0'), ['0.0.0.0/0']);
    assert.deepEqual(value(trustProxy, '::/128'), ['::/128']);
  });

  test('a list from YAML or JSON', () => {
    assert.deepEqual(value(trustProxy, ['127.0.0.1', ' 10.0.0.0/8 ']), ['127.0.0.1', '10.0.0.0/8']);
  });

  test('invalid entries are named', () => {
    assert.equal(rejects(trustProxy, '10.0.0.0/33'), '"10.0.0.0/33" has a prefix length outside 0-32');
    assert.equal(rejects(trustProxy, 'fd00::/129'), '"fd00::/129" has a prefix length outside 0-128');
    assert.equal(rejects(trustProxy, '10.0.0.0/'), '"10.0.0.0/" has a prefix length outside 0-32');
    assert.equal(rejects(trustProxy, '10.0.0.1,proxy.local'), '"proxy.local" is not an IP address or CIDR');
    assert.equal(rejects(trustProxy, '10.0.0.1,,10.0.0.2'), '"" is not an IP address or CIDR');
    assert.equal(rejects(trustProxy, '300.1.1.1'), '"300.1.1.1" is not an IP address or CIDR');
    assert.equal(rejects(trustProxy, ['10.0.0.1', 7]), '7 is not an IP address or CIDR');
    assert.equal(rejects(trustProxy, []), 'the address list is empty');
    rejects(trustProxy, { proxies: [] });
  });

  test('format renders lists the way they are typed', () => {
    assert.equal(trustProxy.format(['10.0.0.1', '::1']), '10.0.0.1,::1');
    assert.equal(trustProxy.format(false), 'false');
  });
});

describe('strategy', () => {
  test('canonical names are kept', () => {
    assert.equal(value(strategy, 'p2c-ewma'), 'p2c-ewma');
  });

  test("the original's codes become canonical names, in any case", () => {
    assert.equal(value(strategy, 'WRR'), 'weighted-round-robin');
    assert.equal(value(strategy, 'rr'), 'round-robin');
    assert.equal(value(strategy, 'CH'), 'consistent-hash');
  });

  test('unknown names and non-strings are rejected', () => {
    rejects(strategy, 'fastest');
    rejects(strategy, 5);
  });
});

describe('other kinds', () => {
  test('integer accepts decimal strings and whole numbers in range only', () => {
    const kind = integer(1, 10);
    assert.equal(value(kind, ' 7 '), 7);
    assert.equal(value(kind, '+7'), 7);
    assert.equal(value(kind, 10), 10);
    for (const raw of ['0', '11', '0x5', '5.0', '5e0', '', 'five', 5.5, true, null, ['5']]) rejects(kind, raw);
  });

  test('oneOf ignores case and stores the canonical word', () => {
    const kind = oneOf(['always', 'never']);
    assert.equal(value(kind, 'ALWAYS'), 'always');
    rejects(kind, 'sometimes');
    rejects(kind, 1);
  });

  test('host accepts IP addresses and hostnames', () => {
    for (const raw of ['0.0.0.0', '::', '::1', 'localhost', 'maxine-1.svc.cluster.local']) {
      assert.equal(value(host, raw), raw);
    }
    for (const raw of ['', 'a b', 'under_score', '-leading', 'trailing-.com', 'a..b', '[::1]', `${'a'.repeat(64)}.com`]) {
      rejects(host, raw);
    }
  });

  test('headerName stores lowercase token names', () => {
    assert.equal(value(headerName, 'X-Maxine-Hash-Key'), 'x-maxine-hash-key');
    for (const raw of ['', 'x key', 'x:key', 'x-ké']) rejects(headerName, raw);
  });
});
