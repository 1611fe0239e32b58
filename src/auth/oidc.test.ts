import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SignJWT, decodeJwt, generateKeyPair, type CryptoKey, type JWTPayload } from 'jose';
import { OIDC_CLIENT_SECRET, startOidcProvider, type TestOidcProvider } from '../../test/helpers/oidc-provider.ts';
import { OidcTokenError, OidcVerifier, type OidcSettings } from './oidc.ts';
import type { Role } from './roles.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const ROLE_MAP: ReadonlyMap<string, Role> = new Map<string, Role>([
  ['maxine-viewers', 'viewer'],
  ['maxine-operators', 'operator'],
  ['maxine-admins', 'admin'],
]);

async function listen(handler: Handler): Promise<{ server: Server; origin: string }> {
  const server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { server, origin: `http://127.0.0.1:${port}` };
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  server.close();
  await once(server, 'close');
}

/** The provider every test here runs against: one client per kind of groups claim. */
function startProvider(options: { accessTokenTtlSec?: number } = {}): Promise<TestOidcProvider> {
  return startOidcProvider(
    {
      'admin-client': { groups: ['maxine-viewers', 'maxine-admins', 'unrelated'] },
      'plain-client': {},
      'realm-client': { claims: { realm_access: { roles: 'maxine-operators' }, 'https://maxine.example/groups': ['maxine-viewers'] } },
    },
    options,
  );
}

function settings(issuer: string, overrides: Partial<OidcSettings> = {}): OidcSettings {
  return { issuer, audience: 'maxine', jwksUri: null, clockSkewSec: 0, groupsClaim: 'groups', roleMap: ROLE_MAP, ...overrides };
}

const UNREACHABLE = /^the identity provider could not be reached/;

/** Asserts the refusal and its reason, and that the reason is fit to echo: it never contains the token. */
async function refused(verifier: OidcVerifier, token: string, reason: string | RegExp): Promise<OidcTokenError> {
  let error: OidcTokenError | undefined;
  await assert.rejects(verifier.verify(token), (err: unknown) => {
    assert.ok(err instanceof OidcTokenError, `expected OidcTokenError, got ${String(err)}`);
    if (typeof reason === 'string') assert.equal(err.reason, reason);
    else assert.match(err.reason, reason);
    if (token !== '') assert.ok(!err.message.includes(token));
    error = err;
    return true;
  });
  return error as OidcTokenError;
}

function base64url(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** Signs claims under a header of the test's choosing: for tokens built on purpose to be refused. */
function forge(claims: JWTPayload, header: { alg: string; kid?: string }, key: CryptoKey | Uint8Array): Promise<string> {
  return new SignJWT(claims).setProtectedHeader(header).sign(key);
}

describe('OidcVerifier against a real OpenID provider', () => {
  let idp: TestOidcProvider;
  let other: TestOidcProvider;

  before(async () => {
    [idp, other] = await Promise.all([startProvider(), startProvider()]);
  });
  after(async () => {
    await Promise.all([idp.close(), other.close()]);
  });

  test('a client-credentials token verifies, with the issuer discovered', async () => {
    const verifier = new OidcVerifier(settings(idp.issuer));
    const token = await idp.token('admin-client');
    const now = Date.now();
    const identity = await verifier.verify(token);
    assert.equal(identity.subject, 'admin-client');
    assert.deepEqual(identity.groups, ['maxine-viewers', 'maxine-admins', 'unrelated']);
    assert.equal(identity.role, 'admin');
    assert.equal(identity.expiresAt, (decodeJwt(token).exp as number) * 1000);
    assert.ok(identity.expiresAt > now && identity.expiresAt <= now + 600_000 + 1000);
  });

  test('an explicit jwksUri is used as is', async () => {
    const verifier = new OidcVerifier(settings(idp.issuer, { jwksUri: `${idp.issuer}/jwks` }));
    const identity = await verifier.verify(await idp.token('plain-client'));
    assert.equal(identity.subject, 'plain-client');
    assert.deepEqual(identity.groups, []);
    assert.equal(identity.role, null);
  });

  test('the groups claim may be a dotted path to a single string, or a claim name containing dots', async () => {
    const token = await idp.token('realm-client');
    const nested = await new OidcVerifier(settings(idp.issuer, { groupsClaim: 'realm_access.roles' })).verify(token);
    assert.deepEqual(nested.groups, ['maxine-operators']);
    assert.equal(nested.role, 'operator');
    const namespaced = await new OidcVerifier(settings(idp.issuer, { groupsClaim: 'https://maxine.example/groups' })).verify(token);
    assert.deepEqual(namespaced.groups, ['maxine-viewers']);
    assert.equal(namespaced.role, 'viewer');
  });

  test('a token for another audience is refused', async () => {
    const verifier = new OidcVerifier(settings(idp.issuer));
    const token = await idp.token('admin-client', 'urn:billing');
    assert.equal(decodeJwt(token).aud, 'billing');
    await refused(verifier, token, 'audience mismatch');
    await refused(new OidcVerifier(settings(idp.issuer, { audience: 'elsewhere' })), await idp.token('admin-client'), 'audience mismatch');
  });

  test('a token with a tampered payload is refused', async () => {
    const verifier = new OidcVerifier(settings(idp.issuer));
    const [header, payload, signature] = (await idp.token('plain-client')).split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as JWTPayload;
    const tampered = `${header}.${base64url({ ...claims, groups: ['maxine-admins'] })}.${signature}`;
    await refused(verifier, tampered, 'signature invalid');
  });

  test('a token from another provider is refused for its issuer, even though it is genuine', async () => {
    const verifier = new OidcVerifier(settings(idp.issuer));
    await refused(verifier, await other.token('admin-client'), 'issuer mismatch');
  });

  test('a token claiming our issuer but signed with a key the provider does not publish is refused', async () => {
    const verifier = new OidcVerifier(settings(idp.issuer));
    const claims = decodeJwt(await idp.token('admin-client'));
    const { privateKey } = await generateKeyPair('ES256');
    await refused(verifier, await forge(claims, { alg: 'ES256', kid: 'attacker' }, privateKey), 'unknown signing key');
    // Borrowing the provider's kid does not help.
    await refused(verifier, await forge(claims, { alg: 'ES256', kid: idp.kid }, privateKey), 'signature invalid');
  });

  test('alg none and HS256 tokens are refused', async () => {
    const verifier = new OidcVerifier(settings(idp.issuer));
    const claims = decodeJwt(await idp.token('admin-client'));
    const unsigned = `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(claims)}.`;
    await refused(verifier, unsigned, 'unsupported algorithm');
    const hs256 = await forge(claims, { alg: 'HS256' }, new TextEncoder().encode(OIDC_CLIENT_SECRET));
    await refused(verifier, hs256, 'unsupported algorithm');
  });

  test('genuinely signed tokens without exp, without subject or not yet valid are refused', async () => {
    const verifier = new OidcVerifier(settings(idp.issuer));
    const claims = decodeJwt(await idp.token('admin-client'));
    assert.equal((await verifier.verify(await idp.sign(claims))).subject, 'admin-client');
    const { exp: _exp, ...withoutExp } = claims;
    await refused(verifier, await idp.sign(withoutExp), 'token has no expiry');
    const { sub: _sub, client_id: _clientId, ...anonymous } = claims;
    await refused(verifier, await idp.sign(anonymous), 'token names no subject');
    const { sub: _sub2, ...clientOnly } = claims;
    assert.equal((await verifier.verify(await idp.sign(clientOnly))).subject, claims.client_id);
    await refused(verifier, await idp.sign({ ...claims, nbf: Math.floor(Date.now() / 1000) + 120 }), 'token not yet valid');
  });

  test('junk is refused as malformed', async () => {
    const verifier = new OidcVerifier(settings(idp.issuer));
    await refused(verifier, 'not-a-jwt', 'malformed token');
    await refused(verifier, '', 'malformed token');
  });

  test('claimsIssuer routes on the unverified issuer', async () => {
    const verifier = new OidcVerifier(settings(idp.issuer));
    assert.equal(verifier.issuer, idp.issuer);
    assert.equal(verifier.claimsIssuer(await idp.token('plain-client')), true);
    assert.equal(verifier.claimsIssuer(await other.token('plain-client')), false);
    assert.equal(verifier.claimsIssuer('mxt_0123456789abcdef_secret'), false);
    assert.equal(verifier.claimsIssuer('a.b.c'), false);
  });

  test('a discovery document for another issuer is not trusted', async () => {
    // Same server, but configured with a different spelling of the issuer (a trailing slash).
    const verifier = new OidcVerifier(settings(`${idp.issuer}/`));
    const { privateKey } = await generateKeyPair('ES256');
    const token = await forge({ iss: `${idp.issuer}/`, aud: 'maxine', sub: 's', exp: Math.floor(Date.now() / 1000) + 60 }, { alg: 'ES256', kid: idp.kid }, privateKey);
    const error = await refused(verifier, token, UNREACHABLE);
    assert.match(String((error.cause as Error).message), /names issuer/);
  });

  test('a failed discovery is retried on a later verify', async () => {
    const verifier = new OidcVerifier(settings(idp.issuer));
    const token = await idp.token('admin-client');
    idp.setDown(true);
    try {
      await refused(verifier, token, UNREACHABLE);
    } finally {
      idp.setDown(false);
    }
    assert.equal((await verifier.verify(token)).subject, 'admin-client');
  });
});

describe('OidcVerifier with an unreachable identity provider', () => {
  let closedOrigin: string;
  let silent: { server: Server; origin: string };
  let key: CryptoKey;

  before(async () => {
    const probe = await listen(() => {});
    closedOrigin = probe.origin;
    await close(probe.server);
    silent = await listen(() => {}); // accepts connections, never answers
    ({ privateKey: key } = await generateKeyPair('ES256'));
  });
  after(() => close(silent.server));

  const tokenFor = (iss: string) => forge({ iss, aud: 'maxine', sub: 's', exp: Math.floor(Date.now() / 1000) + 60 }, { alg: 'ES256', kid: 'k' }, key);

  test('connection refused during discovery', async () => {
    const verifier = new OidcVerifier(settings(closedOrigin));
    await refused(verifier, await tokenFor(closedOrigin), UNREACHABLE);
  });

  test('connection refused fetching an explicit jwksUri', async () => {
    const verifier = new OidcVerifier(settings(closedOrigin, { jwksUri: `${closedOrigin}/jwks` }));
    await refused(verifier, await tokenFor(closedOrigin), UNREACHABLE);
  });

  test('alg none and HS256 are refused before the provider is contacted', async () => {
    const verifier = new OidcVerifier(settings(closedOrigin));
    const claims = { iss: closedOrigin, aud: 'maxine', sub: 's', exp: Math.floor(Date.now() / 1000) + 60 };
    await refused(verifier, `${base64url({ alg: 'none' })}.${base64url(claims)}.`, 'unsupported algorithm');
    await refused(verifier, await forge(claims, { alg: 'HS256' }, new TextEncoder().encode(OIDC_CLIENT_SECRET)), 'unsupported algorithm');
  });

  test('a provider that never answers times out', async () => {
    const started = Date.now();
    const verifier = new OidcVerifier(settings(silent.origin), { fetchTimeoutMs: 200 });
    await refused(verifier, await tokenFor(silent.origin), UNREACHABLE);
    assert.ok(Date.now() - started < 2000);
    const withJwks = new OidcVerifier(settings(silent.origin, { jwksUri: `${silent.origin}/jwks` }), { fetchTimeoutMs: 200 });
    await refused(withJwks, await tokenFor(silent.origin), UNREACHABLE);
  });
});

describe('OidcVerifier token lifetime', () => {
  let shortLived: TestOidcProvider;

  before(async () => {
    shortLived = await startProvider({ accessTokenTtlSec: 1 });
  });
  after(() => shortLived.close());

  test('an expired token is refused, unless within the clock skew', async () => {
    const token = await shortLived.token('admin-client');
    const strict = new OidcVerifier(settings(shortLived.issuer));
    assert.equal((await strict.verify(token)).subject, 'admin-client');
    await sleep(2100);
    await refused(strict, token, 'token expired');
    const lenient = new OidcVerifier(settings(shortLived.issuer, { clockSkewSec: 60 }));
    assert.equal((await lenient.verify(token)).role, 'admin');
  });
});
