import { randomBytes, randomUUID } from 'node:crypto';
import type { Catalog } from '../core/catalog.ts';
import { KvCollection } from '../core/kv-collection.ts';
import { SECURITY_KV_PREFIX } from './security-kv.ts';
import type { IssuedSession, Sessions, VerifiedRefresh } from './sessions.ts';
import type { KvConditionalWriter, KvWriter, UserRecord } from './users.ts';

/** One record per session: under the security prefix, so it never leaves a replica through events. */
export const REFRESH_KV_PREFIX = `${SECURITY_KV_PREFIX}refresh/`;

const FAMILY_ID_BYTES = 16;
/** What a family id looks like in a token: it becomes part of a KV key, so nothing else is taken. */
export const FAMILY_ID = /^[A-Za-z0-9_-]{22}$/;

/** How often the leader deletes the records of expired sessions. */
export const SWEEP_INTERVAL_MS = 60_000;

/**
 * A refresh token issued this recently whose family this replica does not
 * hold may belong to a session started on another replica that the feed has
 * not brought here yet (replication takes up to a second; replicas' clocks
 * may differ by a few). Within this time it is answered "try again", not
 * "session ended", unless this replica saw the family end.
 */
export const ARRIVAL_GRACE_MS = 10_000;

/**
 * A session as stored: every refresh hands out a new refresh token and
 * records its id, so the family's older refresh tokens are known to be spent.
 */
export interface RefreshFamilyRecord {
  readonly uid: string;
  readonly userName: string;
  /** The id of the one refresh token of the family that may still be used. */
  readonly jti: string;
  /** That token's place in the family (RefreshClaims.seq): a token with a higher one is newer than this record. */
  readonly seq: number;
  /** Epoch ms: when that refresh token expires, and with it the family unless it is refreshed. */
  readonly expiresAt: number;
}

function parseFamily(value: unknown): RefreshFamilyRecord | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  const ok =
    typeof v.uid === 'string' && typeof v.userName === 'string' && typeof v.jti === 'string' && Number.isSafeInteger(v.seq) && Number.isSafeInteger(v.expiresAt);
  return ok ? { uid: v.uid as string, userName: v.userName as string, jti: v.jti as string, seq: v.seq as number, expiresAt: v.expiresAt as number } : null;
}

/** A refresh token that is no longer a credential; the message is safe to show and to log. */
export class RefreshFamilyError extends Error {
  constructor(
    readonly kind: 'ended' | 'reused',
    message: string,
  ) {
    super(message);
  }
}

/**
 * The token is newer than the family's record on this replica: another
 * replica rotated it and the feed has not brought the change here yet.
 * Nothing is wrong with the token, so it is neither refused nor a reuse.
 */
export class RefreshFamilyLagError extends Error {}

const ENDED = 'The session has ended; sign in again.';
const REUSED = 'This refresh token was already used; the session is revoked. Sign in again.';
const CHANGED =
  'The session changed on another replica during this refresh (it was signed out, or this refresh token was presented there too); it has ended. Sign in again.';

export interface RefreshFamiliesOptions {
  readonly catalog: Catalog;
  readonly write: KvWriter;
  /** Rotations and the sweep replace a record only while it is still the version they read. */
  readonly writeIf: KvConditionalWriter;
  readonly sessions: Sessions;
  /** Only the leader sweeps, so replicas do not delete the same records over one another. */
  readonly isLeader: () => boolean;
  readonly clock: () => number;
  readonly onWarning: (message: string) => void;
  readonly sweepIntervalMs?: number;
}

/**
 * Refresh-token rotation with reuse detection. A sign-in starts a family;
 * each refresh spends the family's current refresh token and issues the next
 * one; presenting a spent one means two parties hold the session's tokens,
 * so the whole family is revoked. Access tokens are not involved: they stay
 * stateless and simply expire.
 */
export class RefreshFamilies {
  private readonly records: KvCollection<RefreshFamilyRecord>;
  /** Families with a rotation under way on this replica: a second presentation meanwhile is a reuse. */
  private readonly rotating = new Map<string, Promise<IssuedSession>>();
  /** Families this replica saw end within ARRIVAL_GRACE_MS, oldest first: their fresh tokens are refused, not retried. */
  private readonly recentlyEnded = new Map<string, number>();
  private readonly sweepTimer: NodeJS.Timeout;
  private sweeping = false;

  constructor(private readonly options: RefreshFamiliesOptions) {
    this.records = new KvCollection(options.catalog, REFRESH_KV_PREFIX, parseFamily, options.onWarning, (family, record) => this.ended(family, record));
    this.sweepTimer = setInterval(() => void this.sweep(), options.sweepIntervalMs ?? SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  /** A new session (sign-in, change of password): one KV write. */
  start(user: UserRecord): Promise<IssuedSession> {
    return this.issue(user, randomBytes(FAMILY_ID_BYTES).toString('base64url'), 1);
  }

  /** The family's next tokens for its current refresh token (one KV write); a spent token revokes the family. */
  async rotate(token: VerifiedRefresh, user: UserRecord): Promise<IssuedSession> {
    const pending = this.rotating.get(token.family);
    if (pending !== undefined) {
      // The same session refreshed twice at once. Deleting only after the rotation's write keeps the deletion the last word in the store.
      await pending.catch(() => undefined);
      return this.revoke(token.family);
    }
    // From the check to marking the family as rotating nothing awaits: a concurrent refresh cannot slip in between.
    if (this.standing(token) === 'spent') return this.revoke(token.family);
    // The record is replaced only while the store still holds the version checked: a sign-out or a rotation
    // made meanwhile on another replica (not yet delivered here) is not overwritten, and the session is not brought back.
    const rotation = this.issue(user, token.family, token.seq + 1, this.records.stored(token.family)!);
    this.rotating.set(token.family, rotation);
    try {
      return await rotation;
    } finally {
      this.rotating.delete(token.family);
    }
  }

  /** Sign-out: the family ends (one KV write). A spent token ends it too, and is refused as a reuse. */
  async end(token: VerifiedRefresh): Promise<void> {
    await this.rotating.get(token.family)?.catch(() => undefined);
    if (this.standing(token, false) === 'spent') return this.revoke(token.family);
    await this.options.write(this.records.keyOf(token.family), null);
  }

  /** Leader only: deletes the records of families whose refresh tokens have all expired. Resolves to how many. */
  async sweep(): Promise<number> {
    if (this.sweeping || !this.options.isLeader()) return 0;
    this.sweeping = true;
    let swept = 0;
    try {
      const now = this.options.clock();
      const expired = [...this.records.names()].filter((name) => this.records.get(name)!.expiresAt <= now);
      for (const name of expired) {
        // Leadership can move mid-sweep; the next leader finishes the rest.
        if (!this.options.isLeader()) break;
        const stored = this.records.stored(name);
        // Only the expired version: a family refreshed on another replica since (a clock behind this one) lives on.
        if (stored !== undefined && (await this.options.writeIf(this.records.keyOf(name), stored, null))) swept++;
      }
    } catch (error) {
      this.options.onWarning(`Deleting expired sessions failed; will retry: ${String(error)}`);
    } finally {
      this.sweeping = false;
    }
    return swept;
  }

  close(): void {
    clearInterval(this.sweepTimer);
    this.records.close();
  }

  /**
   * Whether the token is the family's current one or a spent one; throws when
   * the family is gone. With `lagIsError` false a token newer than this
   * replica's record, or of a family not arrived yet, counts as current
   * (sign-out ends the family either way).
   */
  private standing(token: VerifiedRefresh, lagIsError = true): 'current' | 'spent' {
    const record = this.records.get(token.family);
    if (record === undefined && this.mayNotHaveArrived(token)) {
      if (lagIsError) throw new RefreshFamilyLagError('This replica has not yet seen this session; try again.');
      return 'current';
    }
    if (record === undefined || record.uid !== token.uid || record.expiresAt <= this.options.clock()) throw new RefreshFamilyError('ended', ENDED);
    if (record.jti === token.jti) return 'current';
    // Every rotation numbers its token one more (expiries, in whole seconds, may not move within a second).
    if (token.seq > record.seq) {
      if (lagIsError) throw new RefreshFamilyLagError('This replica has not yet seen the latest refresh of this session; try again.');
      return 'current';
    }
    return 'spent';
  }

  private mayNotHaveArrived(token: VerifiedRefresh): boolean {
    return !this.recentlyEnded.has(token.family) && this.options.clock() - token.issuedAt < ARRIVAL_GRACE_MS;
  }

  private ended(family: string, record: RefreshFamilyRecord): void {
    const now = this.options.clock();
    // An expired family (the leader's sweep) has no token left that could be presented.
    if (record.expiresAt <= now) return;
    this.recentlyEnded.delete(family);
    this.recentlyEnded.set(family, now);
    // Oldest first: forget those past the grace, stopping at the first still inside it.
    for (const [name, at] of this.recentlyEnded) {
      if (now - at < ARRIVAL_GRACE_MS) break;
      this.recentlyEnded.delete(name);
    }
  }

  private async revoke(family: string): Promise<never> {
    await this.options.write(this.records.keyOf(family), null);
    throw new RefreshFamilyError('reused', REUSED);
  }

  /** A new family's first tokens, or (`replacing`: the stored record rotated) its next ones. */
  private async issue(user: UserRecord, family: string, seq: number, replacing?: string): Promise<IssuedSession> {
    const jti = randomUUID();
    const issued = await this.options.sessions.issue(user, { family, jti, seq });
    const record: RefreshFamilyRecord = { uid: user.uid, userName: user.userName, jti, seq, expiresAt: issued.refreshExpiresAt };
    const key = this.records.keyOf(family);
    if (replacing === undefined) {
      await this.options.write(key, JSON.stringify(record));
    } else if (!(await this.options.writeIf(key, replacing, JSON.stringify(record)))) {
      // Signed out there: nothing left to delete. The same token presented there: a reuse, which revokes the family.
      await this.options.write(key, null);
      throw new RefreshFamilyError('ended', CHANGED);
    }
    return issued;
  }
}
