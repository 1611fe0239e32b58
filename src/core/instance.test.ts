import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { testSpec } from './fixtures.ts';
import { instanceOf, withRevisions, type InstanceState } from './instance.ts';

const FIELD_ORDER = [
  'service', 'id', 'scheme', 'host', 'port', 'path', 'weight', 'tags', 'version', 'zone', 'metadata', 'healthCheckPath',
  'status', 'ttlMs', 'check', 'statusReason', 'statusChangedAt', 'health', 'healthReason', 'healthChangedAt',
  'registeredAt', 'createRevision', 'modifyRevision', 'address',
];

const STATE: InstanceState = {
  statusReason: '',
  statusChangedAt: 5,
  health: 'passing',
  healthReason: '',
  healthChangedAt: 5,
  registeredAt: 5,
  createRevision: 0,
  modifyRevision: 0,
  address: 'http://127.0.0.1:8080',
};

describe('building instances', () => {
  it('gives every instance exactly the Instance fields in one order, frozen, whatever its inputs held', () => {
    // Inputs in another order and with a field that is not an Instance field, as a spread of a request body could have.
    const spec = { extra: 'not an instance field', ...testSpec('orders', 'o-1'), service: 'orders' };
    const built = instanceOf(spec, { ...STATE, createRevision: 3 } as InstanceState);
    assert.deepEqual(Object.keys(built), FIELD_ORDER);
    assert.ok(Object.isFrozen(built));
    assert.equal(built.createRevision, 3);
    const restamped = withRevisions(built, 3, 9);
    assert.deepEqual(Object.keys(restamped), FIELD_ORDER);
    assert.deepEqual({ ...restamped, modifyRevision: 3 }, { ...built, modifyRevision: 3 });
    assert.equal(restamped.modifyRevision, 9);
  });

  it('copies and freezes tags, metadata and check that are not frozen, and reuses those that are', () => {
    const tags = ['blue'];
    const metadata = JSON.parse('{"__proto__":"x","tier":"gold"}') as Record<string, string>;
    const check = {
      type: 'http' as const,
      path: '/health',
      statusMin: 200,
      statusMax: 399,
      bodyMatch: '',
      intervalMs: 1000,
      timeoutMs: 500,
      rise: 2,
      fall: 3,
      jitterMs: 0,
      deregisterCriticalAfterMs: 0,
    };
    const built = instanceOf(testSpec('orders', 'o-1', { tags, metadata, check }), STATE);
    assert.notEqual(built.tags, tags);
    assert.notEqual(built.metadata, metadata);
    assert.notEqual(built.check, check);
    assert.ok(Object.isFrozen(built.tags) && Object.isFrozen(built.metadata) && Object.isFrozen(built.check));
    assert.deepEqual(built.tags, ['blue']);
    assert.deepEqual(built.check, check);
    // "__proto__" stays an ordinary own key: the copy's prototype is untouched.
    assert.ok(Object.hasOwn(built.metadata, '__proto__'));
    assert.equal(Object.getPrototypeOf(built.metadata), Object.prototype);
    assert.equal(built.metadata['tier'], 'gold');

    const again = withRevisions(built, 1, 2);
    assert.equal(again.tags, built.tags);
    assert.equal(again.metadata, built.metadata);
    assert.equal(again.check, built.check);
  });
});
