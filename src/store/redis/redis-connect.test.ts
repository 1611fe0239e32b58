import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { Catalog } from '../../core/catalog.ts';
import { testInstance } from '../../core/fixtures.ts';
import { scratchDir, startRedis, type RedisServer } from '../../../test/helpers/backends.ts';
import { freePort } from '../../../test/helpers/process.ts';
import { StoreUnavailableError } from '../store.ts';
import { createRedisStore } from './redis-store.ts';
import { openReplica } from './testing.ts';

const replica = (url: string, extra: { tlsCaFile?: string } = {}) =>
  createRedisStore({ url, instanceId: 'r', leaderLeaseMs: 1000, leaderRenewMs: 250, onWarning: () => {}, ...extra });

/** open() must fail, quickly, with a message that names the cause; the password never appears in it. */
async function refusedOpen(url: string, expected: RegExp, extra: { tlsCaFile?: string } = {}): Promise<void> {
  const started = Date.now();
  const catalog = new Catalog(10);
  const error = await replica(url, extra).open(catalog, catalog).then(
    () => assert.fail('open() succeeded'),
    (err: unknown) => err,
  );
  assert.ok(error instanceof StoreUnavailableError, `a StoreUnavailableError, not ${String(error)}`);
  assert.match(error.message, expected);
  assert.doesNotMatch(error.message, /s3cret|wrong-one/, 'the password is not in the message');
  assert.ok(Date.now() - started < 2000, `refused after ${Date.now() - started} ms`);
}

test('password: the right one connects; a wrong or missing one makes open() fail at once, saying why', async (t) => {
  const server = await startRedis(t, { password: 's3cret' });
  if (server === null) return;
  const { store, catalog } = await openReplica(t, server.url);
  const stored = await store.upsert(testInstance('api', 'a'), Date.now());
  assert.ok(catalog.get(stored));

  const wrong = server.url.replace('s3cret', 'wrong-one');
  await refusedOpen(wrong, /WRONGPASS/);
  await refusedOpen(server.url.replace(':s3cret@', ''), /NOAUTH/);
});

test('open() on a port where nothing listens fails with StoreUnavailableError within 10 s', async () => {
  const url = `redis://127.0.0.1:${await freePort()}`;
  const started = Date.now();
  const catalog = new Catalog(10);
  await assert.rejects(replica(url).open(catalog, catalog), (err: unknown) => {
    assert.ok(err instanceof StoreUnavailableError);
    assert.match(err.message, new RegExp(`cannot connect to ${url}.*ECONNREFUSED`));
    return true;
  });
  const took = Date.now() - started;
  assert.ok(took <= 10_000, `open() gave up after ${took} ms`);
});

test('rediss:// with a private CA: trusted with tlsCaFile, refused at once without it', async (t) => {
  const pki = makePki(t);
  if (pki === null) return;
  let server: RedisServer | null;
  try {
    server = await startRedis(t, { tls: pki });
  } catch (err) {
    if (!/tls/i.test((err as Error).message)) throw err;
    const message = `this redis-server was built without TLS support: the rediss:// test did not run (${(err as Error).message.split('\n')[0]})`;
    process.stderr.write(`\n!!! SKIPPED: ${message}\n\n`);
    t.skip(message);
    return;
  }
  if (server === null) return;
  assert.match(server.url, /^rediss:\/\//);
  const { store, catalog } = await openReplica(t, server.url, { tlsCaFile: pki.caFile });
  const stored = await store.upsert(testInstance('api', 'tls'), Date.now());
  assert.ok(catalog.get(stored));

  await refusedOpen(server.url, /self[- ]signed|certificate/i);
  const missing = replica(server.url, { tlsCaFile: join(pki.dir, 'nope.pem') });
  const catalog2 = new Catalog(10);
  await assert.rejects(missing.open(catalog2, catalog2), /cannot read the TLS CA file/);
});

interface Pki {
  readonly dir: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/** A throwaway CA and a server certificate for 127.0.0.1 it signed, made with the openssl CLI. */
function makePki(t: TestContext): Pki | null {
  if (spawnSync('sh', ['-c', 'command -v openssl']).status !== 0) {
    const message = 'openssl is not installed: the rediss:// test did not run';
    if (process.env['MAXINE_TEST_BACKENDS'] === 'required') throw new Error(message);
    process.stderr.write(`\n!!! SKIPPED: ${message}\n\n`);
    t.skip(message);
    return null;
  }
  const dir = scratchDir(t, 'redis-tls');
  const path = (name: string) => join(dir, name);
  writeFileSync(path('san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', path('ca.key'), '-out', path('ca.pem'), '-days', '1', '-subj', '/CN=maxine test CA']);
  openssl(['req', ...ec, '-keyout', path('server.key'), '-out', path('server.csr'), '-subj', '/CN=127.0.0.1']);
  openssl([
    'x509', '-req', '-in', path('server.csr'), '-CA', path('ca.pem'), '-CAkey', path('ca.key'), '-CAcreateserial',
    '-out', path('server.pem'), '-days', '1', '-extfile', path('san.ext'),
  ]);
  return { dir, caFile: path('ca.pem'), certFile: path('server.pem'), keyFile: path('server.key') };
}

function openssl(args: string[]): void {
  const result = spawnSync('openssl', args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`openssl ${args[0]} failed: ${result.stderr}`);
}
