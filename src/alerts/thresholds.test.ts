import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InstanceThresholds } from './thresholds.ts';

describe('InstanceThresholds', () => {
  test('an exact name beats every pattern, whatever the order they were written in', () => {
    const thresholds = new InstanceThresholds(
      1,
      new Map([
        ['orders*', 5],
        ['*', 7],
        ['orders', 3],
      ]),
    );
    assert.equal(thresholds.of('orders'), 3);
    assert.equal(thresholds.of('orders-eu'), 5);
    assert.equal(thresholds.of('billing'), 7);
  });

  test('the first matching pattern in insertion order wins', () => {
    const broadFirst = new InstanceThresholds(
      1,
      new Map([
        ['pay*', 4],
        ['payments-*', 9],
      ]),
    );
    assert.equal(broadFirst.of('payments-eu'), 4);
    const narrowFirst = new InstanceThresholds(
      1,
      new Map([
        ['payments-*', 9],
        ['pay*', 4],
      ]),
    );
    assert.equal(narrowFirst.of('payments-eu'), 9);
    assert.equal(narrowFirst.of('payroll'), 4);
  });

  test('the default when nothing matches; patterns match the whole name', () => {
    const thresholds = new InstanceThresholds(2, new Map([['*-internal', 0], ['a*z', 6], ['exact', 4]]));
    assert.equal(thresholds.of('orders'), 2);
    assert.equal(thresholds.of('exactly'), 2, 'an exact name is not a prefix');
    assert.equal(thresholds.of('auth-internal'), 0);
    assert.equal(thresholds.of('auth-internal-x'), 2);
    assert.equal(thresholds.of('abcz'), 6);
    assert.equal(thresholds.of('az'), 6, '* matches an empty run');
    assert.equal(thresholds.of('abczy'), 2);
    assert.equal(thresholds.of('xabcz'), 2);
    assert.equal(thresholds.defaultMin, 2);
  });

  test('a dot in a pattern is a literal dot', () => {
    const thresholds = new InstanceThresholds(0, new Map([['a.b*', 3]]));
    assert.equal(thresholds.of('a.bc'), 3);
    assert.equal(thresholds.of('axbc'), 0);
  });

  test('namedServices and isNamed: exact names with a threshold above 0 only', () => {
    const thresholds = new InstanceThresholds(
      3,
      new Map([
        ['orders', 2],
        ['legacy', 0],
        ['billing*', 4],
        ['*', 1],
        ['search', 1],
      ]),
    );
    assert.deepEqual([...thresholds.namedServices()], ['orders', 'search']);
    assert.equal(thresholds.isNamed('orders'), true);
    assert.equal(thresholds.isNamed('search'), true);
    assert.equal(thresholds.isNamed('legacy'), false, 'named with 0: off');
    assert.equal(thresholds.isNamed('billing-eu'), false, 'known by a pattern only');
    assert.equal(thresholds.isNamed('billing*'), false, 'the pattern text is not a name');
    assert.equal(thresholds.isNamed('unknown'), false, 'default threshold only');
  });

  test('no thresholds configured: the default for everything, nothing named', () => {
    const thresholds = new InstanceThresholds(0, new Map());
    assert.equal(thresholds.of('anything'), 0);
    assert.deepEqual([...thresholds.namedServices()], []);
  });
});
