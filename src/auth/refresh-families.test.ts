import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ARRIVAL_GRACE_MS, RefreshFamilies, RefreshFamilyError, RefreshFamilyLagError, REFRESH_KV_PREFIX, type RefreshFamilyRecord } from './refresh-families.ts';
import { Sessions, type IssuedSession, type VerifiedRefresh } from './sessions.ts';
import { configuredKeyRing } from './signing-keys.ts';
import type { UserRecord } from './users.ts';
import { closedAfterEach } from '../../test/helpers/closed-after-each.ts';
import { LaggingKv } from '../../test/helpers/lagging-kv.ts';

const ring = await configuredKeyRing({
  jwtSecret: 'refresh-families-test-secret-0123456789abcdef',
  previousSecrets: [],
  privateKeyFile: undefined,
  previousPublicKeyFiles: [],
});
const REFRESH_TTL_SEC = 3600;

const user = (userName: string): UserRecord => ({
  userName,
  uid: `uid-of-${userName}`,
  role: 'viewer',
  passwordHash: 'not-used-here',
  version: 1,
  createdAt: 0,
  updatedAt: 0,
});

class Setup extends LaggingKv {
  readonly warnings: string[] = [];
  readonly sessions = new Sessions(() => ring!, { accessTtlSec: 60, refreshTtlSec: REFRESH_TTL_SEC });
  now = Date.now();
  leader = true;
  readonly families: RefreshFamilies;

  constructor() {
    super();
    this.families = this.open();
  }

  open(sweepIntervalMs?: number): RefreshFamilies {
    return new RefreshFamilies({
      catalog: this.catalog,
      write: (key, value) => this.write(key, value),
      writeIf: (key, expected, value) => this.writeIf(key, expected, value),
      sessions: this.sessions,
      isLeader: () => this.leader,
      clock: () => this.now,
      onWarning: (message) => this.warnings.push(message),
      ...(sweepIntervalMs === undefined ? {} : { sweepIntervalMs }),
    });
  }

  verify(issued: IssuedSession): Promise<VerifiedRefresh> {
    return this.sessions.verifyRefresh(issued.refreshToken);
  }

  record(family: string): RefreshFamilyRecord | undefined {
    const stored = this.catalog.kvGet(REFRESH_KV_PREFIX + family);
    return stored === undefined ? undefined : JSON.parse(stored);
  }

  close(): void {
    this.families.close();
  }
}

const setup = closedAfterEach(() => new Setup());

const refusal = (kind: RefreshFamilyError['kind']) => (error: unknown) => error instanceof RefreshFamilyError && error.kind === kind;

describe('refresh families', () => {
  test('a sign-in starts a family: one record naming the user, the refresh token and its expiry', async () => {
    const s = setup();
    const issued = await s.families.start(user('ann'));
    const token = await s.verify(issued);
    assert.match(token.family, /^[A-Za-z0-9_-]{22}$/);
    assert.deepEqual(s.record(token.family), { uid: 'uid-of-ann', userName: 'ann', jti: token.jti, seq: 1, expiresAt: issued.refreshExpiresAt });
    assert.equal(issued.refreshExpiresAt, token.expiresAt, "the record keeps the token's own expiry");
    assert.ok(Math.abs(issued.refreshExpiresAt - (Date.now() + REFRESH_TTL_SEC * 1000)) < 2000);
    assert.equal(s.writes.length, 1, 'one KV write per sign-in');
    assert.equal((await s.sessions.verifyAccess(issued.accessToken)).userName, 'ann');
  });

  test('a refresh rotates: new tokens in the same family, one KV write; the spent token then revokes the family', async () => {
    const s = setup();
    const first = await s.families.start(user('ann'));
    const firstToken = await s.verify(first);
    s.writes.length = 0;
    const second = await s.families.rotate(firstToken, user('ann'));
    const secondToken = await s.verify(second);
    assert.equal(secondToken.family, firstToken.family);
    assert.notEqual(secondToken.jti, firstToken.jti);
    assert.notEqual(second.refreshToken, first.refreshToken);
    assert.equal(s.record(firstToken.family)?.jti, secondToken.jti);
    assert.equal(s.writes.length, 1, 'one KV write per refresh');

    await assert.rejects(s.families.rotate(firstToken, user('ann')), (error: unknown) => {
      assert.ok(refusal('reused')(error));
      assert.equal((error as Error).message, 'This refresh token was already used; the session is revoked. Sign in again.');
      return true;
    });
    assert.equal(s.record(firstToken.family), undefined, 'the family is deleted');
    await assert.rejects(s.families.rotate(secondToken, user('ann')), refusal('ended'), 'the newest refresh token stops too');
  });

  test('unknown (once past the arrival grace), expired and foreign families have ended', async () => {
    const s = setup();
    const issued = await s.families.start(user('ann'));
    const token = await s.verify(issued);
    s.now = token.issuedAt + ARRIVAL_GRACE_MS;
    await assert.rejects(s.families.rotate({ ...token, family: 'A'.repeat(22) }, user('ann')), (error: unknown) => {
      assert.ok(refusal('ended')(error));
      assert.equal((error as Error).message, 'The session has ended; sign in again.');
      return true;
    });
    await assert.rejects(s.families.rotate({ ...token, uid: 'somebody-else' }, user('ann')), refusal('ended'), 'a family of another uid');
    s.now = issued.refreshExpiresAt;
    await assert.rejects(s.families.rotate(token, user('ann')), refusal('ended'), 'an expired family');
  });

  test('two refreshes of the same token at once: one rotates, the other is a reuse, and the family ends', async () => {
    const s = setup();
    const token = await s.verify(await s.families.start(user('ann')));
    const [a, b] = await Promise.allSettled([s.families.rotate(token, user('ann')), s.families.rotate(token, user('ann'))]);
    assert.equal(a.status, 'fulfilled');
    assert.equal(b.status, 'rejected');
    assert.ok(refusal('reused')((b as PromiseRejectedResult).reason));
    assert.equal(s.record(token.family), undefined, 'the deletion came after the rotation');
    assert.deepEqual(
      s.writes.slice(1).map(([, value]) => value === null),
      [false, true],
      'the rotation is written first, the deletion last',
    );
    const newest = await s.verify((a as PromiseFulfilledResult<IssuedSession>).value);
    await assert.rejects(s.families.rotate(newest, user('ann')), refusal('ended'));
  });

  test('a replica that has not seen the latest rotation asks for a retry instead of calling it a reuse', async () => {
    const s = setup();
    const first = await s.verify(await s.families.start(user('ann')));
    const before = s.catalog.kvGet(REFRESH_KV_PREFIX + first.family)!;
    // A rotation, almost always in the same second as the sign-in (equal expiries: only the sequence tells the tokens apart), which this replica's KV then "forgets" (the feed has not delivered it).
    const second = await s.verify(await s.families.rotate(first, user('ann')));
    s.put(REFRESH_KV_PREFIX + first.family, before);
    await assert.rejects(s.families.rotate(second, user('ann')), RefreshFamilyLagError);
    assert.ok(s.record(first.family) !== undefined, 'nothing was revoked');
  });

  test('a session started on another replica moments ago is "try again" until it arrives; one seen to end here is refused at once', async () => {
    const s = setup();
    // Signed by another replica: the family's record has not reached this one.
    const elsewhere = await s.sessions.issue(user('ann'), { family: 'B'.repeat(22), jti: 'j-1', seq: 1 });
    const token = await s.verify(elsewhere);
    await assert.rejects(s.families.rotate(token, user('ann')), RefreshFamilyLagError);
    assert.deepEqual(s.writes, [], 'nothing written, nothing revoked');
    // The record arrives: the same token now rotates.
    s.put(REFRESH_KV_PREFIX + token.family, JSON.stringify({ uid: token.uid, userName: 'ann', jti: token.jti, seq: token.seq, expiresAt: token.expiresAt }));
    const next = await s.verify(await s.families.rotate(token, user('ann')));
    assert.equal(next.family, token.family);
    // Never arriving, it ends with the grace.
    const lost = await s.verify(await s.sessions.issue(user('ann'), { family: 'C'.repeat(22), jti: 'j-2', seq: 1 }));
    s.now = lost.issuedAt + ARRIVAL_GRACE_MS - 1;
    await assert.rejects(s.families.rotate(lost, user('ann')), RefreshFamilyLagError);
    s.now = lost.issuedAt + ARRIVAL_GRACE_MS;
    await assert.rejects(s.families.rotate(lost, user('ann')), refusal('ended'));
    // A family this replica saw end: its fresh tokens are refused, not retried.
    s.now = Date.now();
    const mine = await s.verify(await s.families.start(user('ann')));
    await s.families.end(mine);
    await assert.rejects(s.families.rotate(mine, user('ann')), refusal('ended'));
  });

  test('a refresh racing a sign-out made on another replica ends: the session is not brought back', async () => {
    const s = setup();
    const token = await s.verify(await s.families.start(user('ann')));
    const key = REFRESH_KV_PREFIX + token.family;
    s.elsewhere(key, null);
    await assert.rejects(s.families.rotate(token, user('ann')), (error: unknown) => {
      assert.ok(refusal('ended')(error));
      assert.match((error as Error).message, /changed on another replica/);
      return true;
    });
    assert.equal(s.store.get(key), undefined, 'the store still has no record of the session');
    s.put(key, null);
    await assert.rejects(s.families.rotate(token, user('ann')), refusal('ended'));
  });

  test('the same token refreshed on two replicas at once: the rotation recorded second is refused and revokes the family', async () => {
    const s = setup();
    const token = await s.verify(await s.families.start(user('ann')));
    const key = REFRESH_KV_PREFIX + token.family;
    const there = await s.verify(await s.sessions.issue(user('ann'), { family: token.family, jti: 'rotated-there', seq: 2 }));
    s.elsewhere(key, JSON.stringify({ uid: there.uid, userName: 'ann', jti: there.jti, seq: 2, expiresAt: there.expiresAt }));
    await assert.rejects(s.families.rotate(token, user('ann')), refusal('ended'));
    assert.equal(s.store.get(key), undefined, 'both sets of tokens stop: the family is deleted');
  });

  test('sign-out of a session this replica has not seen yet ends it all the same', async () => {
    const s = setup();
    const token = await s.verify(await s.sessions.issue(user('ann'), { family: 'D'.repeat(22), jti: 'j-1', seq: 1 }));
    await s.families.end(token);
    assert.deepEqual(s.writes, [[REFRESH_KV_PREFIX + token.family, null]]);
  });

  test('sign-out ends the family; other families of the same user live on', async () => {
    const s = setup();
    const mine = await s.verify(await s.families.start(user('ann')));
    const other = await s.verify(await s.families.start(user('ann')));
    await s.families.end(mine);
    assert.equal(s.record(mine.family), undefined);
    await assert.rejects(s.families.rotate(mine, user('ann')), refusal('ended'));
    await assert.rejects(s.families.end(mine), refusal('ended'), 'signing out twice');
    assert.ok((await s.families.rotate(other, user('ann'))).refreshToken);
  });

  test('signing out with a spent token revokes the family as a reuse', async () => {
    const s = setup();
    const first = await s.verify(await s.families.start(user('ann')));
    await s.families.rotate(first, user('ann'));
    await assert.rejects(s.families.end(first), refusal('reused'));
    assert.equal(s.record(first.family), undefined);
  });

  test('the leader sweeps expired families; a follower does not', async () => {
    const s = setup();
    const short = await s.verify(await s.families.start(user('ann')));
    const long = await s.verify(await s.families.start(user('bob')));
    // bob's family was refreshed later, so it lives longer.
    s.put(REFRESH_KV_PREFIX + long.family, JSON.stringify({ ...s.record(long.family), expiresAt: s.record(long.family)!.expiresAt + 60_000 }));
    s.now = s.record(short.family)!.expiresAt;

    s.leader = false;
    assert.equal(await s.families.sweep(), 0);
    assert.ok(s.record(short.family) !== undefined, 'a follower leaves the records alone');

    s.leader = true;
    assert.equal(await s.families.sweep(), 1);
    assert.equal(s.record(short.family), undefined);
    assert.ok(s.record(long.family) !== undefined, 'a family still in force stays');
  });

  test('the sweep leaves a family that was refreshed on another replica after this one saw it expire', async () => {
    const s = setup();
    const token = await s.verify(await s.families.start(user('ann')));
    const key = REFRESH_KV_PREFIX + token.family;
    const renewed = JSON.stringify({ ...s.record(token.family), jti: 'rotated-there', seq: 2, expiresAt: s.record(token.family)!.expiresAt + 60_000 });
    s.elsewhere(key, renewed);
    s.now = s.record(token.family)!.expiresAt;
    assert.equal(await s.families.sweep(), 0);
    assert.equal(s.store.get(key), renewed);
  });

  test('the sweep runs on its own timer', async () => {
    const s = setup();
    const families = s.open(20);
    try {
      const token = await s.verify(await families.start(user('ann')));
      s.now = s.record(token.family)!.expiresAt;
      const deadline = Date.now() + 2000;
      while (s.record(token.family) !== undefined && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(s.record(token.family), undefined);
    } finally {
      families.close();
    }
  });

  test('records that do not parse are ignored with a warning', () => {
    const s = setup();
    s.put(`${REFRESH_KV_PREFIX}broken`, JSON.stringify({ uid: 'u', userName: 'ann', jti: 'j' }));
    assert.deepEqual(s.warnings, [`The stored record "${REFRESH_KV_PREFIX}broken" is not valid; it is ignored.`]);
  });
});
