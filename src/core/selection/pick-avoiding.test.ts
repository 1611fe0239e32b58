import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NO_FILTER } from '../filter.ts';
import { ZERO_LOAD } from './index.ts';
import { instanceKey } from '../keys.ts';
import { pickAvoiding } from './pick-avoiding.ts';
import { catalogOf } from '../fixtures.ts';

const catalog = catalogOf('svc', [['a', 1], ['b', 2, { zone: 'z1' }], ['c', 3], ['d', 4, { zone: 'z1' }]]);
const ctx = { key: 'client-7', random: Math.random, load: ZERO_LOAD };
const keys = (...ids: string[]) => new Set(ids.map((id) => instanceKey('svc', id)));

test('without exclusions it is the strategy pick', () => {
  assert.equal(pickAvoiding(catalog, 'svc', NO_FILTER, 'consistent-hash', ctx, new Set())?.id, catalog.pick('svc', NO_FILTER, 'consistent-hash', ctx)?.id);
  assert.equal(pickAvoiding(catalog, 'none', NO_FILTER, 'round-robin', ctx, new Set()), undefined);
});

test('a hashing strategy falls back to the next instance in id order after its choice, the same every time', () => {
  const hashed = catalog.pick('svc', NO_FILTER, 'consistent-hash', ctx)!.id;
  const order = ['a', 'b', 'c', 'd'];
  const next = order[(order.indexOf(hashed) + 1) % 4]!;
  const afterNext = order[(order.indexOf(hashed) + 2) % 4]!;
  for (let i = 0; i < 3; i++) assert.equal(pickAvoiding(catalog, 'svc', NO_FILTER, 'consistent-hash', ctx, keys(hashed))?.id, next);
  assert.equal(pickAvoiding(catalog, 'svc', NO_FILTER, 'consistent-hash', ctx, keys(hashed, next))?.id, afterNext);
  assert.equal(pickAvoiding(catalog, 'svc', NO_FILTER, 'consistent-hash', ctx, keys('a', 'b', 'c', 'd')), undefined);
});

test('every strategy skips excluded instances and honours the filter', () => {
  const zone = { ...NO_FILTER, zone: 'z1' };
  for (const strategy of ['round-robin', 'random', 'weighted-random', 'rendezvous-hash', 'least-requests', 'p2c-ewma'] as const) {
    for (let i = 0; i < 20; i++) {
      assert.equal(pickAvoiding(catalog, 'svc', NO_FILTER, strategy, ctx, keys('a', 'b', 'd'))?.id, 'c', strategy);
      assert.equal(pickAvoiding(catalog, 'svc', zone, strategy, ctx, keys('b'))?.id, 'd', strategy);
      assert.equal(pickAvoiding(catalog, 'svc', zone, strategy, ctx, keys('b', 'd')), undefined, strategy);
    }
  }
});
