import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Catalog } from '../core/catalog.ts';
import { testInstance } from '../core/fixtures.ts';
import type { KvCollection } from '../core/kv-collection.ts';
import { NOTIFIED_KV_PREFIX, notifiedRecords, type NotifiedRecord } from './notified-records.ts';
import type { AlertPayload } from './webhooks.ts';
import { closedAfterEach } from '../../test/helpers/closed-after-each.ts';

function payload(fingerprint: string, overrides: Partial<AlertPayload> = {}): AlertPayload {
  return {
    fingerprint,
    rule: 'instance_evicted',
    severity: 'warning',
    scope: 'cluster',
    service: 'orders',
    instanceId: 'o1',
    replica: null,
    summary: 'orders instance o1 failed its health checks (HTTP 503) and gets no traffic',
    details: { reason: 'HTTP 503' },
    startsAt: '2024-05-01T12:00:00.000Z',
    endsAt: null,
    ...overrides,
  };
}

function record(fingerprint: string, sentAt = 1_714_564_800_000): NotifiedRecord {
  return {
    alert: payload(fingerprint),
    sentBy: 'replica-1',
    sentAt,
    deliveries: [{ webhook: 'ops', state: 'delivered', attempts: 1, statusCode: 200, error: null, lastAttemptAt: sentAt, nextAttemptAt: null }],
  };
}

const warningFor = (key: string) => `The stored record "${key}" is not valid; it is ignored.`;

class Setup {
  readonly catalog = new Catalog(100);
  readonly warnings: string[] = [];
  private revision = 0;
  private records: KvCollection<NotifiedRecord> | undefined;

  put(key: string, value: string | null): void {
    this.catalog.apply({ kind: 'kv', revision: ++this.revision, key, value });
  }

  putRecord(fingerprint: string, r: NotifiedRecord = record(fingerprint)): void {
    this.put(NOTIFIED_KV_PREFIX + fingerprint, JSON.stringify(r));
  }

  open(): KvCollection<NotifiedRecord> {
    this.records = notifiedRecords(this.catalog, (message) => this.warnings.push(message));
    return this.records;
  }

  nextRevision(): number {
    return ++this.revision;
  }

  close(): void {
    this.records?.close();
  }
}

const setup = closedAfterEach(() => new Setup());

describe('notified records', () => {
  test('records already in the KV are read at construction', () => {
    const s = setup();
    s.putRecord('aaa');
    s.putRecord('bbb', record('bbb', 42));
    s.put('policies/orders', '{"retries":1}');
    const records = s.open();
    assert.deepEqual([...records.names()].sort(), ['aaa', 'bbb']);
    assert.deepEqual(records.get('aaa'), record('aaa'));
    assert.equal(records.get('bbb')?.sentAt, 42);
    assert.deepEqual(s.warnings, []);
  });

  test('records written under alerts/notified/ are followed; other keys are not read', () => {
    const s = setup();
    const records = s.open();
    assert.equal(records.get('f1') !== undefined, false);
    assert.equal(records.get('f1'), undefined);
    s.putRecord('f1');
    assert.equal(records.get('f1') !== undefined, true);
    assert.deepEqual(records.get('f1'), record('f1'));
    s.put('alerts/other/f2', JSON.stringify(record('f2')));
    s.put('notified/f3', JSON.stringify(record('f3')));
    s.put('policies/orders', 'not json at all');
    assert.deepEqual([...records.names()], ['f1']);
    assert.deepEqual(s.warnings, [], 'keys outside the prefix are not parsed');
  });

  test('a rewrite replaces the record', () => {
    const s = setup();
    const records = s.open();
    s.putRecord('f1', record('f1', 1));
    s.putRecord('f1', record('f1', 2));
    assert.equal(records.get('f1')?.sentAt, 2);
    assert.deepEqual([...records.names()], ['f1']);
  });

  test('a deletion (value null) forgets the record', () => {
    const s = setup();
    s.putRecord('f1');
    const records = s.open();
    s.putRecord('f2');
    s.put(NOTIFIED_KV_PREFIX + 'f1', null);
    assert.equal(records.get('f1') !== undefined, false);
    assert.equal(records.get('f1'), undefined);
    assert.deepEqual([...records.names()], ['f2']);
    s.put(NOTIFIED_KV_PREFIX + 'f2', null);
    assert.deepEqual([...records.names()], []);
    assert.deepEqual(s.warnings, []);
  });

  test('malformed JSON is ignored with one warning', () => {
    const s = setup();
    const records = s.open();
    const key = NOTIFIED_KV_PREFIX + 'bad';
    s.put(key, '{"alert": {');
    assert.equal(records.get('bad') !== undefined, false);
    assert.deepEqual(s.warnings, [warningFor(key)]);
    s.putRecord('good');
    assert.deepEqual(s.warnings, [warningFor(key)], 'a good record warns about nothing');
    assert.deepEqual([...records.names()], ['good']);
  });

  test('JSON that is not a record is ignored with a warning each', () => {
    const s = setup();
    const records = s.open();
    const good = record('x');
    const shapes: Record<string, unknown> = {
      null: null,
      number: 7,
      string: 'record',
      noAlert: { ...good, alert: undefined },
      unknownRule: { ...good, alert: { ...good.alert, rule: 'disk_full' } },
      unknownSeverity: { ...good, alert: { ...good.alert, severity: 'info' } },
      numericFingerprint: { ...good, alert: { ...good.alert, fingerprint: 12 } },
      sentAtText: { ...good, sentAt: '2024-05-01' },
      noSentBy: { ...good, sentBy: undefined },
      deliveriesObject: { ...good, deliveries: {} },
    };
    for (const [name, value] of Object.entries(shapes)) s.put(NOTIFIED_KV_PREFIX + name, JSON.stringify(value));
    assert.deepEqual([...records.names()], []);
    assert.deepEqual(
      s.warnings,
      Object.keys(shapes).map((name) => warningFor(NOTIFIED_KV_PREFIX + name)),
    );
  });

  test('a malformed rewrite of a good record removes it', () => {
    const s = setup();
    const records = s.open();
    s.putRecord('f1');
    s.put(NOTIFIED_KV_PREFIX + 'f1', 'garbage');
    assert.equal(records.get('f1') !== undefined, false);
    assert.equal(s.warnings.length, 1);
  });

  test('a malformed record in the KV at construction warns once and is skipped', () => {
    const s = setup();
    s.put(NOTIFIED_KV_PREFIX + 'bad', '[1,2');
    s.putRecord('good');
    const records = s.open();
    assert.deepEqual([...records.names()], ['good']);
    assert.deepEqual(s.warnings, [warningFor(NOTIFIED_KV_PREFIX + 'bad')]);
  });

  test('catalog.reset reloads every record from the snapshot', () => {
    const s = setup();
    s.putRecord('old');
    const records = s.open();
    s.putRecord('also-old');
    s.catalog.reset({
      revision: s.nextRevision(),
      instances: [{ instance: testInstance('orders', 'o1'), renewedAt: Date.now() }],
      kv: [
        [NOTIFIED_KV_PREFIX + 'new', JSON.stringify(record('new', 7))],
        [NOTIFIED_KV_PREFIX + 'broken', '{'],
        ['policies/orders', '{}'],
      ],
    });
    assert.deepEqual([...records.names()], ['new']);
    assert.equal(records.get('new')?.sentAt, 7);
    assert.equal(records.get('old') !== undefined, false);
    assert.equal(records.get('also-old') !== undefined, false);
    assert.deepEqual(s.warnings, [warningFor(NOTIFIED_KV_PREFIX + 'broken')]);
    // Followed again after the reset.
    s.put(NOTIFIED_KV_PREFIX + 'new', null);
    assert.deepEqual([...records.names()], []);
  });

  test('close() stops following the catalog', () => {
    const s = setup();
    const records = s.open();
    s.putRecord('f1');
    records.close();
    s.putRecord('f2');
    s.put(NOTIFIED_KV_PREFIX + 'f1', null);
    assert.deepEqual([...records.names()], ['f1']);
  });
});
