import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { AuditLog, type AuditEvent, type AuditOptions } from './audit.ts';

const KEY_ORDER = [
  'time',
  'actor',
  'action',
  'service',
  'method',
  'route',
  'address',
  'result',
  'status',
  'reason',
  'traceId',
  'requestId',
];

function event(n: number, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    time: new Date(Date.UTC(2026, 0, 1, 0, 0, 0, n)).toISOString(),
    actor: { kind: 'user', id: 'alice', role: 'admin' },
    action: 'register',
    service: 'orders',
    method: 'POST',
    route: '/api/maxine/serviceops/register',
    address: '10.0.0.1',
    result: 'succeeded',
    status: 200,
    reason: null,
    traceId: null,
    // Fixed width so every line of a test has the same length.
    requestId: `req-${String(n).padStart(6, '0')}`,
    ...overrides,
  };
}

interface Harness {
  readonly dir: string;
  readonly errors: Error[];
  options(overrides: Partial<AuditOptions>): AuditOptions;
}

async function withDir(body: (h: Harness) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'maxine-audit-'));
  const errors: Error[] = [];
  const options = (overrides: Partial<AuditOptions>): AuditOptions => ({
    file: join(dir, 'audit.log'),
    maxBytes: 1024 * 1024,
    retainedFiles: 3,
    ringSize: 100,
    onError: (error) => errors.push(error),
    ...overrides,
  });
  try {
    await body({ dir, errors, options });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function lines(file: string): Record<string, unknown>[] {
  const text = readFileSync(file, 'utf8');
  assert.ok(text === '' || text.endsWith('\n'), `${file} ends with a complete line`);
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

function requestIds(file: string): string[] {
  return lines(file).map((line) => line.requestId as string);
}

function ids(from: number, to: number): string[] {
  return Array.from({ length: to - from }, (_, i) => event(from + i).requestId);
}

function rotatedFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => /^audit\.log\.\d+$/.test(name))
    .sort((a, b) => Number(a.split('.').pop()) - Number(b.split('.').pop()));
}

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

test('events are appended as JSON lines in order, in a fixed key order, and a reopened log appends', async () => {
  await withDir(async ({ errors, options }) => {
    const file = options({}).file!;
    const first = new AuditLog(options({}));
    for (let i = 0; i < 5; i++) first.record(event(i));
    // Fields beyond the AuditEvent shape (a raw URL carrying a token) never reach the file.
    first.record({ ...event(5), url: '/api/x?token=secret' } as AuditEvent);
    await first.close();

    const written = lines(file);
    assert.deepEqual(
      written.map((line) => line.requestId),
      ids(0, 6),
    );
    for (const line of written) assert.deepEqual(Object.keys(line), KEY_ORDER);
    assert.deepEqual(Object.keys(written[0]!.actor as object), ['kind', 'id', 'role']);
    assert.deepEqual(written[0], JSON.parse(JSON.stringify(event(0))));
    assert.ok(!readFileSync(file, 'utf8').includes('secret'));

    const second = new AuditLog(options({}));
    second.record(event(6));
    second.record(event(7));
    await second.close();
    assert.deepEqual(requestIds(file), ids(0, 8));
    assert.deepEqual(errors, []);
  });
});

test('a restarted log takes the existing file size into account when rotating', async () => {
  await withDir(async ({ errors, options }) => {
    const file = options({}).file!;
    const first = new AuditLog(options({}));
    for (let i = 0; i < 3; i++) first.record(event(i));
    await first.close();
    const size = statSync(file).size;
    const lineBytes = size / 3;

    const second = new AuditLog(options({ maxBytes: size + lineBytes / 2 }));
    second.record(event(3));
    await second.close();
    assert.deepEqual(requestIds(`${file}.1`), ids(0, 3));
    assert.deepEqual(requestIds(file), ids(3, 4));
    assert.deepEqual(errors, []);
  });
});

test('the ring returns newest first, honours limit and filters, and keeps only ringSize events', () => {
  const log = new AuditLog({ file: null, maxBytes: 1024, retainedFiles: 0, ringSize: 5, onError: assert.fail });
  assert.deepEqual(log.recent(), []);
  log.record(event(0));
  log.record(event(1, { actor: { kind: 'token', id: 'tok-1', role: 'operator' }, result: 'denied', status: 403 }));
  log.record(event(2, { service: 'billing' }));
  log.record(event(3, { result: 'failed', status: 500 }));
  log.record(event(4, { actor: { kind: 'token', id: 'tok-1', role: 'operator' }, service: 'billing' }));
  log.record(event(5, { actor: { kind: 'anonymous', id: null, role: null }, result: 'denied', status: 401 }));
  log.record(event(6));

  const ofAll = (query?: Parameters<AuditLog['recent']>[0]) => log.recent(query).map((e) => e.requestId);
  assert.deepEqual(ofAll(), ids(2, 7).reverse(), 'the two oldest fell out of a ring of 5');
  assert.deepEqual(ofAll({ limit: 2 }), ids(5, 7).reverse());
  assert.deepEqual(ofAll({ limit: 1000 }), ids(2, 7).reverse(), 'limit is capped at ringSize');
  assert.deepEqual(ofAll({ limit: 0 }), []);
  assert.deepEqual(ofAll({ actor: 'tok-1' }), ids(4, 5));
  assert.deepEqual(ofAll({ result: 'denied' }), ids(5, 6));
  assert.deepEqual(ofAll({ service: 'billing' }), [event(4).requestId, event(2).requestId]);
  assert.deepEqual(ofAll({ service: 'billing', actor: 'tok-1' }), ids(4, 5));
  assert.deepEqual(ofAll({ service: 'billing', limit: 1 }), ids(4, 5));
  assert.deepEqual(ofAll({ result: 'succeeded', actor: 'alice' }), [event(6).requestId, event(2).requestId]);

  const many = new AuditLog({ file: null, maxBytes: 1024, retainedFiles: 0, ringSize: 500, onError: assert.fail });
  for (let i = 0; i < 600; i++) many.record(event(i));
  const recent = many.recent();
  assert.equal(recent.length, 100, 'default limit');
  assert.equal(recent[0]!.requestId, event(599).requestId);
  assert.equal(many.recent({ limit: 1000 }).length, 500);
  assert.equal(many.recent({ limit: 1000 }).at(-1)!.requestId, event(100).requestId);
});

test('rotation by size keeps at most retainedFiles rotated files, the newest in .1, each under maxBytes', async () => {
  await withDir(async ({ dir, errors, options }) => {
    const file = options({}).file!;
    const lineBytes = Buffer.byteLength(`${JSON.stringify(event(0))}\n`);
    const maxBytes = lineBytes * 3 + 10;
    const log = new AuditLog(options({ maxBytes, retainedFiles: 3 }));
    let n = 0;
    // Bursts of several sizes: some fit a file, some span several.
    for (const burst of [1, 2, 7, 1, 4, 10, 3, 1, 1, 5]) {
      for (let i = 0; i < burst; i++) log.record(event(n++));
      await log.flush();
      const rotated = rotatedFiles(dir);
      assert.ok(rotated.length <= 3, `never more than 3 rotated files, got ${rotated.join(', ')}`);
      for (const name of ['audit.log', ...rotated]) {
        assert.ok(statSync(join(dir, name)).size <= maxBytes, `${name} within maxBytes`);
        assert.equal(mode(join(dir, name)), 0o600, `${name} mode`);
      }
    }
    await log.close();

    assert.deepEqual(rotatedFiles(dir), ['audit.log.1', 'audit.log.2', 'audit.log.3']);
    // Oldest to newest: .3, .2, .1, then the current file ending with the last event.
    const chain = [`${file}.3`, `${file}.2`, `${file}.1`, file].flatMap(requestIds);
    assert.equal(chain.at(-1), event(n - 1).requestId);
    assert.deepEqual(chain, ids(n - chain.length, n), 'the kept files hold the newest events, in order');
    assert.equal(requestIds(`${file}.1`).length, 3, 'rotated files are full');
    assert.deepEqual(errors, []);
  });
});

test('with enough retention no event is lost or duplicated across rotated files', async () => {
  await withDir(async ({ dir, errors, options }) => {
    const file = options({}).file!;
    const lineBytes = Buffer.byteLength(`${JSON.stringify(event(0))}\n`);
    const log = new AuditLog(options({ maxBytes: lineBytes * 4, retainedFiles: 1000 }));
    const total = 240;
    for (let i = 0; i < total; i++) {
      log.record(event(i));
      // Mix single-event writes with batches arriving together.
      if (i % 37 === 0) await log.flush();
    }
    await log.close();

    const rotated = rotatedFiles(dir);
    assert.equal(rotated.length, total / 4 - 1);
    const all = [...rotated.reverse().map((name) => join(dir, name)), file].flatMap(requestIds);
    assert.equal(all.length, total);
    assert.equal(new Set(all).size, total);
    assert.deepEqual(all, ids(0, total));
    assert.deepEqual(errors, []);
  });
});

test('retainedFiles 0 replaces the current file, and leftovers beyond retention are deleted', async () => {
  await withDir(async ({ dir, errors, options }) => {
    const file = options({}).file!;
    for (const n of [1, 2, 3, 4]) writeFileSync(`${file}.${n}`, 'old\n');
    const lineBytes = Buffer.byteLength(`${JSON.stringify(event(0))}\n`);
    const none = new AuditLog(options({ maxBytes: lineBytes * 2, retainedFiles: 0 }));
    for (let i = 0; i < 5; i++) none.record(event(i));
    await none.close();
    assert.deepEqual(readdirSync(dir), ['audit.log']);
    assert.deepEqual(requestIds(file), ids(4, 5));
    assert.equal(mode(file), 0o600);

    for (const n of [1, 2, 3, 4]) writeFileSync(`${file}.${n}`, 'old\n');
    const two = new AuditLog(options({ maxBytes: lineBytes * 2, retainedFiles: 2 }));
    for (let i = 5; i < 8; i++) two.record(event(i));
    await two.close();
    assert.deepEqual(rotatedFiles(dir), ['audit.log.1', 'audit.log.2']);
    assert.deepEqual(requestIds(`${file}.1`), ids(4, 6));
    assert.deepEqual(requestIds(file), ids(6, 8));
    assert.deepEqual(errors, []);
  });
});

test('a gap in the rotated files (an interrupted rotation, a manual delete) never costs an older file', async () => {
  await withDir(async ({ dir, errors, options }) => {
    const file = options({}).file!;
    for (const n of [1, 2, 4]) writeFileSync(`${file}.${n}`, `${JSON.stringify({ old: n })}\n`);
    const lineBytes = Buffer.byteLength(`${JSON.stringify(event(0))}\n`);
    const log = new AuditLog(options({ maxBytes: lineBytes, retainedFiles: 5 }));
    log.record(event(0));
    log.record(event(1));
    await log.close();
    assert.deepEqual(rotatedFiles(dir), ['audit.log.1', 'audit.log.2', 'audit.log.3', 'audit.log.4']);
    assert.deepEqual(requestIds(`${file}.1`), ids(0, 1));
    assert.deepEqual(lines(`${file}.2`), [{ old: 1 }]);
    assert.deepEqual(lines(`${file}.3`), [{ old: 2 }]);
    assert.deepEqual(lines(`${file}.4`), [{ old: 4 }]);
    assert.deepEqual(requestIds(file), ids(1, 2));
    assert.deepEqual(errors, []);
  });
});

test('an event larger than maxBytes is written alone into a fresh file', async () => {
  await withDir(async ({ errors, options }) => {
    const file = options({}).file!;
    const log = new AuditLog(options({ maxBytes: 400, retainedFiles: 5 }));
    log.record(event(0));
    log.record(event(1, { reason: 'x'.repeat(1000) }));
    log.record(event(2));
    await log.close();
    assert.deepEqual(requestIds(`${file}.2`), ids(0, 1));
    assert.deepEqual(requestIds(`${file}.1`), ids(1, 2));
    assert.equal(lines(`${file}.1`)[0]!.reason, 'x'.repeat(1000));
    assert.deepEqual(requestIds(file), ids(2, 3));
    assert.deepEqual(errors, []);
  });
});

test('a missing directory is created with mode 0700 and the file with mode 0600', async () => {
  await withDir(async ({ dir, errors, options }) => {
    const nested = join(dir, 'data', 'audit');
    const log = new AuditLog(options({ file: join(nested, 'audit.log') }));
    log.record(event(0));
    await log.close();
    assert.equal(mode(nested), 0o700);
    assert.equal(mode(join(nested, 'audit.log')), 0o600);
    assert.deepEqual(errors, []);
  });
});

test('a hostile string cannot forge a line', async () => {
  await withDir(async ({ errors, options }) => {
    const file = options({}).file!;
    const forged = `${JSON.stringify(event(99))}`;
    const hostile = `evil"\n${forged}\r\n\u2028${forged}\u2029\u0085\\"}\0`;
    const log = new AuditLog(options({}));
    log.record(event(0, { service: hostile, reason: hostile, actor: { kind: 'user', id: hostile, role: null } }));
    log.record(event(1));
    await log.close();
    const text = readFileSync(file, 'utf8');
    assert.equal(text.split('\n').length, 3, 'two lines and the final newline');
    assert.ok(!/[\r\u2028\u2029\u0085\0]/.test(text), 'no raw line breaks of any kind');
    const written = lines(file);
    assert.equal(written[0]!.service, hostile);
    assert.equal((written[0]!.actor as { id: string }).id, hostile);
    assert.deepEqual(
      written.map((line) => line.requestId),
      ids(0, 2),
    );
    assert.deepEqual(errors, []);
  });
});

test('record() after close does not throw and only reaches the ring', async () => {
  await withDir(async ({ errors, options }) => {
    const file = options({}).file!;
    const log = new AuditLog(options({}));
    log.record(event(0));
    await log.close();
    log.record(event(1));
    await log.flush();
    await log.close();
    assert.deepEqual(requestIds(file), ids(0, 1));
    assert.deepEqual(
      log.recent().map((e) => e.requestId),
      ids(0, 2).reverse(),
    );
    assert.deepEqual(errors, []);
  });
});

test('an unwritable path is reported through onError, never thrown, and the ring still works', async () => {
  await withDir(async ({ dir, errors, options }) => {
    const blocker = join(dir, 'blocker');
    writeFileSync(blocker, 'a file where the directory should be');
    const file = join(blocker, 'audit.log');
    const log = new AuditLog(options({ file }));
    log.record(event(0));
    log.record(event(1));
    await log.flush();
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /audit log .*blocker/);

    log.record(event(2));
    await log.flush();
    assert.equal(errors.length, 1, 'a persisting failure is reported once, not at every retry');
    assert.deepEqual(
      log.recent().map((e) => e.requestId),
      ids(0, 3).reverse(),
    );

    // Once the path becomes usable, the waiting events are written in order.
    rmSync(blocker);
    log.record(event(3));
    await log.flush();
    assert.deepEqual(requestIds(file), ids(0, 4));
    await log.close();
    assert.equal(errors.length, 1);
  });
});

test('events that can never be written are reported at close', async () => {
  await withDir(async ({ dir, errors, options }) => {
    const blocker = join(dir, 'blocker');
    writeFileSync(blocker, '');
    const throwing = new AuditLog(
      options({
        file: join(blocker, 'audit.log'),
        onError: (error) => {
          errors.push(error);
          throw new Error('a broken error handler');
        },
      }),
    );
    throwing.record(event(0));
    throwing.record(event(1));
    await throwing.close();
    throwing.record(event(2));
    assert.equal(errors.length, 2);
    assert.match(errors[1]!.message, /2 events were never written/);
    assert.equal(throwing.recent().length, 3);
  });
});

test('a stalled disk keeps the pending buffer bounded: the oldest events are dropped, counted and noted', async () => {
  await withDir(async ({ errors, options }) => {
    const file = options({}).file!;
    const log = new AuditLog(options({ ringSize: 10, maxBytes: 64 * 1024 * 1024 }));
    // Nothing is written until this synchronous burst yields, as with a disk that stalls.
    const total = 12_000;
    for (let i = 0; i < total; i++) log.record(event(i));
    assert.equal(errors.length, 1, 'the overflow is reported once');
    assert.match(errors[0]!.message, /dropping the oldest/);
    await log.close();

    const written = lines(file);
    const [marker, ...events] = written;
    assert.equal(marker!.action, 'audit:dropped');
    assert.equal(marker!.dropped, 2_000);
    assert.deepEqual(
      events.map((line) => line.requestId),
      ids(2_000, total),
      'the newest 10,000 survive, in order',
    );
    assert.equal(log.recent().length, 10);
    assert.equal(errors.length, 1);

    // Writing resumed: a later burst over the bound is reported again, with its own marker.
    const again = new AuditLog(options({ ringSize: 10, maxBytes: 64 * 1024 * 1024 }));
    for (let i = 0; i < 10_001; i++) again.record(event(i));
    await again.close();
    assert.equal(errors.length, 2);
    const appended = lines(file).slice(written.length);
    assert.equal(appended[0]!.dropped, 1);
    assert.equal(appended.length, 10_001);
  });
});

test('the pending buffer is also bounded in bytes', async () => {
  await withDir(async ({ errors, options }) => {
    const file = options({}).file!;
    const log = new AuditLog(options({ ringSize: 10, maxBytes: 64 * 1024 * 1024 }));
    const total = 3_000;
    const reason = 'r'.repeat(4096);
    for (let i = 0; i < total; i++) log.record(event(i, { reason }));
    await log.close();
    assert.equal(errors.length, 1);
    const [marker, ...events] = lines(file);
    const dropped = marker!.dropped as number;
    assert.ok(dropped > 0);
    assert.equal(dropped + events.length, total, 'every event is either written or counted as dropped');
    assert.deepEqual(
      events.map((line) => line.requestId),
      ids(dropped, total),
    );
    const markerBytes = readFileSync(file, 'utf8').indexOf('\n') + 1;
    // The writer's bound is 8 MiB of serialised events.
    assert.ok(statSync(file).size - markerBytes <= 8 * 1024 * 1024);
    assert.ok(!existsSync(`${file}.1`));
  });
});
