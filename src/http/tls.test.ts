import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import Fastify from 'fastify';
import { createTestPki, type TestPki } from '../../test/helpers/certs.ts';
import { clientCertificateSubject, TlsReloader, tlsServerOptions, type ClientAuthMode, type TlsSettings } from './tls.ts';

function settingsFor(pki: TestPki, clientAuth: ClientAuthMode = 'none'): TlsSettings {
  return { certFile: pki.serverCertFile, keyFile: pki.serverKeyFile, clientCaFile: clientAuth === 'none' ? null : pki.caFile, clientAuth };
}

/** A fastify server on a loopback port whose /whoami answers the client certificate's subject. */
async function serve(t: TestContext, settings: TlsSettings): Promise<{ port: number; server: tls.Server }> {
  const app = Fastify({ https: tlsServerOptions(settings) });
  app.get('/whoami', async (request) => ({ subject: clientCertificateSubject(request.raw.socket) }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => app.close());
  return { port: (app.server.address() as AddressInfo).port, server: app.server };
}

interface ClientIdentity {
  readonly certFile: string;
  readonly keyFile: string;
}

interface ClientOptions {
  readonly ca?: string;
  readonly identity?: ClientIdentity;
  readonly servername?: string;
}

/** GET /whoami on a connection of its own (no agent, so no TLS session reuse between calls). */
function whoami(port: number, client: ClientOptions): Promise<{ status: number; subject: string | null }> {
  return new Promise((resolve, reject) => {
    const request = https.get(
      {
        host: '127.0.0.1',
        port,
        path: '/whoami',
        agent: false,
        ca: client.ca,
        cert: client.identity && readFileSync(client.identity.certFile),
        key: client.identity && readFileSync(client.identity.keyFile),
        servername: client.servername,
      },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, subject: (JSON.parse(body) as { subject: string | null }).subject }));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
  });
}

/** A TLS connection that verified the server against `ca`; the caller ends it. */
function connect(port: number, ca: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** The SHA-256 fingerprint of the certificate a new handshake gets. */
async function servedFingerprint(port: number, ca: string): Promise<string> {
  const socket = await connect(port, ca);
  const fingerprint = socket.getPeerCertificate().fingerprint256;
  socket.destroy();
  return fingerprint;
}

async function eventually(check: () => boolean | Promise<boolean>, message: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(message);
    await sleep(50);
  }
}

function startReloader(t: TestContext, server: tls.Server, settings: TlsSettings) {
  const reloads: string[] = [];
  const errors: Error[] = [];
  const reloader = new TlsReloader(server, settings, { onReload: (fingerprint) => reloads.push(fingerprint), onError: (error) => errors.push(error) });
  reloader.start();
  t.after(() => reloader.close());
  return { reloads, errors };
}

test('HTTPS is served to clients that trust the CA, for 127.0.0.1 and localhost, and refused by clients that do not', async (t) => {
  const pki = await createTestPki(t);
  if (pki === null) return;
  const { port } = await serve(t, settingsFor(pki));
  const ca = readFileSync(pki.caFile, 'utf8');
  assert.deepEqual(await whoami(port, { ca }), { status: 200, subject: null });
  assert.deepEqual(await whoami(port, { ca, servername: 'localhost' }), { status: 200, subject: null });
  await assert.rejects(whoami(port, {}), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
  await assert.rejects(whoami(port, { ca, servername: 'elsewhere.example' }), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
});

test("clientAuth 'required' admits only clients with a certificate from the client CA, and names them", async (t) => {
  const pki = await createTestPki(t);
  if (pki === null) return;
  const { port } = await serve(t, settingsFor(pki, 'required'));
  const ca = readFileSync(pki.caFile, 'utf8');
  const [valid, foreign] = await Promise.all([pki.clientCert('/CN=orders-bot/O=Acme'), pki.foreignClientCert('/CN=orders-bot/O=Acme')]);
  // In TLS 1.3 the client finishes its side of the handshake before the server judges its certificate, so the refusal shows on the first read:
  // OpenSSL itself refuses a missing certificate with an alert, while node checks the chain after the handshake and drops the connection without one.
  await assert.rejects(whoami(port, { ca }), { code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' });
  await assert.rejects(whoami(port, { ca, identity: foreign }), { code: /^(ECONNRESET|EPIPE)$/ });
  assert.deepEqual(await whoami(port, { ca, identity: valid }), { status: 200, subject: 'CN=orders-bot,O=Acme' });
});

test("clientAuth 'optional' serves clients without a certificate and names only verified ones", async (t) => {
  const pki = await createTestPki(t);
  if (pki === null) return;
  const { port } = await serve(t, settingsFor(pki, 'optional'));
  const ca = readFileSync(pki.caFile, 'utf8');
  const [valid, foreign] = await Promise.all([pki.clientCert('/CN=orders-bot/O=Acme'), pki.foreignClientCert('/CN=impostor/O=Acme')]);
  assert.deepEqual(await whoami(port, { ca }), { status: 200, subject: null });
  assert.deepEqual(await whoami(port, { ca, identity: valid }), { status: 200, subject: 'CN=orders-bot,O=Acme' });
  assert.deepEqual(await whoami(port, { ca, identity: foreign }), { status: 200, subject: null }, 'a certificate that did not verify names nobody');
});

test('a certificate reissued at the same paths serves new handshakes, while an open connection keeps the old one', async (t) => {
  const pki = await createTestPki(t);
  if (pki === null) return;
  const settings = settingsFor(pki);
  const { port, server } = await serve(t, settings);
  const { reloads, errors } = startReloader(t, server, settings);
  const ca = readFileSync(pki.caFile, 'utf8');
  const before = await servedFingerprint(port, ca);
  const open = await connect(port, ca);
  t.after(() => open.destroy());

  const fresh = await pki.reissueServerCert(settings.certFile, settings.keyFile);
  assert.notEqual(fresh, before);
  await eventually(async () => (await servedFingerprint(port, ca)) === fresh, 'new handshakes never got the reissued certificate');
  assert.deepEqual(reloads, [fresh]);
  assert.deepEqual(errors, []);

  assert.equal(open.getPeerCertificate().fingerprint256, before);
  const answer = new Promise<string>((resolve) => {
    let text = '';
    open.setEncoding('utf8');
    open.on('data', (chunk: string) => (text += chunk));
    open.on('end', () => resolve(text));
  });
  open.write('GET /whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
  assert.match(await answer, /^HTTP\/1\.1 200 /, 'the connection made before the reload still works');
});

test('a broken replacement keeps the previous certificate serving and is reported once; a good one then reloads', async (t) => {
  const pki = await createTestPki(t);
  if (pki === null) return;
  const settings = settingsFor(pki);
  const { port, server } = await serve(t, settings);
  const { reloads, errors } = startReloader(t, server, settings);
  const ca = readFileSync(pki.caFile, 'utf8');
  const before = await servedFingerprint(port, ca);

  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  writeFileSync(settings.keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  await eventually(() => errors.length >= 1, 'a key that does not match the certificate was not reported');
  assert.match(errors[0]!.message, /still serving the previous certificate: the TLS private key file .*server\.key does not match the certificate in .*server\.pem/);
  assert.equal(await servedFingerprint(port, ca), before);

  writeFileSync(settings.certFile, 'garbage\n');
  await eventually(() => errors.length >= 2, 'a garbage certificate was not reported');
  assert.match(errors[1]!.message, /the TLS certificate file .*server\.pem is not PEM/);
  assert.equal(await servedFingerprint(port, ca), before);

  // Longer than the 1 s poll: the same broken files seen again by polling are not reported again.
  await sleep(1300);
  assert.equal(errors.length, 2, errors.map((error) => error.message).join('\n'));
  assert.deepEqual(reloads, []);

  const fresh = await pki.reissueServerCert(settings.certFile, settings.keyFile);
  await eventually(() => reloads.length > 0, 'a repaired pair was not reloaded');
  assert.deepEqual(reloads, [fresh]);
  assert.equal(await servedFingerprint(port, ca), fresh);
});

test('a Kubernetes-style secret update, which swaps the ..data symlink, is reloaded', async (t) => {
  const pki = await createTestPki(t);
  if (pki === null) return;
  // The layout kubelet writes: tls.crt -> ..data/tls.crt, ..data -> ..<version>, updated by renaming a new ..data link into place.
  const mount = join(pki.dir, 'secret');
  mkdirSync(join(mount, '..v1'), { recursive: true });
  mkdirSync(join(mount, '..v2'));
  copyFileSync(pki.serverCertFile, join(mount, '..v1', 'tls.crt'));
  copyFileSync(pki.serverKeyFile, join(mount, '..v1', 'tls.key'));
  symlinkSync('..v1', join(mount, '..data'));
  symlinkSync(join('..data', 'tls.crt'), join(mount, 'tls.crt'));
  symlinkSync(join('..data', 'tls.key'), join(mount, 'tls.key'));
  const settings: TlsSettings = { certFile: join(mount, 'tls.crt'), keyFile: join(mount, 'tls.key'), clientCaFile: null, clientAuth: 'none' };
  const { port, server } = await serve(t, settings);
  const { reloads, errors } = startReloader(t, server, settings);
  const ca = readFileSync(pki.caFile, 'utf8');

  const fresh = await pki.reissueServerCert(join(mount, '..v2', 'tls.crt'), join(mount, '..v2', 'tls.key'));
  symlinkSync('..v2', join(mount, '..data_tmp'));
  renameSync(join(mount, '..data_tmp'), join(mount, '..data'));
  await eventually(async () => (await servedFingerprint(port, ca)) === fresh, 'the swapped secret was never served');
  assert.deepEqual(reloads, [fresh]);
  assert.deepEqual(errors, []);
});

test('tlsServerOptions builds the server options and names the file and the problem when it cannot', async (t) => {
  const pki = await createTestPki(t);
  if (pki === null) return;
  const none = tlsServerOptions(settingsFor(pki));
  assert.equal(none.minVersion, 'TLSv1.2');
  assert.equal(none.requestCert, undefined);
  assert.equal(none.ca, undefined);
  const required = tlsServerOptions(settingsFor(pki, 'required'));
  assert.deepEqual([required.requestCert, required.rejectUnauthorized, required.ca], [true, true, readFileSync(pki.caFile, 'utf8')]);
  const optional = tlsServerOptions(settingsFor(pki, 'optional'));
  assert.deepEqual([optional.requestCert, optional.rejectUnauthorized], [true, false]);

  const missing = join(pki.dir, 'missing.pem');
  assert.throws(() => tlsServerOptions({ ...settingsFor(pki), certFile: missing }), {
    message: `cannot read the TLS certificate file ${missing}: ENOENT: no such file or directory, open '${missing}'`,
  });
  const garbage = join(pki.dir, 'garbage.pem');
  writeFileSync(garbage, 'not a key\n');
  assert.throws(() => tlsServerOptions({ ...settingsFor(pki), keyFile: garbage }), {
    message: `the TLS private key file ${garbage} is not PEM: it has no "-----BEGIN ... PRIVATE KEY-----" block`,
  });
  assert.throws(() => tlsServerOptions({ ...settingsFor(pki, 'optional'), clientCaFile: garbage }), /the TLS client CA file .*garbage\.pem is not PEM/);
  const client = await pki.clientCert('/CN=someone');
  assert.throws(() => tlsServerOptions({ ...settingsFor(pki), keyFile: client.keyFile }), /the TLS private key file .*client-\d+\.key does not match the certificate in .*server\.pem/);
  assert.throws(() => tlsServerOptions({ ...settingsFor(pki), clientAuth: 'required' }), /TLS client authentication 'required' needs a client CA file/);
});

test('close() releases every watcher and the pending settle timer', async (t) => {
  const pki = await createTestPki(t);
  if (pki === null) return;
  const settings = settingsFor(pki, 'required');
  const server = tls.createServer(tlsServerOptions(settings));
  const held = () => {
    const counts = { FSEventWrap: 0, StatWatcher: 0, Timeout: 0 };
    for (const resource of process.getActiveResourcesInfo()) if (resource in counts) counts[resource as keyof typeof counts]++;
    return counts;
  };
  const baseline = held();
  const calls: string[] = [];
  const reloader = new TlsReloader(server, settings, { onReload: () => calls.push('reload'), onError: (error) => calls.push(error.message) });
  reloader.start();
  // A failed assertion must not leave watchers that keep the test process alive.
  t.after(() => reloader.close());
  const watching = held();
  assert.equal(watching.FSEventWrap, baseline.FSEventWrap + 1, 'one directory watch for the three files in one directory');
  assert.equal(watching.StatWatcher, baseline.StatWatcher + 3, 'one poller per file');

  writeFileSync(settings.keyFile, `${readFileSync(settings.keyFile, 'utf8')}\n`);
  // The watch event arrives asynchronously, later on a loaded machine.
  for (let waited = 0; held().Timeout === baseline.Timeout && waited < 3000; waited += 20) await sleep(20);
  assert.equal(held().Timeout, baseline.Timeout + 1, 'the change armed the settle timer');
  reloader.close();
  // Let the closed handles finish closing, and outlast the settle delay a reload would have waited for.
  await sleep(400);
  assert.deepEqual(held(), baseline, 'nothing of the reloader keeps the process alive');
  assert.deepEqual(calls, [], 'no reload after close()');
});
