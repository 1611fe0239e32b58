import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Catalog } from '../core/catalog.ts';
import { testInstance } from '../core/fixtures.ts';
import { INDEX_PATTERN, MAX_WAIT_MS, parseWait, RevisionWaiters, WAIT_PATTERN } from './revision-waiters.ts';

/** A catalog fed like the store feeds it, one revision per change. */
class Feed {
  readonly catalog = new Catalog(100);

  constructor(private revision = 0) {
    if (revision > 0) this.catalog.reset({ revision, instances: [], kv: [] });
  }

  upsert(service: string, id: string): number {
    const revision = ++this.revision;
    const instance = testInstance(service, id, { createRevision: revision, modifyRevision: revision });
    this.catalog.apply({ kind: 'upsert', revision, instance, renewedAt: Date.now() });
    return revision;
  }

  remove(service: string, id: string): number {
    const revision = ++this.revision;
    this.catalog.apply({ kind: 'remove', revision, key: { service, id }, reason: 'deregistered' });
    return revision;
  }

  kv(key: string): number {
    const revision = ++this.revision;
    this.catalog.apply({ kind: 'kv', revision, key, value: 'v' });
    return revision;
  }

  reset(revision: number): void {
    this.revision = revision;
    this.catalog.reset({ revision, instances: [], kv: [] });
  }
}

/** A promise's state without waiting for it. */
function tracked<T>(promise: Promise<T>): { settled: boolean; value: T | undefined; promise: Promise<T> } {
  const state = { settled: false, value: undefined as T | undefined, promise };
  void promise.then((value) => {
    state.settled = true;
    state.value = value;
  });
  return state;
}

const noJitter = { random: () => 0 };

// Waiters' timers are unref'd (a server's socket keeps it alive); this keeps the test's loop going meanwhile.
const keepAlive = setInterval(() => undefined, 60_000);
after(() => clearInterval(keepAlive));

test('an index behind the scope, or 0, answers at once with the current index', async (t) => {
  const feed = new Feed();
  const waiters = new RevisionWaiters(feed.catalog, noJitter);
  t.after(() => waiters.close());
  feed.upsert('a', '1');
  const last = feed.upsert('a', '2');
  assert.equal(await waiters.wait('a', 1, 60_000), last);
  assert.equal(await waiters.wait(null, 1, 60_000), last);
  assert.equal(await waiters.wait('a', 0, 60_000), last);
  assert.equal(waiters.size, 0);
});

test('a parked wait answers on a change of its service and not of another', async (t) => {
  const feed = new Feed();
  const waiters = new RevisionWaiters(feed.catalog, noJitter);
  t.after(() => waiters.close());
  const a = feed.upsert('a', '1');
  feed.upsert('b', '1');
  const onA = tracked(waiters.wait('a', a, 60_000));
  const onAll = tracked(waiters.wait(null, waiters.indexOf(null), 60_000));
  const other = feed.upsert('b', '2');
  await sleep(5);
  assert.equal(onA.settled, false, "b's change does not wake a's waiter");
  assert.equal(onAll.value, other, 'the whole catalog changed');
  const next = feed.upsert('a', '2');
  assert.equal(await onA.promise, next);
  assert.equal(waiters.size, 0);
});

test('KV changes are not listed, so they wake nobody and move no index', async (t) => {
  const feed = new Feed();
  const waiters = new RevisionWaiters(feed.catalog, noJitter);
  t.after(() => waiters.close());
  const a = feed.upsert('a', '1');
  const parked = tracked(waiters.wait(null, a, 60_000));
  feed.kv('config/x');
  await sleep(5);
  assert.equal(parked.settled, false);
  assert.equal(waiters.indexOf(null), a);
  assert.equal(waiters.indexOf('a'), a);
});

test('when the wait ends the answer is the unchanged index', async (t) => {
  const feed = new Feed();
  const waiters = new RevisionWaiters(feed.catalog, noJitter);
  t.after(() => waiters.close());
  const a = feed.upsert('a', '1');
  const started = performance.now();
  assert.equal(await waiters.wait('a', a, 50), a);
  const took = performance.now() - started;
  assert.ok(took >= 45 && took < 1000, `waited ${took} ms`);
  assert.equal(waiters.size, 0);
});

test('the wait gets up to 1/16 of jitter and is capped at 10 minutes', async (t) => {
  const feed = new Feed();
  const waiters = new RevisionWaiters(feed.catalog, { random: () => 0.999 });
  t.after(() => waiters.close());
  const a = feed.upsert('a', '1');
  const started = performance.now();
  await waiters.wait('a', a, 160);
  const took = performance.now() - started;
  assert.ok(took >= 165 && took < 1000, `160 ms with jitter took ${took} ms`);

  t.mock.timers.enable({ apis: ['setTimeout'] });
  const capped = tracked(waiters.wait('a', a, 60 * 60_000));
  t.mock.timers.tick(MAX_WAIT_MS + MAX_WAIT_MS / 16);
  await Promise.resolve();
  assert.equal(capped.value, a, 'an hour is cut to ten minutes plus jitter');
  const defaulted = tracked(waiters.wait('a', a));
  t.mock.timers.tick(5 * 60_000 - 1);
  await Promise.resolve();
  assert.equal(defaulted.settled, false, 'no wait given: five minutes');
  t.mock.timers.tick(5 * 60_000 / 16);
  await Promise.resolve();
  assert.equal(defaulted.value, a);
});

test("removing a service's last instance wakes its waiters, and its index keeps the removal", async (t) => {
  const feed = new Feed();
  const waiters = new RevisionWaiters(feed.catalog, noJitter);
  t.after(() => waiters.close());
  const added = feed.upsert('a', '1');
  const parked = tracked(waiters.wait('a', added, 60_000));
  const removed = feed.remove('a', '1');
  assert.equal(await parked.promise, removed);
  assert.equal(feed.catalog.service('a'), undefined);
  feed.upsert('b', '1');
  assert.equal(waiters.indexOf('a'), removed, "another service's change does not move it");
  assert.equal(await waiters.wait('a', added, 60_000), removed, 'a client that missed the removal hears of it');
});

test('past the tombstone limit the oldest are forgotten without any index going back', async (t) => {
  const feed = new Feed();
  const waiters = new RevisionWaiters(feed.catalog, { ...noJitter, maxTombstones: 2 });
  t.after(() => waiters.close());
  const removals = ['x', 'y', 'z'].map((name) => {
    feed.upsert(name, '1');
    return feed.remove(name, '1');
  });
  assert.equal(waiters.indexOf('y'), removals[1]);
  assert.equal(waiters.indexOf('z'), removals[2]);
  assert.equal(waiters.indexOf('x'), removals[0], 'forgotten: unknown services start from its removal');
  assert.equal(waiters.indexOf('never-seen'), removals[0]);
});

test('a reset wakes every waiter and every scope counts as changed at its revision', async (t) => {
  const feed = new Feed();
  const waiters = new RevisionWaiters(feed.catalog, noJitter);
  t.after(() => waiters.close());
  const a = feed.upsert('a', '1');
  const b = feed.upsert('b', '1');
  const parked = [tracked(waiters.wait('a', a, 60_000)), tracked(waiters.wait('b', b, 60_000)), tracked(waiters.wait(null, b, 60_000))];
  feed.reset(10);
  await Promise.all(parked.map((p) => p.promise));
  assert.deepEqual(
    parked.map((p) => p.value),
    [10, 10, 10],
  );
  assert.equal(waiters.indexOf('a'), 10);
  assert.equal(waiters.indexOf('unknown'), 10);
  assert.equal(waiters.size, 0);
});

test('an index ahead of the scope (the registry went back) answers at once with the current one', async (t) => {
  const feed = new Feed(50);
  const waiters = new RevisionWaiters(feed.catalog, noJitter);
  t.after(() => waiters.close());
  const held = feed.upsert('a', '1');
  feed.reset(20);
  assert.equal(await waiters.wait('a', held, 60_000), 20);
  assert.equal(await waiters.wait(null, held, 60_000), 20);
  assert.equal(waiters.size, 0);
});

test('the index is never below 1', async (t) => {
  const feed = new Feed();
  const waiters = new RevisionWaiters(feed.catalog, noJitter);
  t.after(() => waiters.close());
  assert.equal(waiters.indexOf(null), 1);
  assert.equal(waiters.indexOf('a'), 1);
  assert.equal(await waiters.wait(null, 0, 60_000), 1);
  feed.reset(0);
  assert.equal(waiters.indexOf('a'), 1);
});

test('an abort releases the waiter and its timer', async (t) => {
  const feed = new Feed();
  const waiters = new RevisionWaiters(feed.catalog, noJitter);
  t.after(() => waiters.close());
  const a = feed.upsert('a', '1');
  const gone = new AbortController();
  const parked = tracked(waiters.wait('a', a, 60_000, gone.signal));
  assert.equal(waiters.size, 1);
  const cleared = t.mock.method(globalThis, 'clearTimeout');
  gone.abort();
  assert.equal(await parked.promise, a);
  assert.equal(waiters.size, 0);
  assert.equal(cleared.mock.callCount(), 1, 'its timer was cleared');
  cleared.mock.restore();
  assert.equal(await waiters.wait('a', a, 60_000, gone.signal), a, 'an aborted signal does not park');
  assert.equal(waiters.size, 0);
});

test('close answers everyone and parks nobody after', async () => {
  const feed = new Feed();
  const waiters = new RevisionWaiters(feed.catalog, noJitter);
  const a = feed.upsert('a', '1');
  const parked = tracked(waiters.wait('a', a, 60_000));
  waiters.close();
  assert.equal(await parked.promise, a);
  assert.equal(await waiters.wait('a', a, 60_000), a);
  feed.upsert('a', '2');
  assert.equal(waiters.indexOf('a'), a, 'no longer following the catalog');
});

test('10,000 waiters over 1,000 services: a change wakes only its own, in bounded time', async (t) => {
  const feed = new Feed();
  const waiters = new RevisionWaiters(feed.catalog, noJitter);
  t.after(() => waiters.close());
  const services = Array.from({ length: 1000 }, (_, i) => `svc-${i}`);
  for (const name of services) feed.upsert(name, '1');
  let woken = 0;
  const byService = new Map<string, Promise<number>[]>();
  for (let i = 0; i < 10_000; i++) {
    const name = services[i % services.length]!;
    const parked = waiters.wait(name, waiters.indexOf(name), 60_000).then((index) => {
      woken++;
      return index;
    });
    byService.set(name, [...(byService.get(name) ?? []), parked]);
  }
  assert.equal(waiters.size, 10_000);

  const started = performance.now();
  const changed = feed.upsert('svc-7', '2');
  const took = performance.now() - started;
  assert.deepEqual(await Promise.all(byService.get('svc-7')!), Array(10).fill(changed));
  await sleep(5);
  assert.equal(woken, 10, 'only the ten waiters of svc-7 were called back');
  assert.equal(waiters.size, 9_990);
  assert.ok(took < 50, `waking one service's waiters took ${took} ms`);

  const everyone = waiters.wait(null, waiters.indexOf(null), 60_000);
  const last = feed.upsert('svc-999', '2');
  assert.equal(await everyone, last, 'the whole-catalog waiter is woken by any service');
  await sleep(5);
  assert.equal(woken, 20);

  feed.reset(last + 1);
  await Promise.all([...byService.values()].flat());
  assert.equal(woken, 10_000);
  assert.equal(waiters.size, 0);
});

test('wait and index are parsed as Consul writes them', () => {
  const wait = new RegExp(WAIT_PATTERN, 'u');
  const cases: [string, number][] = [
    ['5s', 5000],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['500ms', 500],
    ['1m30s', 90_000],
    ['1.5s', 1500],
    ['300', 300],
    ['0', 0],
  ];
  for (const [text, ms] of cases) {
    assert.ok(wait.test(text), text);
    assert.equal(parseWait(text), ms, text);
  }
  for (const bad of ['', 'x', '5x', 's', '-1s', '1.s', '.5s', '5 s', '1d', '1e3', '5S', '1.5', '1234567890123']) assert.equal(wait.test(bad), false, bad);
  const index = new RegExp(INDEX_PATTERN, 'u');
  assert.ok(index.test('0') && index.test('123456789012345'));
  for (const bad of ['', '-1', '1.0', '0x1', '1e3', '1234567890123456']) assert.equal(index.test(bad), false, bad);
});
