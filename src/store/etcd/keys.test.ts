import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KeyLayout, instanceMapKey } from './keys.ts';

test('instance and tombstone keys percent-encode their parts and parse back', () => {
  const keys = new KeyLayout('maxine/');
  const odd = { service: 'a/b%c', id: 'id/ü %2F' };
  assert.equal(keys.instance(odd).toString(), 'maxine/i/a%2Fb%25c/id%2F%C3%BC%20%252F');
  assert.deepEqual(keys.parse(keys.instance(odd)), { kind: 'instance', key: odd });
  assert.deepEqual(keys.parse(keys.tombstone(odd)), { kind: 'tombstone', key: odd });
  assert.notEqual(keys.instance({ service: 'a/b', id: 'c' }).toString(), keys.instance({ service: 'a', id: 'b/c' }).toString());
  assert.notEqual(instanceMapKey({ service: 'a', id: 'bc' }), instanceMapKey({ service: 'ab', id: 'c' }));
});

test('kv names, the leader key and keys outside the layout', () => {
  const keys = new KeyLayout('maxine/');
  assert.deepEqual(keys.parse(keys.kv('config/a/b')), { kind: 'kv', name: 'config/a/b' });
  assert.deepEqual(keys.parse(keys.leader), { kind: 'leader' });
  for (const other of ['other/i/a/b', 'maxine/i/a', 'maxine/i/a/b/c', 'maxine/i/%E0%A4%A/x', 'maxine/x/y', 'maxine/leaders']) {
    assert.deepEqual(keys.parse(Buffer.from(other)), { kind: 'other' }, other);
  }
  assert.throws(() => new KeyLayout(''), TypeError);
});

test('ranges cover exactly the keys under a prefix', () => {
  const keys = new KeyLayout('maxine/');
  assert.deepEqual(keys.all(), { key: Buffer.from('maxine/'), range_end: Buffer.from('maxine0') });
  assert.deepEqual(keys.instances(), { key: Buffer.from('maxine/i/'), range_end: Buffer.from('maxine/i0') });
  const unicode = new KeyLayout('ü').all();
  assert.deepEqual([...unicode.key], [0xc3, 0xbc]);
  assert.deepEqual([...unicode.range_end], [0xc3, 0xbd]);
});
