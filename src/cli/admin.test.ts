import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { createTestPki } from '../../test/helpers/certs.ts';
import { startTestMaxine, TEST_ADMIN, type TestMaxine } from '../../test/helpers/maxine.ts';
import { loadConfig } from '../config/index.ts';
import { parseScope } from './admin.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// The test's own environment must not lend the CLI a URL, credentials or passwords.
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('MAXINE_')));

interface Outcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The real CLI in a child process; `stdin` is written and closed (an empty stdin when not given). */
async function cli(args: readonly string[], env: Record<string, string> = {}, stdin = ''): Promise<Outcome> {
  const child = spawn(process.execPath, ['bin/maxine.js', ...args], { cwd: ROOT, env: { ...cleanEnv, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.on('error', () => {}); // a child that never reads stdin may close it first
  child.stdin.end(stdin);
  // 'close', not 'exit': the child's output may still be in its pipes when it exits.
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

// One server for the file; the suites below run side by side, each one's tests in order.
describe('maxine users and tokens', { concurrency: true }, () => {
  let maxine: TestMaxine;
  /** Signed in as the admin through a token, so most runs cost no sign-in. */
  let asAdmin: Record<string, string>;
  /** Signed in with the admin's user name and password (the CLI signs in first). */
  let asAdminUser: Record<string, string>;

  before(async () => {
    maxine = await startTestMaxine();
    asAdmin = { MAXINE_URL: maxine.url, MAXINE_TOKEN: maxine.adminToken };
    asAdminUser = { MAXINE_URL: maxine.url, MAXINE_USER: TEST_ADMIN.userName, MAXINE_PASSWORD: TEST_ADMIN.password };
  });
  after(() => maxine?.stop());

  async function signin(userName: string, password: string) {
    return maxine.call('POST', '/api/maxine/signin', { userName, password }, { authorization: '' });
  }

  function assertNotLeaked(outcome: Outcome, ...secrets: string[]): void {
    for (const secret of secrets) {
      assert.ok(!outcome.stdout.includes(secret), 'a password on stdout');
      assert.ok(!outcome.stderr.includes(secret), 'a password on stderr');
    }
  }

  describe('maxine users', { concurrency: 1 }, () => {
    const alicePassword = 'alice-from-stdin-1';
    let bobPassword = '';
    let bobToken = '';

    test('create with the password from stdin (signing in as the admin first); the password is not printed', async () => {
      const outcome = await cli(['users', 'create', 'alice', '--role', 'operator', '--new-password-stdin'], asAdminUser, `${alicePassword}\n`);
      assert.equal(outcome.code, 0, outcome.stderr);
      assert.equal(outcome.stdout, 'User "alice" created with role operator.\n');
      assertNotLeaked(outcome, alicePassword, TEST_ADMIN.password);
      const session = await signin('alice', alicePassword);
      assert.equal(session.status, 200);
      assert.equal(session.json.role, 'operator');
    });

    test('create without a password prints a generated one, once, that works', async () => {
      const outcome = await cli(['users', 'create', 'bob', '--role', 'viewer'], asAdmin);
      assert.equal(outcome.code, 0, outcome.stderr);
      const match = /^Generated password \(shown only once\): (\S+)$/m.exec(outcome.stdout);
      assert.ok(match, outcome.stdout);
      bobPassword = match[1]!;
      assert.match(bobPassword, /^[A-Za-z0-9_-]{24}$/);
      assert.equal(outcome.stdout.split(bobPassword).length, 2, 'printed exactly once');
      const session = await signin('bob', bobPassword);
      assert.equal(session.status, 200);
      assert.equal(session.json.role, 'viewer');
      bobToken = session.json.accessToken;
    });

    test('list shows users as text and as the JSON answer', async () => {
      const [text, json] = await Promise.all([cli(['users', 'list'], asAdmin), cli(['users', 'list', '--json'], asAdmin)]);
      assert.equal(text.code, 0, text.stderr);
      const lines = text.stdout.trimEnd().split('\n');
      assert.match(lines[0]!, /^USER\s+ROLE\s+CREATED\s+UPDATED$/);
      assert.ok(lines.some((l) => /^alice\s+operator\s+\d{4}-/.test(l)), text.stdout);
      assert.ok(lines.some((l) => /^bob\s+viewer\s+/.test(l)), text.stdout);
      assert.ok(lines.some((l) => /^admin\s+admin\s+/.test(l)), text.stdout);
      assert.equal(json.code, 0, json.stderr);
      const answer = JSON.parse(json.stdout) as { users: { userName: string; role: string }[] };
      assert.deepEqual(answer.users.map((u) => `${u.userName}:${u.role}`).sort(), ['admin:admin', 'alice:operator', 'bob:viewer']);
    });

    test("refusals exit 1 with the server's message and status: a viewer, the last admin, a wrong password, a short password", async () => {
      const [viewer, lastAdmin, wrongPassword, shortPassword] = await Promise.all([
        cli(['users', 'list'], { MAXINE_URL: maxine.url, MAXINE_TOKEN: bobToken }),
        cli(['users', 'delete', TEST_ADMIN.userName], asAdmin),
        cli(['users', 'list'], { ...asAdminUser, MAXINE_PASSWORD: 'not-the-password' }),
        cli(['users', 'create', 'carol', '--role', 'viewer', '--new-password-stdin'], asAdmin, 'short\n'),
      ]);
      for (const outcome of [viewer, lastAdmin, wrongPassword, shortPassword]) {
        assert.equal(outcome.code, 1, outcome.stderr);
        assert.equal(outcome.stdout, '');
      }
      assert.match(viewer.stderr, /^maxine: .+ \(HTTP 403 FORBIDDEN\)\n$/);
      assert.equal(lastAdmin.stderr, 'maxine: "admin" is the last admin; make another admin first. (HTTP 409 CONFLICT)\n');
      assert.equal(wrongPassword.stderr, 'maxine: signing in as "admin" failed: Wrong user name or password. (HTTP 401 UNAUTHORIZED)\n');
      assertNotLeaked(wrongPassword, 'not-the-password');
      assert.match(shortPassword.stderr, /\(HTTP 400 VALIDATION_FAILED\)/);
      assertNotLeaked(shortPassword, 'short\n');
    });

    test("set-role changes the role and the user's older token stops working", async () => {
      assert.equal((await maxine.call('GET', '/api/maxine/whoami', undefined, { authorization: `Bearer ${bobToken}` })).status, 200);
      const outcome = await cli(['users', 'set-role', 'bob', 'operator'], asAdmin);
      assert.equal(outcome.code, 0, outcome.stderr);
      assert.equal(outcome.stdout, 'User "bob" now has role operator.\n');
      assert.equal((await maxine.call('GET', '/api/maxine/whoami', undefined, { authorization: `Bearer ${bobToken}` })).status, 401);
      const users = await maxine.call('GET', '/api/maxine/users');
      assert.equal(users.json.users.find((u: { userName: string }) => u.userName === 'bob').role, 'operator');
    });

    test('reset-password: both passwords from stdin (sign-in first, then the new one), neither printed', async () => {
      const newPassword = 'bob-new-password-2';
      const outcome = await cli(
        ['users', 'reset-password', 'bob', '--user', TEST_ADMIN.userName, '--password-stdin', '--new-password-stdin', '--url', maxine.url],
        {},
        `${TEST_ADMIN.password}\n${newPassword}\n`,
      );
      assert.equal(outcome.code, 0, outcome.stderr);
      assert.equal(outcome.stdout, 'Password of "bob" reset.\n');
      assertNotLeaked(outcome, newPassword, TEST_ADMIN.password);
      assert.equal((await signin('bob', newPassword)).status, 200);
      assert.equal((await signin('bob', bobPassword)).status, 401);
    });

    test('reset-password without a new password generates one (in the JSON answer with --json)', async () => {
      const outcome = await cli(['users', 'reset-password', 'bob', '--json'], asAdmin);
      assert.equal(outcome.code, 0, outcome.stderr);
      const answer = JSON.parse(outcome.stdout) as { userName: string; generatedPassword: string };
      assert.equal(answer.userName, 'bob');
      assert.equal((await signin('bob', answer.generatedPassword)).status, 200);
    });

    test('delete removes a user; deleting one that does not exist is exit 1', async () => {
      const outcome = await cli(['users', 'delete', 'alice'], asAdmin);
      assert.equal(outcome.code, 0, outcome.stderr);
      assert.equal(outcome.stdout, 'User "alice" deleted.\n');
      const users = await maxine.call('GET', '/api/maxine/users');
      assert.ok(!users.json.users.some((u: { userName: string }) => u.userName === 'alice'));
      const again = await cli(['users', 'delete', 'alice'], asAdmin);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /\(HTTP 404 NOT_FOUND\)/);
    });

  });

  describe('maxine tokens', { concurrency: 1 }, () => {
    test('create with scopes, authenticate with the token, list, revoke', async () => {
      const created = await cli(
        ['tokens', 'create', 'orders-ci', '--scope', 'register,discover:orders-*', '--scope', 'registry:read:*', '--expires-in-sec', '3600', '--json'],
        asAdmin,
      );
      assert.equal(created.code, 0, created.stderr);
      const answer = JSON.parse(created.stdout) as { token: string; id: string; scopes: unknown; expiresAt: string | null };
      assert.deepEqual(answer.scopes, [
        { actions: ['register', 'discover'], services: 'orders-*' },
        { actions: ['registry:read'], services: '*' },
      ]);
      assert.ok(answer.expiresAt !== null);
      const bearer = { authorization: `Bearer ${answer.token}` };
      const whoami = await maxine.call('GET', '/api/maxine/whoami', undefined, bearer);
      assert.equal(whoami.status, 200);
      assert.equal(whoami.json.kind, 'token');
      assert.equal(whoami.json.id, answer.id);

      // The service token is a bearer for the CLI too, though it may not manage tokens.
      const [text, refused] = await Promise.all([
        cli(['tokens', 'create', 'billing', '--scope', 'discover:billing'], asAdmin),
        cli(['tokens', 'list'], { MAXINE_URL: maxine.url, MAXINE_TOKEN: answer.token }),
      ]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^Service token "billing" created: id [0-9a-f]{16}, expires never, scopes discover:billing\.\nToken \(shown only once\): \S+\n$/);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /\(HTTP 403 FORBIDDEN\)/);

      const [list, listJson] = await Promise.all([cli(['tokens', 'list'], asAdmin), cli(['tokens', 'list', '--json'], asAdmin)]);
      assert.equal(list.code, 0, list.stderr);
      const row = list.stdout.split('\n').find((l) => l.startsWith(answer.id));
      assert.ok(row, list.stdout);
      assert.match(row, /orders-ci\s+\d{4}-.*user:admin\s+register,discover:orders-\* registry:read:\*$/);
      assert.ok(!list.stdout.includes(answer.token), 'list never shows secrets');
      assert.deepEqual(
        (JSON.parse(listJson.stdout) as { tokens: { name: string }[] }).tokens.map((t) => t.name).sort(),
        ['billing', 'orders-ci'],
      );

      const revoked = await cli(['tokens', 'revoke', answer.id], asAdmin);
      assert.equal(revoked.code, 0, revoked.stderr);
      assert.equal(revoked.stdout, `Service token "${answer.id}" revoked.\n`);
      assert.equal((await maxine.call('GET', '/api/maxine/whoami', undefined, bearer)).status, 401);
    });
  });

  describe('usage errors exit 2', { concurrency: 1 }, () => {
    test('bad roles, scopes, missing options and missing credentials', async () => {
      const runs = await Promise.all([
        cli(['users', 'create', 'dave', '--role', 'boss'], asAdmin),
        cli(['users', 'set-role', 'bob', 'boss'], asAdmin),
        cli(['users', 'create', 'dave'], asAdmin),
        cli(['tokens', 'create', 'x', '--scope', 'fly:orders-*'], asAdmin),
        cli(['users', 'list'], { MAXINE_URL: maxine.url }),
        cli(['users', 'list'], { MAXINE_URL: maxine.url, MAXINE_USER: 'admin' }),
      ]);
      for (const outcome of runs) {
        assert.equal(outcome.code, 2, outcome.stderr);
        assert.equal(outcome.stdout, '');
      }
      assert.match(runs[0]!.stderr, /argument 'boss' is invalid\. Allowed choices are viewer, operator, admin/);
      assert.match(runs[1]!.stderr, /'boss' is invalid for argument 'role'/);
      assert.match(runs[2]!.stderr, /required option '--role <role>' not specified/);
      assert.match(runs[3]!.stderr, /unknown action "fly"/);
      assert.match(runs[4]!.stderr, /no credentials/);
      assert.match(runs[5]!.stderr, /no password for "admin": set MAXINE_PASSWORD or give --password-stdin/);
      const users = await maxine.call('GET', '/api/maxine/users');
      assert.ok(!users.json.users.some((u: { userName: string }) => u.userName === 'dave'));
    });

    test('scopes split at the last colon, since actions may contain one', () => {
      assert.deepEqual(parseScope('registry:read,discover:orders-*'), { actions: ['registry:read', 'discover'], services: 'orders-*' });
      assert.throws(() => parseScope('discover:orders/x'), /not a service-name pattern/);
    });
  });

  describe('connection problems exit 1', { concurrency: 1 }, () => {
    test('nothing listening', async () => {
      const outcome = await cli(['users', 'list', '--url', 'http://127.0.0.1:9'], asAdmin);
      assert.equal(outcome.code, 1);
      assert.match(outcome.stderr, /^maxine: cannot reach http:\/\/127\.0\.0\.1:9: .*ECONNREFUSED/);
    });

    test('HTTPS with a private CA needs --ca-file', async (t) => {
      const pki = await createTestPki(t);
      if (pki === null) return;
      const { startMaxine } = await import('../server.ts');
      const config = loadConfig({
        flags: {
          host: '127.0.0.1',
          dataDir: pki.dir,
          logLevel: 'silent',
          adminUsername: TEST_ADMIN.userName,
          adminPassword: TEST_ADMIN.password,
          tlsCertFile: pki.serverCertFile,
          tlsKeyFile: pki.serverKeyFile,
        },
        env: {},
      });
      // Closed in the test, not in t.after: the PKI's directory (its data directory too) goes in t.after.
      const secure = await startMaxine({ ...config, port: 0 });
      let untrusted: Outcome;
      let trusted: Outcome;
      try {
        assert.match(secure.url, /^https:/);
        const env = { ...asAdminUser, MAXINE_URL: secure.url };
        [untrusted, trusted] = await Promise.all([cli(['users', 'list'], env), cli(['users', 'list', '--json', '--ca-file', pki.caFile], env)]);
      } finally {
        await secure.close();
      }
      assert.equal(untrusted.code, 1);
      assert.match(untrusted.stderr, /cannot reach https:.*; give the CA that signed its certificate with --ca-file/);
      assert.equal(trusted.code, 0, trusted.stderr);
      assert.deepEqual(JSON.parse(trusted.stdout).users.map((u: { userName: string }) => u.userName), ['admin']);
    });
  });
});
