import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { closedAfterEach } from '../../test/helpers/closed-after-each.ts';
import { LaggingKv } from '../../test/helpers/lagging-kv.ts';
import { bootstrapUsers } from './bootstrap.ts';
import { SECURITY_KV_PREFIX } from './security-kv.ts';
import { UserError, Users, type UserRecord } from './users.ts';

const KEY = (userName: string) => `${SECURITY_KV_PREFIX}users/${userName}`;

class Setup extends LaggingKv {
  readonly users = new Users(this.catalog, (key, expected, value) => this.writeIf(key, expected, value), Date.now, (message) => {
    throw new Error(message);
  });

  /** The record the store holds (which this replica may not have yet). */
  stored(userName: string): UserRecord | undefined {
    const value = this.store.get(KEY(userName));
    return value === undefined ? undefined : (JSON.parse(value) as UserRecord);
  }

  close(): void {
    this.users.close();
  }
}

const setup = closedAfterEach(() => new Setup());
const refusal = (kind: UserError['kind']) => (error: unknown) => error instanceof UserError && error.kind === kind;

describe('users', () => {
  test('create, change of role and password (each a new credential version), removal', async () => {
    const s = setup();
    const ann = await s.users.create('ann', 'a-long-password', 'viewer');
    assert.equal(s.users.get('ann')?.uid, ann.uid);
    await assert.rejects(s.users.create('ann', 'another-password', 'admin'), refusal('exists'));
    const promoted = await s.users.setRole('ann', 'operator');
    assert.deepEqual([promoted.role, promoted.version], ['operator', 2]);
    const changed = await s.users.setPassword('ann', 'a-new-long-password');
    assert.deepEqual([changed.role, changed.version], ['operator', 3]);
    assert.ok(await s.users.check('ann', 'a-new-long-password'));
    await s.users.remove('ann');
    assert.equal(s.users.get('ann'), undefined);
    await assert.rejects(s.users.setRole('ann', 'admin'), refusal('missing'));
  });

  test('a role change racing a password change made on another replica is refused, not lost', async () => {
    const s = setup();
    const bob = await s.users.create('bob', 'a-long-password', 'admin');
    // Bob changed his password on another replica; the feed has not brought it here.
    const theirs = { ...bob, passwordHash: 'changed-there', version: 2 };
    s.elsewhere(KEY('bob'), JSON.stringify(theirs));
    await assert.rejects(s.users.setRole('bob', 'viewer'), (error: unknown) => {
      assert.ok(refusal('conflict')(error));
      assert.match((error as Error).message, /changed or deleted on another replica/);
      return true;
    });
    assert.deepEqual(s.stored('bob'), theirs, 'their change stands; the demotion is to be made again');
    s.put(KEY('bob'), JSON.stringify(theirs));
    const demoted = await s.users.setRole('bob', 'viewer');
    assert.deepEqual([demoted.role, demoted.passwordHash, demoted.version], ['viewer', 'changed-there', 3], 'made again, it keeps both changes');
  });

  test('a user deleted on another replica is not brought back by a change here', async () => {
    const s = setup();
    await s.users.create('cy', 'a-long-password', 'operator');
    s.elsewhere(KEY('cy'), null);
    await assert.rejects(s.users.setPassword('cy', 'a-new-long-password'), refusal('conflict'));
    await assert.rejects(s.users.setRole('cy', 'admin'), refusal('conflict'));
    assert.equal(s.stored('cy'), undefined);
  });

  test('a name created at the same time on another replica is taken: theirs stands', async () => {
    const s = setup();
    const theirs = { userName: 'dee', uid: 'theirs', role: 'viewer', passwordHash: 'x', version: 1, createdAt: 1, updatedAt: 1 };
    s.elsewhere(KEY('dee'), JSON.stringify(theirs));
    await assert.rejects(s.users.create('dee', 'a-long-password', 'admin'), refusal('exists'));
    assert.deepEqual(s.stored('dee'), theirs);
  });

  test('bootstrap shows no password when another replica created the admin meanwhile', async (t) => {
    const s = setup();
    const dataDir = await mkdtemp(join(tmpdir(), 'maxine-bootstrap-'));
    t.after(() => rm(dataDir, { recursive: true, force: true }));
    s.elsewhere(KEY('admin'), JSON.stringify({ userName: 'admin', uid: 'theirs', role: 'admin', passwordHash: 'x', version: 1, createdAt: 1, updatedAt: 1 }));
    const announced: string[] = [];
    await bootstrapUsers({ users: s.users, configured: [], dataDir, announce: (message) => announced.push(message) });
    assert.deepEqual(announced, []);
    assert.deepEqual(await readdir(dataDir), [], 'no password file');
    assert.equal(s.stored('admin')?.uid, 'theirs');
  });
});
