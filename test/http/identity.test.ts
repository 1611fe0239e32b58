import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { startTestMaxine, TEST_ADMIN, type TestMaxine, type TestResponse } from '../helpers/maxine.ts';
import { spawnMaxine, type MaxineProcess } from '../helpers/process.ts';

/**
 * Identities end to end on real servers: bootstrap of the first users,
 * sessions (sign-in, refresh with rotation and reuse detection, sign-out,
 * change of password or role), sign-in limits, signing-key rotation and
 * asymmetric keys, service tokens, ACL rules, the audit trail, and that no
 * credential ever shows up in logs or the audit.
 */

const SECRET = 'identity-test-secret-that-is-long-enough-0123456789';
const NO_CREDENTIALS = { authorization: '' } as const;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const tempDir = (label: string) => mkdtempSync(join(tmpdir(), `maxine-identity-${label}-`));

type Caller = Pick<TestMaxine, 'call'>;

async function createUser(maxine: Caller, userName: string, role: 'viewer' | 'operator' | 'admin', password = `${userName}-password`): Promise<void> {
  const res = await maxine.call('POST', '/api/maxine/users', { userName, password, role });
  assert.equal(res.status, 201, res.text);
}

function signIn(maxine: Caller, userName: string, password: string, headers: Record<string, string> = {}): Promise<TestResponse> {
  return maxine.call('POST', '/api/maxine/signin', { userName, password }, { ...NO_CREDENTIALS, ...headers });
}

async function session(maxine: Caller, userName: string, password = `${userName}-password`): Promise<{ accessToken: string; refreshToken: string; role: string }> {
  const res = await signIn(maxine, userName, password);
  assert.equal(res.status, 200, res.text);
  return res.json;
}

function whoami(maxine: Caller, token: string): Promise<TestResponse> {
  return maxine.call('GET', '/api/maxine/whoami', undefined, bearer(token));
}

function refresh(maxine: Caller, refreshToken: string): Promise<TestResponse> {
  return maxine.call('POST', '/api/maxine/refresh', { refreshToken }, NO_CREDENTIALS);
}

function register(maxine: Caller, serviceName: string, headers: Record<string, string> = {}, nodeName = 'node-1'): Promise<TestResponse> {
  return maxine.call('POST', '/api/maxine/serviceops/register', { hostName: '10.0.0.7', nodeName, serviceName, port: 8080 }, headers);
}

function discover(maxine: Caller, serviceName: string, headers: Record<string, string> = {}): Promise<TestResponse> {
  return maxine.call('GET', `/api/maxine/serviceops/discover?serviceName=${serviceName}&format=json`, undefined, headers);
}

async function stopProcess(p: MaxineProcess | undefined): Promise<void> {
  if (p === undefined || p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  await p.exited;
}

async function poll<T>(what: string, probe: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function assertUnauthorized(res: TestResponse, context: string): void {
  assert.equal(res.status, 401, `${context}: ${res.status} ${res.text}`);
  assert.equal(res.json?.code, 'UNAUTHORIZED', `${context}: ${res.text}`);
}

// Servers are independent, so the suites run side by side; the tests inside each suite run in order.
describe('identities', { concurrency: true }, () => {
  describe('bootstrap of the first users', { concurrency: 1 }, () => {
    const dirs: string[] = [];
    const processes: MaxineProcess[] = [];
    after(async () => {
      await Promise.all(processes.map(stopProcess));
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    });

    test('with no users configured an admin with a generated password is created once, shown once and written to a 0600 file', async () => {
      const dir = tempDir('bootstrap');
      dirs.push(dir);
      const noAdmin = { MAXINE_ADMIN_USERNAME: '', MAXINE_ADMIN_PASSWORD: '' };
      const first = await spawnMaxine(['--data-dir', dir], noAdmin);
      processes.push(first);
      const output = first.output();
      const shown = /password: (\S+)/.exec(output);
      assert.ok(shown, `no generated password in the output:\n${output}`);
      const password = shown[1]!;
      assert.ok(password.length >= 16, 'a generated password is long');
      assert.equal(output.split(password).length - 1, 1, 'the password is shown exactly once');

      const file = join(dir, 'initial-admin-password');
      assert.ok(existsSync(file));
      assert.equal(statSync(file).mode & 0o777, 0o600);
      const content = readFileSync(file, 'utf8');
      assert.match(content, /userName: admin/);
      assert.ok(content.includes(`password: ${password}`));

      const signin = await signIn(first, 'admin', password);
      assert.equal(signin.status, 200, signin.text);
      assert.equal(signin.json.role, 'admin');
      await stopProcess(first);

      const second = await spawnMaxine(['--data-dir', dir], noAdmin);
      processes.push(second);
      const again = second.output();
      assert.doesNotMatch(again, /No users existed/);
      assert.doesNotMatch(again, /password: /);
      assert.ok(!again.includes(password));
      assert.equal(readFileSync(file, 'utf8'), content, 'the password file is left as it was');
      const list = await second.call('GET', '/api/maxine/users', undefined, bearer((await session(second, 'admin', password)).accessToken));
      assert.equal(list.status, 200, list.text);
      assert.deepEqual(
        list.json.users.map((u: { userName: string }) => u.userName),
        ['admin'],
        'no second admin was created',
      );
      await stopProcess(second);
    });

    describe('MAXINE_OPERATOR_* and MAXINE_VIEWER_*', { concurrency: 1 }, () => {
      let p: MaxineProcess;
      before(async () => {
        const dir = tempDir('bootstrap-roles');
        dirs.push(dir);
        p = await spawnMaxine(['--data-dir', dir], {
          MAXINE_ADMIN_USERNAME: '',
          MAXINE_ADMIN_PASSWORD: '',
          MAXINE_OPERATOR_USERNAME: 'olga',
          MAXINE_OPERATOR_PASSWORD: 'olga-password',
          MAXINE_VIEWER_USERNAME: 'vic',
          MAXINE_VIEWER_PASSWORD: 'vic-password',
        });
        processes.push(p);
      });

      test('create those users with those roles', async () => {
        const olga = await session(p, 'olga');
        assert.equal(olga.role, 'operator');
        assert.equal((await whoami(p, olga.accessToken)).json.role, 'operator');
        const vic = await session(p, 'vic');
        assert.equal(vic.role, 'viewer');
        assert.equal((await whoami(p, vic.accessToken)).json.role, 'viewer');
      });

      test('configuring only an operator and a viewer still leaves somebody who can administer (an admin is generated)', async () => {
        // The original always had an admin besides MAXINE_OPERATOR_*; here nobody could manage users or read the audit.
        const output = p.output();
        const shown = /password: (\S+)/.exec(output);
        assert.ok(shown, `no admin exists and none was generated, so no user can ever manage users or read the audit:\n${output.slice(-2000)}`);
        const admin = await signIn(p, 'admin', shown[1]!);
        assert.equal(admin.status, 200, admin.text);
        assert.equal(admin.json.role, 'admin');
      });
    });
  });

  describe('sessions, passwords and roles', { concurrency: 1 }, () => {
    let maxine: TestMaxine;
    before(async () => {
      // Many sign-ins from one address here: the per-address limit must not be what these tests meet.
      maxine = await startTestMaxine({ jwtSecret: SECRET, signinAttemptsPerAddress: 10_000 });
    });
    after(() => maxine.stop());

    test("sign-in answers the original's {accessToken, role} plus a refresh token, and refuses alike whether or not the user exists", async () => {
      await createUser(maxine, 'sam', 'operator');
      const ok = await signIn(maxine, 'sam', 'sam-password');
      assert.equal(ok.status, 200, ok.text);
      assert.deepEqual(Object.keys(ok.json).sort(), ['accessToken', 'expiresIn', 'refreshToken', 'role', 'tokenType']);
      assert.equal(ok.json.role, 'operator');
      assert.equal(ok.json.tokenType, 'Bearer');
      assert.equal(ok.json.expiresIn, 3600);
      const header = decodeProtectedHeader(ok.json.accessToken);
      assert.equal(typeof header.kid, 'string');
      assert.ok(header.kid!.length > 0);
      assert.equal(header.alg, 'HS256');
      assert.notEqual(ok.json.refreshToken, ok.json.accessToken);

      const wrong = await signIn(maxine, 'sam', 'not-sams-password');
      assertUnauthorized(wrong, 'wrong password');
      assert.match(wrong.headers.get('content-type') ?? '', /application\/json/);
      const unknown = await signIn(maxine, 'nobody-at-all', 'not-sams-password');
      assertUnauthorized(unknown, 'unknown user');
      assert.deepEqual(unknown.json, wrong.json, 'an unknown user is refused with exactly the same answer');
    });

    test('a refresh token buys a new working session; access and refresh tokens are not interchangeable', async () => {
      await createUser(maxine, 'ria', 'viewer');
      const first = await session(maxine, 'ria');
      const renewed = await refresh(maxine, first.refreshToken);
      assert.equal(renewed.status, 200, renewed.text);
      assert.equal(renewed.json.role, 'viewer');
      assert.notEqual(renewed.json.accessToken, first.accessToken);
      const me = await whoami(maxine, renewed.json.accessToken);
      assert.equal(me.status, 200, me.text);
      assert.equal(me.json.id, 'ria');
      assert.equal((await refresh(maxine, renewed.json.refreshToken)).status, 200);

      assertUnauthorized(await refresh(maxine, first.accessToken), 'access token used as a refresh token');
      assertUnauthorized(await whoami(maxine, first.refreshToken), 'refresh token used as a bearer');
      assertUnauthorized(await maxine.call('GET', '/api/maxine/users', undefined, bearer(first.refreshToken)), 'refresh token on an admin route');
    });

    test('a refresh spends its token: presenting it again revokes the session, newest refresh token included', async () => {
      await createUser(maxine, 'rex', 'viewer');
      const first = await session(maxine, 'rex');
      const second = await refresh(maxine, first.refreshToken);
      assert.equal(second.status, 200, second.text);
      assert.notEqual(second.json.refreshToken, first.refreshToken, 'a new refresh token');
      const third = await refresh(maxine, second.json.refreshToken);
      assert.equal(third.status, 200, third.text);

      const reused = await refresh(maxine, first.refreshToken);
      assertUnauthorized(reused, 'a spent refresh token');
      assert.equal(reused.json.message, 'This refresh token was already used; the session is revoked. Sign in again.');
      const newest = await refresh(maxine, third.json.refreshToken);
      assertUnauthorized(newest, 'the newest refresh token after the reuse');
      assert.equal(newest.json.message, 'The session has ended; sign in again.');
      // Access tokens are stateless: they are not read against the session and live until they expire.
      assert.equal((await whoami(maxine, third.json.accessToken)).status, 200);
      assert.equal((await refresh(maxine, (await session(maxine, 'rex')).refreshToken)).status, 200, 'a new sign-in is a new session');
    });

    test('two refreshes of the same token at once: one succeeds and the session is revoked', async () => {
      await createUser(maxine, 'cat', 'viewer');
      const s = await session(maxine, 'cat');
      const answers = await Promise.all([refresh(maxine, s.refreshToken), refresh(maxine, s.refreshToken)]);
      assert.deepEqual(answers.map((a) => a.status).sort(), [200, 401], answers.map((a) => a.text).join(' / '));
      const won = answers.find((a) => a.status === 200)!;
      assert.match(answers.find((a) => a.status === 401)!.json.message, /already used; the session is revoked/);
      assertUnauthorized(await refresh(maxine, won.json.refreshToken), "the winner's refresh token after the revocation");
    });

    test('sign-out ends that session only; its refresh token is then refused, and the sign-out is audited', async () => {
      await createUser(maxine, 'otis', 'viewer');
      const leaving = await session(maxine, 'otis');
      const staying = await session(maxine, 'otis');
      const signout = (refreshToken: string) => maxine.call('POST', '/api/maxine/signout', { refreshToken }, { ...NO_CREDENTIALS, 'x-request-id': 'signout-otis' });

      assertUnauthorized(await signout(leaving.accessToken), 'an access token is not a refresh token');
      const out = await signout(leaving.refreshToken);
      assert.equal(out.status, 200, out.text);
      assert.deepEqual(out.json, { message: 'signed out' });
      assertUnauthorized(await refresh(maxine, leaving.refreshToken), 'refresh token of the ended session');
      assertUnauthorized(await signout(leaving.refreshToken), 'signing out twice');
      const renewed = await refresh(maxine, staying.refreshToken);
      assert.equal(renewed.status, 200, `the other session of the same user lives on: ${renewed.text}`);
      assert.equal((await whoami(maxine, renewed.json.accessToken)).status, 200);

      const audited = (await maxine.call('GET', '/api/actuator/audit?actor=otis')).json.events as any[];
      assert.deepEqual(
        audited.filter((e) => e.action === 'signout').map((e) => [e.result, e.status, e.actor.kind, e.route]),
        [['succeeded', 200, 'user', '/api/maxine/signout']],
      );
    });

    test('changing the password needs the current one and ends every older session', async () => {
      await createUser(maxine, 'cora', 'viewer', 'cora-password-1');
      const old = await session(maxine, 'cora', 'cora-password-1');

      const wrong = await maxine.call('PUT', '/api/maxine/change-password', { password: 'not-the-password', newPassword: 'cora-password-2' }, bearer(old.accessToken));
      assert.equal(wrong.status, 400, wrong.text);
      assert.equal(wrong.json.details?.[0]?.field, 'password');
      assert.equal((await whoami(maxine, old.accessToken)).status, 200, 'a refused change changes nothing');

      const changed = await maxine.call('PUT', '/api/maxine/change-password', { password: 'cora-password-1', newPassword: 'cora-password-2' }, bearer(old.accessToken));
      assert.equal(changed.status, 200, changed.text);
      assert.equal(changed.json.message, 'successfully updated password');
      assertUnauthorized(await whoami(maxine, old.accessToken), 'access token from before the change');
      assertUnauthorized(await refresh(maxine, old.refreshToken), 'refresh token from before the change');
      assert.equal((await whoami(maxine, changed.json.accessToken)).status, 200, 'the new session works');
      assert.equal((await refresh(maxine, changed.json.refreshToken)).status, 200, 'the new refresh token works');
      assert.equal((await signIn(maxine, 'cora', 'cora-password-2')).status, 200);
      assertUnauthorized(await signIn(maxine, 'cora', 'cora-password-1'), 'old password');
    });

    test("an admin's role change or password reset ends the user's older sessions", async () => {
      await createUser(maxine, 'rob', 'operator');
      const before = await session(maxine, 'rob');
      const demoted = await maxine.call('PUT', '/api/maxine/users/rob/role', { role: 'viewer' });
      assert.equal(demoted.status, 200, demoted.text);
      assert.equal(demoted.json.role, 'viewer');
      assertUnauthorized(await whoami(maxine, before.accessToken), 'access token from before the role change');
      assertUnauthorized(await refresh(maxine, before.refreshToken), 'refresh token from before the role change');
      const asViewer = await session(maxine, 'rob');
      assert.equal(asViewer.role, 'viewer');
      assert.equal((await whoami(maxine, asViewer.accessToken)).json.role, 'viewer');
      assert.equal((await register(maxine, 'rob-service', bearer(asViewer.accessToken))).status, 200, 'open posture: register stays open');
      assert.equal((await maxine.call('PUT', '/api/maxine/control/config', {}, bearer(asViewer.accessToken))).status, 403, 'the new role applies');

      const reset = await maxine.call('PUT', '/api/maxine/users/rob/password', { password: 'rob-new-password' });
      assert.equal(reset.status, 200, reset.text);
      assertUnauthorized(await whoami(maxine, asViewer.accessToken), 'access token from before the reset');
      assertUnauthorized(await refresh(maxine, asViewer.refreshToken), 'refresh token from before the reset');
      assertUnauthorized(await signIn(maxine, 'rob', 'rob-password'), 'old password after the reset');
      assert.equal((await signIn(maxine, 'rob', 'rob-new-password')).status, 200);
    });

    test("deleting a user ends the user's sessions", async () => {
      await createUser(maxine, 'dora', 'operator');
      const s = await session(maxine, 'dora');
      assert.equal((await maxine.call('DELETE', '/api/maxine/users/dora')).status, 200);
      assertUnauthorized(await whoami(maxine, s.accessToken), "deleted user's access token");
      assertUnauthorized(await refresh(maxine, s.refreshToken), "deleted user's refresh token");
      assertUnauthorized(await signIn(maxine, 'dora', 'dora-password'), 'deleted user signing in');
    });

    test("a user created again under a deleted user's name does not inherit the deleted user's sessions", async () => {
      await createUser(maxine, 'dana', 'viewer', 'dana-first-password');
      const old = await session(maxine, 'dana', 'dana-first-password');
      assert.equal((await maxine.call('DELETE', '/api/maxine/users/dana')).status, 200);
      assertUnauthorized(await whoami(maxine, old.accessToken), 'right after the deletion');
      // Somebody else gets the name (and a password the former holder does not know).
      await createUser(maxine, 'dana', 'viewer', 'dana-second-password');
      assertUnauthorized(await whoami(maxine, old.accessToken), "the former user's access token after the name was reused");
      assertUnauthorized(await refresh(maxine, old.refreshToken), "the former user's refresh token after the name was reused");
    });

    test('the last admin can be neither deleted nor demoted', async () => {
      const deleted = await maxine.call('DELETE', `/api/maxine/users/${TEST_ADMIN.userName}`);
      assert.equal(deleted.status, 409, deleted.text);
      assert.equal(deleted.json.code, 'CONFLICT');
      const demoted = await maxine.call('PUT', `/api/maxine/users/${TEST_ADMIN.userName}/role`, { role: 'operator' });
      assert.equal(demoted.status, 409, demoted.text);
      assert.equal((await whoami(maxine, maxine.adminToken)).json.role, 'admin', 'nothing changed: the token still works');

      // With a second admin the first may go.
      await createUser(maxine, 'ada', 'admin');
      const ada = await session(maxine, 'ada');
      const demoteAda = await maxine.call('PUT', '/api/maxine/users/ada/role', { role: 'operator' });
      assert.equal(demoteAda.status, 200, demoteAda.text);
      assert.equal((await maxine.call('DELETE', '/api/maxine/users/ada')).status, 200);
      assertUnauthorized(await whoami(maxine, ada.accessToken), 'deleted admin');
    });
  });

  describe('sign-in limits', () => {
    test('failed attempts per user name: after 3 the user gets 429 with Retry-After, others still sign in', async () => {
      const maxine = await startTestMaxine({ jwtSecret: SECRET, signinAttemptsPerUser: 3 });
      try {
        await createUser(maxine, 'rita', 'viewer');
        for (let i = 1; i <= 3; i++) assertUnauthorized(await signIn(maxine, 'rita', `guess-number-${i}`), `guess ${i}`);
        const locked = await signIn(maxine, 'rita', 'rita-password');
        assert.equal(locked.status, 429, locked.text);
        assert.equal(locked.json.code, 'LIMIT_EXCEEDED');
        const retryAfter = Number(locked.headers.get('retry-after'));
        assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After: ${locked.headers.get('retry-after')}`);
        const other = await signIn(maxine, TEST_ADMIN.userName, TEST_ADMIN.password);
        assert.equal(other.status, 200, other.text);
      } finally {
        await maxine.stop();
      }
    });

    test('all attempts per address: the 6th gets 429 whatever the user and password', async () => {
      const maxine = await startTestMaxine({ jwtSecret: SECRET, signinAttemptsPerAddress: 5 });
      try {
        // startTestMaxine's own sign-in was the 1st attempt from 127.0.0.1.
        assert.equal((await signIn(maxine, TEST_ADMIN.userName, 'wrong-password')).status, 401); // 2nd
        assert.equal((await signIn(maxine, 'nobody', 'wrong-password')).status, 401); // 3rd
        assert.equal((await signIn(maxine, 'somebody-else', 'wrong-password')).status, 401); // 4th
        assert.equal((await signIn(maxine, TEST_ADMIN.userName, TEST_ADMIN.password)).status, 200); // 5th
        const sixth = await signIn(maxine, TEST_ADMIN.userName, TEST_ADMIN.password);
        assert.equal(sixth.status, 429, sixth.text);
        assert.ok(Number(sixth.headers.get('retry-after')) >= 1);
        assert.equal((await signIn(maxine, 'yet-another-user', 'whatever-password')).status, 429);
        assert.equal((await whoami(maxine, maxine.adminToken)).status, 200, 'sessions already issued are unaffected');
      } finally {
        await maxine.stop();
      }
    });

    test('failed refreshes and sign-outs spend the address attempts and are audited; a good refresh does not count', async () => {
      const maxine = await startTestMaxine({ jwtSecret: SECRET, signinAttemptsPerAddress: 5 });
      try {
        // startTestMaxine's own sign-in was the 1st attempt from 127.0.0.1, this one the 2nd.
        const good = await session(maxine, TEST_ADMIN.userName, TEST_ADMIN.password);
        // Each refresh spends its token, so each uses the one the previous answered.
        let refreshToken = good.refreshToken;
        for (let i = 0; i < 3; i++) {
          const renewed = await refresh(maxine, refreshToken);
          assert.equal(renewed.status, 200, `good refresh ${i + 1}: ${renewed.text}`);
          refreshToken = renewed.json.refreshToken;
        }
        assertUnauthorized(await refresh(maxine, 'not-a-token'), 'a forged refresh token'); // 3rd
        assertUnauthorized(await refresh(maxine, good.accessToken), 'an access token'); // 4th
        assertUnauthorized(await maxine.call('POST', '/api/maxine/signout', { refreshToken: 'not-a-token' }, NO_CREDENTIALS), 'a forged sign-out'); // 5th
        const limited = await refresh(maxine, refreshToken);
        assert.equal(limited.status, 429, limited.text);
        assert.ok(Number(limited.headers.get('retry-after')) >= 1);
        assert.equal((await maxine.call('POST', '/api/maxine/signout', { refreshToken }, NO_CREDENTIALS)).status, 429, 'sign-outs share the address limit');
        assert.equal((await signIn(maxine, TEST_ADMIN.userName, TEST_ADMIN.password)).status, 429, 'sign-ins share the address limit');
        const audited = (await maxine.call('GET', '/api/actuator/audit')).json.events as any[];
        assert.deepEqual(
          audited.filter((e) => e.action === 'refresh' || e.action === 'signout').map((e) => [e.action, e.result, e.status, e.actor.kind, e.actor.id]),
          [
            ['signout', 'denied', 429, 'anonymous', null],
            ['refresh', 'denied', 429, 'anonymous', null],
            ['signout', 'failed', 401, 'anonymous', null],
            ['refresh', 'failed', 401, 'anonymous', null],
            ['refresh', 'failed', 401, 'anonymous', null],
          ],
        );
      } finally {
        await maxine.stop();
      }
    });
  });

  describe('signing keys', () => {
    test('rotating the secret: old tokens live while the old secret is listed as previous, and die once it is gone', async () => {
      const dir = tempDir('rotation');
      const secretA = 'rotation-secret-A-0123456789abcdefghijklmnop';
      const secretB = 'rotation-secret-B-0123456789abcdefghijklmnop';
      let maxine: TestMaxine | undefined;
      try {
        maxine = await startTestMaxine({ jwtSecret: secretA }, dir);
        const oldToken = maxine.adminToken;
        const oldKid = decodeProtectedHeader(oldToken).kid;
        await maxine.stop();

        maxine = await startTestMaxine({ jwtSecret: secretB, jwtPreviousSecrets: [secretA] }, dir);
        const during = await whoami(maxine, oldToken);
        assert.equal(during.status, 200, during.text);
        const newToken = maxine.adminToken;
        const newKid = decodeProtectedHeader(newToken).kid;
        assert.ok(typeof newKid === 'string' && newKid !== oldKid, `new kid ${newKid} vs old ${oldKid}`);
        assert.ok(!secretA.includes(oldKid!) && !secretB.includes(newKid), 'kids do not reveal the secrets');
        await maxine.stop();

        maxine = await startTestMaxine({ jwtSecret: secretB }, dir);
        assertUnauthorized(await whoami(maxine, oldToken), 'token signed with the retired secret');
        assert.equal((await whoami(maxine, newToken)).status, 200, 'tokens signed with the current secret still work');
      } finally {
        await maxine?.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test('with an EC P-256 private key the JWKS publishes the public key and verifies session tokens (ES256)', async () => {
      const dir = tempDir('ec-key');
      const keyFile = join(dir, 'jwt-key.pem');
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      let maxine: TestMaxine | undefined;
      try {
        maxine = await startTestMaxine({ jwtPrivateKeyFile: keyFile });
        const res = await maxine.call('GET', '/api/maxine/.well-known/jwks.json', undefined, NO_CREDENTIALS);
        assert.equal(res.status, 200, res.text);
        const jwks = res.json as JSONWebKeySet;
        assert.equal(jwks.keys.length, 1);
        const [key] = jwks.keys;
        const header = decodeProtectedHeader(maxine.adminToken);
        assert.equal(header.alg, 'ES256');
        assert.equal(key!.kid, header.kid);
        assert.equal(key!.kty, 'EC');
        assert.equal(key!.crv, 'P-256');
        assert.equal(key!.alg, 'ES256');
        assert.equal('d' in key!, false, 'the private part is never published');

        const verified = await jwtVerify(maxine.adminToken, createLocalJWKSet(jwks), { issuer: 'maxine', audience: 'maxine' });
        assert.equal(verified.protectedHeader.alg, 'ES256');
        assert.equal(verified.payload.sub, TEST_ADMIN.userName);
        assert.equal((await whoami(maxine, maxine.adminToken)).status, 200);
      } finally {
        await maxine?.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('service tokens (MAXINE_REQUIRE_CLIENT_AUTH on)', { concurrency: 1 }, () => {
    let maxine: TestMaxine;
    before(async () => {
      maxine = await startTestMaxine({ jwtSecret: SECRET, requireClientAuth: true });
    });
    after(() => maxine.stop());

    test('a scoped token does what its scope says and nothing else, until it is revoked; the list never shows its secret', async () => {
      const created = await maxine.call('POST', '/api/maxine/tokens', {
        name: 'orders-client',
        scopes: [{ actions: ['register', 'discover'], services: 'orders-*' }],
        expiresInSec: 3600,
      });
      assert.equal(created.status, 201, created.text);
      const token = created.json.token as string;
      const parts = /^mxt_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/.exec(token);
      assert.ok(parts, token);
      assert.equal(parts[1], created.json.id);
      const secret = parts[2]!;
      const asToken = bearer(token);

      const registered = await register(maxine, 'orders-api', asToken);
      assert.equal(registered.status, 200, registered.text);
      const found = await discover(maxine, 'orders-api', asToken);
      assert.equal(found.status, 200, found.text);
      assert.equal(found.json.serviceName ?? found.json.service ?? 'orders-api', 'orders-api');
      assert.equal((await discover(maxine, 'orders-api', NO_CREDENTIALS)).status, 401, 'anonymous discovery needs credentials');

      const payments = await register(maxine, 'payments', asToken);
      assert.equal(payments.status, 403, payments.text);
      assert.equal((await discover(maxine, 'payments', asToken)).status, 403);
      const servers = await maxine.call('GET', '/api/maxine/serviceops/servers', undefined, asToken);
      assert.equal(servers.status, 403, servers.text);

      const list = await maxine.call('GET', '/api/maxine/tokens');
      assert.equal(list.status, 200, list.text);
      const listed = list.json.tokens.find((t: { id: string }) => t.id === created.json.id);
      assert.ok(listed, list.text);
      assert.equal(listed.name, 'orders-client');
      assert.deepEqual(listed.scopes, [{ actions: ['register', 'discover'], services: 'orders-*' }]);
      const expiresAt = Date.parse(listed.expiresAt);
      assert.ok(Math.abs(expiresAt - (Date.now() + 3600_000)) < 60_000, `expiresAt ${listed.expiresAt}`);
      const sha = createHash('sha256').update(secret).digest('hex');
      for (const leak of [token, secret, sha]) assert.ok(!list.text.includes(leak), 'the list shows neither the token, nor its secret, nor its hash');
      assert.equal((await maxine.call('POST', '/api/maxine/tokens', { name: 'short', scopes: [{ actions: ['discover'], services: '*' }], expiresInSec: 59 })).status, 400);

      const revoked = await maxine.call('DELETE', `/api/maxine/tokens/${created.json.id}`);
      assert.equal(revoked.status, 200, revoked.text);
      assertUnauthorized(await register(maxine, 'orders-api', asToken), 'revoked token registering');
      assertUnauthorized(await discover(maxine, 'orders-api', asToken), 'revoked token discovering');
      assert.equal((await maxine.call('DELETE', `/api/maxine/tokens/${created.json.id}`)).status, 404);
    });
  });

  describe('ACL rules', { concurrency: 1 }, () => {
    const dir = tempDir('acl');
    let maxine: TestMaxine;
    let operator: string;
    let viewer: string;
    const rules = [
      { effect: 'deny', principal: 'role:operator', actions: ['register'], services: 'payments-*' },
      { effect: 'allow', principal: 'user:vera', actions: ['config:write'], services: '*' },
      { effect: 'deny', principal: 'anonymous', actions: ['discover'], services: 'secret-*' },
    ];

    before(async () => {
      maxine = await startTestMaxine({ jwtSecret: SECRET }, dir);
      await createUser(maxine, 'otto', 'operator');
      await createUser(maxine, 'vera', 'viewer');
      operator = (await session(maxine, 'otto')).accessToken;
      viewer = (await session(maxine, 'vera')).accessToken;
    });
    after(async () => {
      await maxine.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    test('deny wins over role and posture, allow rules add to a role, anonymous rules hold in the open posture', async () => {
      const heartBeatTimeout = (await maxine.call('GET', '/api/maxine/control/config')).json.heartBeatTimeout;
      assert.equal((await maxine.call('PUT', '/api/maxine/control/config', { heartBeatTimeout }, bearer(viewer))).status, 403, 'viewers may not write settings');
      assert.equal((await register(maxine, 'payments-eu', bearer(operator))).status, 200, 'before the rules operators register anything');

      const put = await maxine.call('PUT', '/api/maxine/acl', { rules });
      assert.equal(put.status, 200, put.text);
      assert.deepEqual(put.json.rules, rules);
      assert.deepEqual((await maxine.call('GET', '/api/maxine/acl')).json.rules, rules);

      assert.equal((await register(maxine, 'orders', bearer(operator))).status, 200);
      const denied = await register(maxine, 'payments-eu', bearer(operator), 'node-2');
      assert.equal(denied.status, 403, denied.text);
      assert.match(denied.json.message, /ACL rule 1/);
      assert.equal((await register(maxine, 'payments-eu', {}, 'node-3')).status, 200, 'admins are unaffected');

      const write = await maxine.call('PUT', '/api/maxine/control/config', { heartBeatTimeout }, bearer(viewer));
      assert.equal(write.status, 200, write.text);

      assert.equal((await register(maxine, 'secret-x')).status, 200);
      assertUnauthorized(await discover(maxine, 'secret-x', NO_CREDENTIALS), 'anonymous discovery of secret-x');
      assert.equal((await discover(maxine, 'orders', NO_CREDENTIALS)).status, 200, 'other services stay open');
      assert.equal((await discover(maxine, 'secret-x', bearer(viewer))).status, 200, 'the rule names anonymous callers only');
    });

    test('invalid rules are refused with details naming the field, and leave the rules in force alone', async () => {
      const good = rules[0]!;
      const cases: [unknown, string][] = [
        [{ ...good, effect: 'maybe' }, 'rules[0].effect'],
        [{ ...good, actions: ['fly'] }, 'rules[0].actions'],
        [{ ...good, actions: [] }, 'rules[0].actions'],
        [{ ...good, principal: 'group:x' }, 'rules[0].principal'],
        [{ ...good, principal: 'role:superuser' }, 'rules[0].principal'],
        [{ ...good, services: 'pay ments/*' }, 'rules[0].services'],
        [{ ...good, note: 'extra' }, 'rules[0].note'],
      ];
      for (const [rule, field] of cases) {
        const res = await maxine.call('PUT', '/api/maxine/acl', { rules: [rule] });
        assert.equal(res.status, 400, `${JSON.stringify(rule)}: ${res.status} ${res.text}`);
        assert.ok(
          res.json.details?.some((d: { field: string }) => d.field === field),
          `${JSON.stringify(rule)}: details ${JSON.stringify(res.json.details)} do not name ${field}`,
        );
      }
      const second = await maxine.call('PUT', '/api/maxine/acl', { rules: [good, { ...good, effect: 'perhaps' }] });
      assert.equal(second.status, 400);
      assert.ok(second.json.details.some((d: { field: string }) => d.field === 'rules[1].effect'), second.text);
      assert.deepEqual((await maxine.call('GET', '/api/maxine/acl')).json.rules, rules);
    });

    test('rules survive a restart', async () => {
      await maxine.stop();
      maxine = await startTestMaxine({ jwtSecret: SECRET }, dir);
      assert.deepEqual((await maxine.call('GET', '/api/maxine/acl')).json.rules, rules);
      assert.equal((await register(maxine, 'payments-us', bearer(operator))).status, 403);
      assert.equal((await register(maxine, 'orders', bearer(operator), 'node-9')).status, 200);
      assertUnauthorized(await discover(maxine, 'secret-x', NO_CREDENTIALS), 'anonymous discovery of secret-x after the restart');
    });
  });

  describe('audit', { concurrency: 1 }, () => {
    let maxine: TestMaxine;
    let viewer: string;
    before(async () => {
      maxine = await startTestMaxine({ jwtSecret: SECRET });
    });
    after(() => maxine.stop());

    test('refusals, user changes, failed sign-ins and registrations are audited, newest first, in the ring and the file', async () => {
      const created = await maxine.call('POST', '/api/maxine/users', { userName: 'vera', password: 'vera-password', role: 'viewer' }, { 'x-request-id': 'audit-create-user' });
      assert.equal(created.status, 201, created.text);
      viewer = (await session(maxine, 'vera')).accessToken;
      assertUnauthorized(await signIn(maxine, 'vera', 'wrong-password', { 'x-request-id': 'audit-failed-signin' }), 'failed sign-in');
      const refused = await maxine.call('DELETE', '/api/maxine/users/admin?note=raw-url-part', undefined, { ...bearer(viewer), 'x-request-id': 'audit-denied' });
      assert.equal(refused.status, 403, refused.text);
      const spec = { hostName: '10.0.0.9', nodeName: 'node-a', serviceName: 'audited', port: 8080 };
      assert.equal((await maxine.call('POST', '/api/maxine/serviceops/register', spec, { 'x-request-id': 'audit-register' })).status, 200);
      assert.equal((await maxine.call('POST', '/api/maxine/serviceops/register', spec, { 'x-request-id': 'audit-reregister' })).status, 200);

      const res = await maxine.call('GET', '/api/actuator/audit');
      assert.equal(res.status, 200, res.text);
      const events = res.json.events as any[];
      const byId = (id: string) => events.find((e) => e.requestId === id);
      const order = ['audit-register', 'audit-denied', 'audit-failed-signin', 'audit-create-user'].map((id) => events.indexOf(byId(id)));
      assert.ok(order.every((i) => i >= 0), `missing events: ${JSON.stringify(events.map((e) => e.requestId))}`);
      assert.deepEqual([...order].sort((a, b) => a - b), order, 'newest first');
      assert.equal(byId('audit-reregister'), undefined, 'a re-registration that changes nothing is not an event');

      assert.deepEqual(pick(byId('audit-create-user')), {
        actor: { kind: 'user', id: 'admin', role: 'admin' },
        action: 'users:manage',
        service: null,
        method: 'POST',
        route: '/api/maxine/users',
        result: 'succeeded',
        status: 201,
      });
      assert.deepEqual(pick(byId('audit-failed-signin')), {
        actor: { kind: 'user', id: 'vera', role: null },
        action: 'signin',
        service: null,
        method: 'POST',
        route: '/api/maxine/signin',
        result: 'failed',
        status: 401,
      });
      assert.deepEqual(pick(byId('audit-denied')), {
        actor: { kind: 'user', id: 'vera', role: 'viewer' },
        action: 'users:manage',
        service: null,
        method: 'DELETE',
        route: '/api/maxine/users/:userName',
        result: 'denied',
        status: 403,
      });
      assert.equal(typeof byId('audit-denied').reason, 'string');
      assert.deepEqual(pick(byId('audit-register')), {
        actor: { kind: 'user', id: 'admin', role: 'admin' },
        action: 'register',
        service: 'audited',
        method: 'POST',
        route: '/api/maxine/serviceops/register',
        result: 'succeeded',
        status: 200,
      });
      assert.ok(!res.text.includes('raw-url-part'), 'routes are patterns, never raw URLs');

      const denied = (await maxine.call('GET', '/api/actuator/audit?result=denied')).json.events as any[];
      assert.ok(denied.length >= 1 && denied.every((e) => e.result === 'denied'));
      assert.ok(denied.some((e) => e.requestId === 'audit-denied'));
      const vera = (await maxine.call('GET', '/api/actuator/audit?actor=vera')).json.events as any[];
      assert.ok(vera.every((e) => e.actor.id === 'vera'));
      assert.deepEqual(
        vera.map((e) => e.requestId).filter((id: string) => id.startsWith('audit-')),
        ['audit-denied', 'audit-failed-signin'],
      );
      const service = (await maxine.call('GET', '/api/actuator/audit?service=audited')).json.events as any[];
      assert.deepEqual(service.map((e) => e.requestId), ['audit-register']);
      const newest = (await maxine.call('GET', '/api/actuator/audit?limit=1')).json.events as any[];
      assert.deepEqual(newest, [events[0]]);

      // The file holds the same events as JSON lines (written asynchronously, in batches).
      const file = join(maxine.dataDir, 'audit', 'audit.log');
      const lines = await poll('the audit file to hold the events', () => {
        if (!existsSync(file)) return undefined;
        const parsed = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
        return parsed.some((e) => e.requestId === 'audit-register') ? parsed : undefined;
      });
      for (const event of events) {
        assert.deepEqual(lines.find((l) => l.requestId === event.requestId), event, `file line for ${event.requestId}`);
      }
      assert.ok(!lines.some((l) => l.requestId === 'audit-reregister'));
    });

    test('viewers may not read the audit', async () => {
      const res = await maxine.call('GET', '/api/actuator/audit', undefined, bearer(viewer));
      assert.equal(res.status, 403, res.text);
      assertUnauthorized(await maxine.call('GET', '/api/actuator/audit', undefined, NO_CREDENTIALS), 'anonymous audit read');
    });
  });

  test('no password or token shows up in the debug log, the audit file or the audit route', async () => {
    const dir = tempDir('secrets');
    let p: MaxineProcess | undefined;
    try {
      p = await spawnMaxine(['--data-dir', dir, '--log-level', 'debug']);
      const secrets: string[] = [TEST_ADMIN.password];
      const keep = (...values: string[]) => {
        for (const v of values) {
          secrets.push(v);
          // A JWT's signature alone is enough to matter.
          if (v.split('.').length === 3) secrets.push(v.split('.')[2]!);
        }
      };

      const admin = await session(p, TEST_ADMIN.userName, TEST_ADMIN.password);
      keep(admin.accessToken, admin.refreshToken);
      const asAdmin = bearer(admin.accessToken);
      const wrongPassword = 'wrong-admin-password-7f3a9c';
      keep(wrongPassword);
      assertUnauthorized(await signIn(p, TEST_ADMIN.userName, wrongPassword), 'wrong admin password');
      assertUnauthorized(await signIn(p, 'nobody-here', 'unknown-user-password-1b2c'), 'unknown user');
      keep('unknown-user-password-1b2c');

      assert.equal((await p.call('POST', '/api/maxine/users', { userName: 'lea', password: 'lea-first-password-4d5e', role: 'operator' }, asAdmin)).status, 201);
      keep('lea-first-password-4d5e', 'lea-second-password-6f7a');
      const lea = await session(p, 'lea', 'lea-first-password-4d5e');
      keep(lea.accessToken, lea.refreshToken);
      const changed = await p.call('PUT', '/api/maxine/change-password', { password: 'lea-first-password-4d5e', newPassword: 'lea-second-password-6f7a' }, bearer(lea.accessToken));
      assert.equal(changed.status, 200, changed.text);
      keep(changed.json.accessToken, changed.json.refreshToken);
      const renewed = await refresh(p, admin.refreshToken);
      assert.equal(renewed.status, 200, renewed.text);
      keep(renewed.json.accessToken, renewed.json.refreshToken);

      const created = await p.call('POST', '/api/maxine/tokens', { name: 'ci', scopes: [{ actions: ['register', 'discover'], services: '*' }] }, asAdmin);
      assert.equal(created.status, 201, created.text);
      const serviceToken = created.json.token as string;
      keep(serviceToken, serviceToken.split('_').slice(2).join('_'));
      assert.equal((await register(p, 'leak-check', bearer(serviceToken))).status, 200);

      const forgedService = `mxt_${created.json.id}_${'A'.repeat(43)}`;
      const badSignature = `${admin.accessToken.slice(0, -6)}AAAAAA`;
      const garbage = 'not-a-token-but-secret-looking-9e8d7c';
      keep(forgedService, badSignature, garbage);
      for (const bad of [forgedService, badSignature, garbage]) {
        assertUnauthorized(await p.call('GET', '/api/maxine/serviceops/servers', undefined, bearer(bad)), 'bad bearer');
      }
      assertUnauthorized(await p.call('GET', '/api/maxine/serviceops/servers', undefined, { authorization: `Basic ${Buffer.from(`admin:${TEST_ADMIN.password}`).toString('base64')}` }), 'basic');
      secrets.push(Buffer.from(`admin:${TEST_ADMIN.password}`).toString('base64'));
      assert.equal((await p.call('GET', '/api/maxine/whoami', undefined, { ...bearer(garbage), 'x-request-id': 'leak-last' })).status, 401);

      const auditFile = join(dir, 'audit', 'audit.log');
      const fileText = await poll('the audit file to hold the last request', () => {
        if (!existsSync(auditFile)) return undefined;
        const text = readFileSync(auditFile, 'utf8');
        return text.includes('leak-last') ? text : undefined;
      });
      const route = await p.call('GET', '/api/actuator/audit', undefined, bearer(renewed.json.accessToken));
      assert.equal(route.status, 200, route.text);
      assert.ok(route.json.events.length >= 5);
      await stopProcess(p);
      const output = p.output();
      assert.match(output, /maxine listening/, 'the log output was captured');

      for (const secret of secrets) {
        assert.ok(secret.length >= 8, `secret too short to search for: ${secret}`);
        for (const [where, text] of [['log output', output], ['audit file', fileText], ['audit route', route.text]] as const) {
          assert.ok(!text.includes(secret), `${where} contains a credential (${secret.slice(0, 12)}…)`);
        }
      }
    } finally {
      await stopProcess(p);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** The audit fields every event must have right; time, address, requestId, traceId, reason vary. */
function pick(event: any): Record<string, unknown> {
  assert.ok(event, 'event missing');
  assert.equal(typeof event.requestId, 'string');
  assert.ok(!Number.isNaN(Date.parse(event.time)));
  const { actor, action, service, method, route, result, status } = event;
  return { actor, action, service, method, route, result, status };
}
