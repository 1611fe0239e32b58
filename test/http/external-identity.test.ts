import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import { decodeJwt } from 'jose';
import { loadConfig } from '../../src/config/index.ts';
import { startMaxine, type RunningMaxine } from '../../src/server.ts';
import { createTestPki, type TestPki } from '../helpers/certs.ts';
import { call, readResponse, startTestMaxine, TEST_ADMIN, type TestMaxine, type TestResponse } from '../helpers/maxine.ts';
import { startOidcProvider, type TestOidcProvider } from '../helpers/oidc-provider.ts';
import { parseScrape, valueOf } from '../helpers/prometheus.ts';

/**
 * External identities end to end, through a real Maxine: bearer tokens
 * from a real OpenID provider, and client certificates over real TLS.
 * Nothing is mocked.
 */

const ADMIN_CLIENT = 'platform-admin-client'; // groups: platform-admins (mapped to admin)
const ORDERS_CLIENT = 'orders-team-client'; // groups: orders-team (no role)
const PLAIN_CLIENT = 'plain-client'; // no groups claim
const SHORT_CLIENT = 'short-lived-client'; // 1 s tokens

const REGISTER = '/api/maxine/serviceops/register';
const discoverPath = (service: string) => `/api/maxine/serviceops/discover?serviceName=${service}&format=json`;
const registration = (serviceName: string, nodeName = 'node-1') => ({ hostName: '127.0.0.1', nodeName, serviceName, port: 9000 });
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('OIDC bearer tokens from a real provider, through a real Maxine', () => {
  let idp: TestOidcProvider;
  let otherIdp: TestOidcProvider;
  let maxine: TestMaxine;
  let adminToken: string; // client A
  let ordersToken: string; // client B
  let plainToken: string; // client C
  let shortToken: string;
  let shortIssuedAt: number;

  before(async () => {
    const clients = {
      [ADMIN_CLIENT]: { groups: ['platform-admins'] },
      [ORDERS_CLIENT]: { groups: ['orders-team'] },
      [PLAIN_CLIENT]: {},
      [SHORT_CLIENT]: { groups: ['platform-admins'], accessTokenTtlSec: 1 },
    };
    [idp, otherIdp] = await Promise.all([startOidcProvider(clients), startOidcProvider(clients)]);
    maxine = await startTestMaxine({
      oidcIssuer: idp.issuer,
      oidcAudience: 'maxine',
      oidcRoleMap: 'platform-admins=admin',
      oidcClockSkewSec: 0,
      requireClientAuth: true,
    });
    // Issued first, so that its wait for expiry overlaps the other tests.
    shortIssuedAt = Date.now();
    shortToken = await idp.token(SHORT_CLIENT);
    [adminToken, ordersToken, plainToken] = await Promise.all([idp.token(ADMIN_CLIENT), idp.token(ORDERS_CLIENT), idp.token(PLAIN_CLIENT)]);
  });

  after(async () => {
    await maxine?.stop();
    await Promise.all([idp?.close(), otherIdp?.close()]);
  });

  test('a token whose group maps to admin: whoami names the OIDC client, and admin routes open', async () => {
    const whoami = await maxine.call('GET', '/api/maxine/whoami', undefined, bearer(adminToken));
    assert.equal(whoami.status, 200, whoami.text);
    assert.equal(whoami.json.kind, 'oidc');
    assert.equal(whoami.json.id, ADMIN_CLIENT);
    assert.equal(whoami.json.role, 'admin');
    assert.deepEqual(whoami.json.groups, ['platform-admins']);
    assert.equal(whoami.json.expiresAt, new Date((decodeJwt(adminToken).exp as number) * 1000).toISOString());
    const users = await maxine.call('GET', '/api/maxine/users', undefined, bearer(adminToken));
    assert.equal(users.status, 200, users.text);
  });

  test('a token without groups authenticates but carries no role: 403 on admin routes and on register', async () => {
    const whoami = await maxine.call('GET', '/api/maxine/whoami', undefined, bearer(plainToken));
    assert.equal(whoami.status, 200, whoami.text);
    assert.deepEqual({ kind: whoami.json.kind, id: whoami.json.id, role: whoami.json.role, groups: whoami.json.groups }, {
      kind: 'oidc',
      id: PLAIN_CLIENT,
      role: null,
      groups: [],
    });
    assert.equal((await maxine.call('GET', '/api/maxine/users', undefined, bearer(plainToken))).status, 403);
    const register = await maxine.call('POST', REGISTER, registration('orders-api'), bearer(plainToken));
    assert.equal(register.status, 403, register.text);
    assert.equal((await maxine.call('GET', discoverPath('orders-api'), undefined, bearer(plainToken))).status, 403);
  });

  test('ACL rules naming an OIDC subject and an OIDC group grant exactly what they say', async () => {
    const subjectRule = { effect: 'allow', principal: `oidc:${PLAIN_CLIENT}`, actions: ['register', 'discover'], services: 'orders-*' };
    // Set by the OIDC admin itself: the mapped role is a real admin.
    const put = await maxine.call('PUT', '/api/maxine/acl', { rules: [subjectRule] }, bearer(adminToken));
    assert.equal(put.status, 200, put.text);

    const registered = await maxine.call('POST', REGISTER, registration('orders-api'), bearer(plainToken));
    assert.equal(registered.status, 200, registered.text);
    assert.equal(registered.json.serviceName, 'orders-api');
    const discovered = await maxine.call('GET', discoverPath('orders-api'), undefined, bearer(plainToken));
    assert.equal(discovered.status, 200, discovered.text);
    assert.equal(discovered.json.nodeName, 'node-1');
    assert.equal((await maxine.call('POST', REGISTER, registration('payments'), bearer(plainToken))).status, 403);
    assert.equal((await maxine.call('GET', discoverPath('payments'), undefined, bearer(plainToken))).status, 403);

    // The orders team has no role and no rule yet.
    assert.equal((await maxine.call('GET', discoverPath('orders-api'), undefined, bearer(ordersToken))).status, 403);
    const groupRule = { effect: 'allow', principal: 'oidc-group:orders-team', actions: ['discover'], services: '*' };
    assert.equal((await maxine.call('PUT', '/api/maxine/acl', { rules: [subjectRule, groupRule] }, bearer(adminToken))).status, 200);
    const byGroup = await maxine.call('GET', discoverPath('orders-api'), undefined, bearer(ordersToken));
    assert.equal(byGroup.status, 200, byGroup.text);
    assert.equal(byGroup.json.nodeName, 'node-1');
    // discover only: the group rule does not let it register.
    assert.equal((await maxine.call('POST', REGISTER, registration('orders-api', 'node-2'), bearer(ordersToken))).status, 403);
  });

  test("a genuine token from another issuer is refused with 401, not mistaken for the configured provider's", async () => {
    const foreign = await otherIdp.token(ADMIN_CLIENT);
    const whoami = await maxine.call('GET', '/api/maxine/whoami', undefined, bearer(foreign));
    assert.equal(whoami.status, 401, whoami.text);
    assert.match(whoami.json.message, /issuer/);
    assert.equal((await maxine.call('GET', '/api/maxine/users', undefined, bearer(foreign))).status, 401);
  });

  test('a token from the right provider for another audience is refused with 401', async () => {
    const billing = await idp.token(ADMIN_CLIENT, 'urn:billing');
    assert.equal(decodeJwt(billing).aud, 'billing');
    const whoami = await maxine.call('GET', '/api/maxine/whoami', undefined, bearer(billing));
    assert.equal(whoami.status, 401, whoami.text);
    assert.match(whoami.json.message, /audience mismatch/);
    assert.equal((await maxine.call('GET', '/api/maxine/users', undefined, bearer(billing))).status, 401);
  });

  test('an expired token is refused with 401 (clock skew 0)', async () => {
    assert.equal((decodeJwt(shortToken).exp as number) - (decodeJwt(shortToken).iat as number), 1, 'the provider issued a 1 s token');
    await sleep(Math.max(0, shortIssuedAt + 2500 - Date.now()));
    const whoami = await maxine.call('GET', '/api/maxine/whoami', undefined, bearer(shortToken));
    assert.equal(whoami.status, 401, whoami.text);
    assert.match(whoami.json.message, /token expired/);
    assert.equal(whoami.headers.get('www-authenticate'), 'Bearer realm="maxine"');
    // The same client's fresh token (same groups) is fine: only the lifetime was the problem.
    // Token times are whole seconds, so a 1 s token minted late in a second is already expired at the
    // next one: mint it just after a second begins, leaving it most of a second to be checked in.
    await sleep(1000 - (Date.now() % 1000) + 20);
    const fresh = await maxine.call('GET', '/api/maxine/whoami', undefined, bearer(await idp.token(SHORT_CLIENT)));
    assert.equal(fresh.status, 200, fresh.text);
  });

  test("the audit ring records the OIDC client's refused registration with actor kind 'oidc'", async () => {
    const audit = await maxine.call('GET', `/api/actuator/audit?actor=${PLAIN_CLIENT}&result=denied&limit=100`, undefined, bearer(adminToken));
    assert.equal(audit.status, 200, audit.text);
    const events = audit.json.events as Array<{ actor: { kind: string; id: string; role: string | null }; action: string; service: string | null; status: number }>;
    const registers = events.filter((e) => e.action === 'register');
    assert.ok(registers.length >= 2, JSON.stringify(events));
    for (const event of registers) {
      assert.deepEqual(event.actor, { kind: 'oidc', id: PLAIN_CLIENT, role: null });
      assert.equal(event.status, 403);
    }
    assert.ok(registers.some((e) => e.service === 'payments'), 'the refusal on payments names the service');
  });
});

// ---------------------------------------------------------------------------
// TLS and mTLS
// ---------------------------------------------------------------------------

interface Identity {
  readonly certFile: string;
  readonly keyFile: string;
}

interface HttpsResponse extends TestResponse {
  /** The server certificate this connection got. */
  readonly fingerprint256: string;
}

/** One request on a connection of its own (no agent: no TLS session reuse between calls). */
function httpsCall(
  base: string,
  method: string,
  path: string,
  options: { ca?: string; identity?: Identity; body?: unknown; headers?: Record<string, string> } = {},
): Promise<HttpsResponse> {
  const url = new URL(base);
  const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
  const headers: Record<string, string> = { ...options.headers };
  if (payload !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(payload.length);
  }
  return new Promise((resolve, reject) => {
    const request = https.request(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        headers,
        agent: false,
        ca: options.ca,
        cert: options.identity && readFileSync(options.identity.certFile),
        key: options.identity && readFileSync(options.identity.keyFile),
      },
      (response) => {
        const fingerprint256 = (response.socket as tls.TLSSocket).getPeerCertificate().fingerprint256;
        readResponse(response).then((answer) => resolve({ ...answer, fingerprint256 }), reject);
      },
    );
    request.setTimeout(10_000, () => request.destroy(new Error(`${method} ${path} timed out`)));
    request.on('error', reject);
    request.end(payload);
  });
}

/** The SHA-256 fingerprint of the certificate a new handshake gets. */
function servedFingerprint(base: string, ca: string): Promise<string> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: url.hostname, port: Number(url.port), ca }, () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      socket.destroy();
      resolve(fingerprint);
    });
    socket.once('error', reject);
  });
}

interface TlsMaxine {
  readonly running: RunningMaxine;
  readonly url: string;
  close(): Promise<void>;
}

/** startTestMaxine's setup, for a server that speaks HTTPS (whose sign-in over plain HTTP would fail). */
async function startTlsMaxine(pki: TestPki, flags: Record<string, unknown>): Promise<TlsMaxine> {
  const dataDir = mkdtempSync(join(tmpdir(), 'maxine-tls-test-'));
  const config = loadConfig({
    flags: {
      host: '127.0.0.1',
      dataDir,
      logLevel: 'silent',
      adminUsername: TEST_ADMIN.userName,
      adminPassword: TEST_ADMIN.password,
      tlsCertFile: pki.serverCertFile,
      tlsKeyFile: pki.serverKeyFile,
      ...flags,
    },
    env: {},
  });
  let running: RunningMaxine;
  try {
    running = await startMaxine({ ...config, port: 0 });
  } catch (error) {
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    running,
    url: running.url,
    close: async () => {
      await running.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function signInAsAdmin(url: string, ca: string): Promise<string> {
  const signin = await httpsCall(url, 'POST', '/api/maxine/signin', { ca, body: TEST_ADMIN });
  assert.equal(signin.status, 200, signin.text);
  return signin.json.accessToken as string;
}

test('HTTPS: served with the configured certificate, never in plain HTTP, and a reissued certificate is picked up live', async (t) => {
  const pki = await createTestPki(t);
  if (pki === null) return;
  const ca = readFileSync(pki.caFile, 'utf8');
  const maxine = await startTlsMaxine(pki, {});
  try {
    assert.match(maxine.url, /^https:\/\/127\.0\.0\.1:\d+$/);

    await t.test('a client trusting the test CA gets /api/actuator/health over HTTPS', async () => {
      const health = await httpsCall(maxine.url, 'GET', '/api/actuator/health', { ca });
      assert.equal(health.status, 200, health.text);
      assert.equal(health.fingerprint256, new X509Certificate(readFileSync(pki.serverCertFile)).fingerprint256);
      await assert.rejects(httpsCall(maxine.url, 'GET', '/api/actuator/health'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    });

    await t.test('plain HTTP to the same port gets no answer', async (st) => {
      const plain = maxine.url.replace(/^https:/, 'http:');
      const outcome = await call(plain, 'GET', '/api/actuator/health').then(
        (response) => `answered ${response.status}`,
        (error: NodeJS.ErrnoException) => `failed: ${error.code ?? error.message}`,
      );
      st.diagnostic(`plain HTTP: ${outcome}`);
      assert.match(outcome, /^failed: /, `plain HTTP ${outcome}`);
    });

    await t.test('a certificate reissued at the same paths serves new connections within 5 s, without a restart', async () => {
      const before = await servedFingerprint(maxine.url, ca);
      const fresh = await pki.reissueServerCert(pki.serverCertFile, pki.serverKeyFile);
      assert.notEqual(fresh, before);
      const deadline = Date.now() + 5000;
      let seen = before;
      while (seen !== fresh && Date.now() < deadline) {
        await sleep(100);
        seen = await servedFingerprint(maxine.url, ca);
      }
      assert.equal(seen, fresh, 'new handshakes never got the reissued certificate');
      const health = await httpsCall(maxine.url, 'GET', '/api/actuator/health', { ca });
      assert.equal(health.status, 200, health.text);
      assert.equal(health.fingerprint256, fresh);
    });
  } finally {
    await maxine.close();
  }
});

test("mTLS 'optional': a verified client certificate is a principal that ACL rules can name; anything else is anonymous", async (t) => {
  const pki = await createTestPki(t);
  if (pki === null) return;
  const ca = readFileSync(pki.caFile, 'utf8');
  const [bot, foreign] = await Promise.all([pki.clientCert('/CN=orders-bot/O=Acme'), pki.foreignClientCert('/CN=orders-bot/O=Acme')]);
  const maxine = await startTlsMaxine(pki, { tlsClientAuth: 'optional', tlsClientCaFile: pki.caFile, requireClientAuth: true });
  try {
    const admin = await signInAsAdmin(maxine.url, ca);

    await t.test('no client certificate: anonymous, so whoami is 401', async () => {
      const whoami = await httpsCall(maxine.url, 'GET', '/api/maxine/whoami', { ca });
      assert.equal(whoami.status, 401, whoami.text);
      const health = await httpsCall(maxine.url, 'GET', '/api/actuator/health', { ca });
      assert.equal(health.status, 200, health.text);
    });

    await t.test("a CA-signed certificate: whoami answers kind 'cert' and its subject", async () => {
      const whoami = await httpsCall(maxine.url, 'GET', '/api/maxine/whoami', { ca, identity: bot });
      assert.equal(whoami.status, 200, whoami.text);
      assert.deepEqual(whoami.json, { kind: 'cert', id: 'CN=orders-bot,O=Acme', role: null, groups: [], expiresAt: null });
    });

    await t.test('the certificate principal may register only once an ACL rule names it, and only what the rule covers', async () => {
      const refused = await httpsCall(maxine.url, 'POST', REGISTER, { ca, identity: bot, body: registration('orders-api') });
      assert.equal(refused.status, 403, refused.text);
      const rule = { effect: 'allow', principal: 'cert:CN=orders-bot,O=Acme', actions: ['register'], services: 'orders-*' };
      const put = await httpsCall(maxine.url, 'PUT', '/api/maxine/acl', { ca, body: { rules: [rule] }, headers: bearer(admin) });
      assert.equal(put.status, 200, put.text);
      const registered = await httpsCall(maxine.url, 'POST', REGISTER, { ca, identity: bot, body: registration('orders-api') });
      assert.equal(registered.status, 200, registered.text);
      assert.equal(registered.json.serviceName, 'orders-api');
      const payments = await httpsCall(maxine.url, 'POST', REGISTER, { ca, identity: bot, body: registration('payments') });
      assert.equal(payments.status, 403, payments.text);
      // Heartbeats take the fast lane over HTTPS too, with the certificate principal decided as the route decides it.
      const laneAnswers = async () => {
        const scraped = await httpsCall(maxine.url, 'GET', '/metrics', { ca, headers: bearer(admin) });
        return valueOf(parseScrape(scraped.text), 'maxine_http_fast_lane_total');
      };
      const before = await laneAnswers();
      const beat = await httpsCall(maxine.url, 'POST', '/api/maxine/serviceops/heartbeat', { ca, identity: bot, body: { serviceName: 'orders-api', nodeName: 'node-1' } });
      assert.equal(beat.status, 200, beat.text);
      assert.equal((await laneAnswers()) - before, 1, 'the heartbeat took the fast lane');
      const anonymousBeat = await httpsCall(maxine.url, 'POST', '/api/maxine/serviceops/heartbeat', { ca, body: { serviceName: 'orders-api', nodeName: 'node-1' } });
      assert.equal(anonymousBeat.status, 401, anonymousBeat.text);
      assert.equal((await laneAnswers()) - before, 1, 'the refusal came from the route');
      // A certificate that does not verify never stands for the subject it claims, even with a rule naming that subject.
      const impostor = await httpsCall(maxine.url, 'POST', REGISTER, { ca, identity: foreign, body: registration('orders-api', 'node-2') }).then(
        (response) => response.status,
        () => 'refused at the handshake',
      );
      assert.ok(impostor === 401 || impostor === 'refused at the handshake', `foreign certificate got ${impostor}`);
      const audit = await httpsCall(maxine.url, 'GET', '/api/actuator/audit?actor=CN%3Dorders-bot%2CO%3DAcme&result=denied', { ca, headers: bearer(admin) });
      assert.equal(audit.status, 200, audit.text);
      assert.ok(
        (audit.json.events as Array<{ actor: { kind: string }; service: string | null }>).some((e) => e.actor.kind === 'cert' && e.service === 'payments'),
        audit.text,
      );
    });

    await t.test('a certificate from a foreign CA never authenticates (anonymous, or refused at the handshake)', async (st) => {
      const outcome = await httpsCall(maxine.url, 'GET', '/api/maxine/whoami', { ca, identity: foreign }).then(
        (response) => response.status,
        () => 'refused at the handshake',
      );
      st.diagnostic(`foreign-CA certificate, optional mode: ${outcome}`);
      assert.ok(outcome === 401 || outcome === 'refused at the handshake', `foreign certificate got ${outcome}`);
    });

    await t.test('a bearer token together with a client certificate: the bearer wins', async () => {
      const whoami = await httpsCall(maxine.url, 'GET', '/api/maxine/whoami', { ca, identity: bot, headers: bearer(admin) });
      assert.equal(whoami.status, 200, whoami.text);
      assert.equal(whoami.json.kind, 'user');
      assert.equal(whoami.json.id, TEST_ADMIN.userName);
      assert.equal(whoami.json.role, 'admin');
      // An invalid bearer is not rescued by a valid certificate.
      const bad = await httpsCall(maxine.url, 'GET', '/api/maxine/whoami', { ca, identity: bot, headers: { authorization: 'Bearer not-a-token' } });
      assert.equal(bad.status, 401, bad.text);
    });
  } finally {
    await maxine.close();
  }
});

test("mTLS 'required': no request completes without a CA-signed client certificate", async (t) => {
  const pki = await createTestPki(t);
  if (pki === null) return;
  const ca = readFileSync(pki.caFile, 'utf8');
  const [bot, foreign] = await Promise.all([pki.clientCert('/CN=orders-bot/O=Acme'), pki.foreignClientCert('/CN=orders-bot/O=Acme')]);
  const maxine = await startTlsMaxine(pki, { tlsClientAuth: 'required', tlsClientCaFile: pki.caFile });
  try {
    await t.test('without a client certificate the handshake is refused', async () => {
      await assert.rejects(httpsCall(maxine.url, 'GET', '/api/actuator/health', { ca }));
    });

    await t.test('with a foreign-CA certificate the handshake is refused', async () => {
      await assert.rejects(httpsCall(maxine.url, 'GET', '/api/actuator/health', { ca, identity: foreign }));
    });

    await t.test('with a CA-signed certificate requests are served and name it', async () => {
      const health = await httpsCall(maxine.url, 'GET', '/api/actuator/health', { ca, identity: bot });
      assert.equal(health.status, 200, health.text);
      const whoami = await httpsCall(maxine.url, 'GET', '/api/maxine/whoami', { ca, identity: bot });
      assert.equal(whoami.status, 200, whoami.text);
      assert.equal(whoami.json.kind, 'cert');
      assert.equal(whoami.json.id, 'CN=orders-bot,O=Acme');
    });

    await t.test('a live certificate reload keeps client authentication as configured', async () => {
      const before = await httpsCall(maxine.url, 'GET', '/api/actuator/health', { ca, identity: bot });
      const fresh = await pki.reissueServerCert(pki.serverCertFile, pki.serverKeyFile);
      assert.notEqual(fresh, before.fingerprint256);
      const deadline = Date.now() + 5000;
      let served = before.fingerprint256;
      while (served !== fresh && Date.now() < deadline) {
        await sleep(100);
        served = (await httpsCall(maxine.url, 'GET', '/api/actuator/health', { ca, identity: bot })).fingerprint256;
      }
      assert.equal(served, fresh, 'new handshakes never got the reissued certificate');
      await assert.rejects(httpsCall(maxine.url, 'GET', '/api/actuator/health', { ca }), 'still no request without a certificate');
      await assert.rejects(httpsCall(maxine.url, 'GET', '/api/actuator/health', { ca, identity: foreign }), 'still none with a foreign one');
      const whoami = await httpsCall(maxine.url, 'GET', '/api/maxine/whoami', { ca, identity: bot });
      assert.equal(whoami.status, 200, whoami.text);
      assert.equal(whoami.fingerprint256, fresh);
      assert.equal(whoami.json.id, 'CN=orders-bot,O=Acme');
    });
  } finally {
    await maxine.close();
  }
});
