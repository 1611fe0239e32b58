import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventRing, type RegistryEvent } from './events.ts';

const event = (revision: number): RegistryEvent => ({ type: 'config_changed', revision, timestamp: 0, key: 'k', value: null });

test('since returns events after a revision in order', () => {
  const ring = new EventRing(10);
  for (let r = 1; r <= 5; r++) ring.push(event(r));
  const result = ring.since(2);
  assert.equal(result.kind, 'events');
  assert.deepEqual(result.kind === 'events' && result.events.map((e) => e.revision), [3, 4, 5]);
});

test('a watcher that fell behind the ring gets an explicit resync', () => {
  const ring = new EventRing(3);
  for (let r = 1; r <= 10; r++) ring.push(event(r));
  assert.deepEqual(ring.since(5), { kind: 'resync', oldest: 7 });
  const ok = ring.since(7);
  assert.deepEqual(ok.kind === 'events' && ok.events.map((e) => e.revision), [8, 9, 10]);
});

test('after a clear, only revisions from the reset point are resumable', () => {
  const ring = new EventRing(5);
  ring.push(event(1));
  ring.clear(40);
  assert.equal(ring.since(10).kind, 'resync');
  ring.push(event(41));
  const ok = ring.since(40);
  assert.deepEqual(ok.kind === 'events' && ok.events.map((e) => e.revision), [41]);
});
