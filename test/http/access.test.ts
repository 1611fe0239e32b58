import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeProtectedHeader, SignJWT, UnsecuredJWT } from 'jose';
import type { DeclaredRoute, Permission } from '../../src/http/permissions.ts';
import { startTestMaxine, TEST_ADMIN, type TestMaxine } from '../helpers/maxine.ts';

/**
 * Generated from the route table: every route × every kind of caller × many
 * spellings of its path. Expectations come from this file's own table of
 * who may do what, not from the code under test.
 */

const JWT_SECRET = 'access-test-secret-that-is-long-enough-0123456789';
const SERVICE = 'orders';

/** The weakest role that may use each permission (the original's matrix). */
const LEAST_ROLE: Record<Exclude<Permission, 'public' | 'authenticated' | 'per-item'>, 'viewer' | 'operator' | 'admin'> = {
  discover: 'viewer',
  proxy: 'viewer',
  'registry:read': 'viewer',
  'config:read': 'viewer',
  'ops:read': 'viewer',
  register: 'operator',
  deregister: 'operator',
  'config:write': 'operator',
  'ops:write': 'operator',
  'users:manage': 'admin',
  'audit:read': 'admin',
  'logs:manage': 'admin',
};
/** Open to everyone unless MAXINE_REQUIRE_CLIENT_AUTH is on, as in the original. */
const CLIENT_PERMISSIONS = new Set<Permission>(['discover', 'proxy', 'register', 'deregister']);
const RANK = { viewer: 0, operator: 1, admin: 2 } as const;

type Caller =
  | { name: string; kind: 'anonymous' }
  | { name: string; kind: 'role'; role: 'viewer' | 'operator' | 'admin' }
  | { name: string; kind: 'token'; actions: readonly Permission[] }
  | { name: string; kind: 'invalid' }
  /** A header that holds no credential of Maxine's: refused, except where it may be meant for the upstream (the proxy). */
  | { name: string; kind: 'foreign' };

interface Credentials {
  readonly caller: Caller;
  readonly authorization: string;
}

function allowed(route: DeclaredRoute, caller: Caller, requireClientAuth: boolean): boolean {
  if (route.permission === 'public') return true;
  if (caller.kind === 'invalid') return false;
  if (caller.kind === 'foreign') return route.forwardsCredentials && allowed(route, { name: 'anonymous', kind: 'anonymous' }, requireClientAuth);
  if (route.permission === 'authenticated') return caller.kind !== 'anonymous';
  // The route decides per item it hands out; at the door only valid credentials (or none) count.
  if (route.permission === 'per-item') return true;
  if (!requireClientAuth && CLIENT_PERMISSIONS.has(route.permission)) return true;
  if (caller.kind === 'role') return RANK[caller.role] >= RANK[LEAST_ROLE[route.permission]];
  // The scoped token covers SERVICE only: routes that touch no single service are out of its reach.
  if (caller.kind === 'token') return route.touchesService && caller.actions.includes(route.permission);
  return false;
}

/** A concrete path for a route pattern, naming SERVICE wherever a service goes. */
function concrete(url: string): string {
  return url
    .replace(':serviceName', SERVICE)
    .replace(':nodeName', 'node-1')
    .replace(':userName', 'nobody-here')
    .replace(':id', '0123456789abcdef')
    .replace('*', 'some/path')
    .replace(/\/discover$/, `/discover?serviceName=${SERVICE}`)
    // An invalid revision answers 400 after the access decision instead of opening a stream that never ends.
    .replace(/\/events$/, '/events?lastEventId=not-a-revision');
}

/** Spellings that must never get past a check the canonical path does not pass. */
function variants(path: string): string[] {
  if (path === '/') return ['//', '/./', '/%2e/', '/;x=1', '/%00', '/%2f'];
  const [first, ...rest] = path.slice(1).split('/');
  const out = new Set<string>([
    path.toUpperCase(),
    `/${first!.toUpperCase()}/${rest.join('/')}`,
    `/${first![0]!.toUpperCase()}${first!.slice(1)}/${rest.join('/')}`,
    // One character percent-encoded: a decoder that normalises differently from the router must not open a gap.
    `/%${first!.charCodeAt(0).toString(16)}${first!.slice(1)}/${rest.join('/')}`,
    `/%${first!.charCodeAt(0).toString(16).toUpperCase()}${first!.slice(1)}${rest.length ? '/' : ''}${rest.join('/')}`,
    `/${path}`,
    `${path}/`,
    `/./${path.slice(1)}`,
    `/${first}/../${path.slice(1)}`,
    `${path};x=1`,
    `${path}%00`,
    `${path}%2f`,
  ]);
  out.delete(path);
  return [...out];
}

describe('every route × every caller × path spellings', () => {
  for (const requireClientAuth of [false, true]) {
    describe(requireClientAuth ? 'with MAXINE_REQUIRE_CLIENT_AUTH' : 'in the compatible posture', () => {
      let maxine: TestMaxine;
      const callers: Credentials[] = [];

      before(async () => {
        maxine = await startTestMaxine({ jwtSecret: JWT_SECRET, requireClientAuth });
        const admin = maxine.adminToken;
        const asAdmin = { authorization: `Bearer ${admin}` };
        const tokenOf = async (userName: string, role: string) => {
          const created = await maxine.call('POST', '/api/maxine/users', { userName, password: `${userName}-password`, role }, asAdmin);
          assert.equal(created.status, 201, created.text);
          const signin = await maxine.call('POST', '/api/maxine/signin', { userName, password: `${userName}-password` }, { authorization: '' });
          assert.equal(signin.status, 200, signin.text);
          return signin.json.accessToken as string;
        };
        const viewer = await tokenOf('vera', 'viewer');
        const operator = await tokenOf('otto', 'operator');
        const ghost = await tokenOf('ghost', 'operator');
        assert.equal((await maxine.call('DELETE', '/api/maxine/users/ghost', undefined, asAdmin)).status, 200);
        const scoped = await maxine.call(
          'POST',
          '/api/maxine/tokens',
          { name: 'orders-client', scopes: [{ actions: ['register', 'discover'], services: SERVICE }] },
          asAdmin,
        );
        assert.equal(scoped.status, 201, scoped.text);
        const revoked = await maxine.call('POST', '/api/maxine/tokens', { name: 'gone', scopes: [{ actions: ['discover'], services: '*' }] }, asAdmin);
        assert.equal((await maxine.call('DELETE', `/api/maxine/tokens/${revoked.json.id}`, undefined, asAdmin)).status, 200);

        const { kid } = decodeProtectedHeader(admin);
        const key = new TextEncoder().encode(JWT_SECRET);
        const forged = (claims: { iss?: string; exp?: number; sub?: string }, secret = key) =>
          new SignJWT({ role: 'admin', ver: 1, typ: 'access' })
            .setProtectedHeader({ alg: 'HS256', kid: kid! })
            .setIssuer(claims.iss ?? 'maxine')
            .setAudience('maxine')
            .setSubject(claims.sub ?? TEST_ADMIN.userName)
            .setIssuedAt(Math.floor(Date.now() / 1000) - 7200)
            .setExpirationTime(claims.exp ?? Math.floor(Date.now() / 1000) + 600)
            .sign(secret);
        const bearer = (token: string) => `Bearer ${token}`;
        callers.push(
          { caller: { name: 'anonymous', kind: 'anonymous' }, authorization: '' },
          { caller: { name: 'viewer', kind: 'role', role: 'viewer' }, authorization: bearer(viewer) },
          { caller: { name: 'operator', kind: 'role', role: 'operator' }, authorization: bearer(operator) },
          { caller: { name: 'admin', kind: 'role', role: 'admin' }, authorization: bearer(admin) },
          { caller: { name: 'scoped service token', kind: 'token', actions: ['register', 'discover'] }, authorization: bearer(scoped.json.token) },
          { caller: { name: 'revoked service token', kind: 'invalid' }, authorization: bearer(revoked.json.token) },
          { caller: { name: 'expired token', kind: 'invalid' }, authorization: bearer(await forged({ exp: Math.floor(Date.now() / 1000) - 3600 })) },
          { caller: { name: 'bad signature', kind: 'invalid' }, authorization: bearer(await forged({}, new TextEncoder().encode(`${JWT_SECRET}-not`))) },
          {
            caller: { name: 'alg none', kind: 'invalid' },
            authorization: bearer(
              new UnsecuredJWT({ role: 'admin', ver: 1, typ: 'access' }).setIssuer('maxine').setAudience('maxine').setSubject(TEST_ADMIN.userName).setExpirationTime('10m').encode(),
            ),
          },
          { caller: { name: "deleted user's token", kind: 'invalid' }, authorization: bearer(ghost) },
          { caller: { name: 'unknown issuer', kind: 'foreign' }, authorization: bearer(await forged({ iss: 'https://issuer.invalid' })) },
          { caller: { name: 'not a bearer token', kind: 'foreign' }, authorization: 'Basic YWRtaW46YWRtaW4=' },
        );
      });

      after(() => maxine.stop());

      test('the route table is complete and only sign-in, refresh and sign-out change anything without credentials', () => {
        assert.ok(maxine.routes.length >= 50, `only ${maxine.routes.length} routes`);
        const openWrites = maxine.routes
          .filter((r) => r.permission === 'public' && !['GET', 'HEAD', 'OPTIONS'].includes(r.method))
          .map((r) => `${r.method} ${r.url}`)
          .sort();
        assert.deepEqual(openWrites, ['POST /api/maxine/refresh', 'POST /api/maxine/signin', 'POST /api/maxine/signout']);
        assert.ok(!maxine.routes.some((r) => /shutdown|exit|kill/i.test(r.url)));
      });

      test('every caller gets exactly what its role, token or the posture allows, on every route', async () => {
        let checked = 0;
        const failures: string[] = [];
        for (const route of maxine.routes) {
          const path = concrete(route.url);
          for (const { caller, authorization } of callers) {
            const res = await maxine.call(route.method, path, undefined, { authorization });
            const expected = allowed(route, caller, requireClientAuth);
            const refused = res.status === 401 || res.status === 403;
            checked++;
            // 503 is an answer (no instance of the service); 500 would be a crash.
            if (res.status === 500) failures.push(`${route.method} ${path} as ${caller.name}: ${res.status} ${res.text}`);
            else if (expected === refused) failures.push(`${route.method} ${path} as ${caller.name}: ${res.status}, expected ${expected ? 'access' : 'a refusal'}`);
            else if (refused) {
              const status = caller.kind === 'role' || caller.kind === 'token' ? 403 : 401;
              if (res.status !== status) failures.push(`${route.method} ${path} as ${caller.name}: ${res.status}, expected ${status}`);
              if (route.method !== 'HEAD' && typeof res.json?.message !== 'string') failures.push(`${route.method} ${path}: refusal without a JSON error`);
            }
          }
        }
        assert.deepEqual(failures, []);
        assert.ok(checked > 500);
      });

      // Spellings are routing, not posture: checked in one posture only, to keep the run short.
      if (requireClientAuth) return;
      test('no spelling of a path gets past a check its canonical form refuses', async () => {
        const failures: string[] = [];
        let checked = 0;
        for (const route of maxine.routes) {
          for (const { caller, authorization } of callers) {
            if (allowed(route, caller, false)) continue;
            for (const path of variants(concrete(route.url))) {
              const res = await maxine.call(route.method, path, undefined, { authorization });
              checked++;
              if (![400, 401, 403, 404, 405].includes(res.status)) failures.push(`${route.method} ${path} as ${caller.name}: ${res.status}`);
            }
          }
        }
        assert.deepEqual(failures, []);
        assert.ok(checked > 1000, `only ${checked} checks`);
      });
    });
  }
});
