import { randomUUID } from 'node:crypto';
import type { Catalog } from '../core/catalog.ts';
import { KvCollection } from '../core/kv-collection.ts';
import { SECURITY_KV_PREFIX } from './security-kv.ts';
import { hashPassword, verifyAgainstDecoy, verifyPassword } from './passwords.ts';
import { isRole, type Role } from './roles.ts';

/** A user as stored (the KV value is this object as JSON). */
export interface UserRecord {
  readonly userName: string;
  /** Random, fixed at creation: tokens name it, so a new user under an old name inherits nothing. */
  readonly uid: string;
  readonly role: Role;
  readonly passwordHash: string;
  /**
   * Bumped by every change of password or role. Session tokens carry the
   * version they were issued at and stop working once it moves on.
   */
  readonly version: number;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** What the API shows of a user: never the hash. */
export interface UserView {
  readonly userName: string;
  readonly role: Role;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export const USER_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$';
const USER_NAME = new RegExp(USER_NAME_PATTERN);

export type KvWriter = (key: string, value: string | null) => Promise<void>;
/** Compare-and-set on the store's KV (registry.putKvIf): resolves to whether the stored value was `expected` and is now `value`. */
export type KvConditionalWriter = (key: string, expected: string | null, value: string | null) => Promise<boolean>;

/** exists: a create found the name taken; missing: no such user; conflict: the user changed elsewhere meanwhile (retry). */
export class UserError extends Error {
  constructor(
    readonly kind: 'exists' | 'missing' | 'conflict',
    message: string,
  ) {
    super(message);
  }
}

function parseUser(value: unknown): UserRecord | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  const ok =
    typeof v.userName === 'string' &&
    typeof v.uid === 'string' &&
    USER_NAME.test(v.userName) &&
    isRole(v.role) &&
    typeof v.passwordHash === 'string' &&
    Number.isSafeInteger(v.version) &&
    Number.isSafeInteger(v.createdAt) &&
    Number.isSafeInteger(v.updatedAt);
  return ok ? (v as unknown as UserRecord) : null;
}

export function userView(user: UserRecord): UserView {
  return {
    userName: user.userName,
    role: user.role,
    createdAt: new Date(user.createdAt).toISOString(),
    updatedAt: new Date(user.updatedAt).toISOString(),
  };
}

/**
 * Local users, kept in the store's KV so that every replica sees the same
 * ones. Every change is a compare-and-set on the record this replica read:
 * two changes of one user made at once on different replicas (a demotion
 * here, a password change there; a deletion here, a role change there) do
 * not silently undo each other or bring a deleted user back: the second is
 * refused as a conflict, to be made again on what the first left.
 */
export class Users {
  private readonly records: KvCollection<UserRecord>;

  constructor(
    catalog: Catalog,
    private readonly writeIf: KvConditionalWriter,
    private readonly clock: () => number,
    onWarning: (message: string) => void,
  ) {
    this.records = new KvCollection(catalog, `${SECURITY_KV_PREFIX}users/`, parseUser, onWarning);
  }

  get(userName: string): UserRecord | undefined {
    return this.records.get(userName);
  }

  hasAdmin(): boolean {
    for (const user of this.records.values()) if (user.role === 'admin') return true;
    return false;
  }

  list(): UserRecord[] {
    return [...this.records.values()].sort((a, b) => a.userName.localeCompare(b.userName));
  }

  async create(userName: string, password: string, role: Role): Promise<UserRecord> {
    const exists = () => new UserError('exists', `User "${userName}" already exists.`);
    if (this.get(userName) !== undefined) throw exists();
    const now = this.clock();
    const user: UserRecord = { userName, uid: randomUUID(), role, passwordHash: await hashPassword(password), version: 1, createdAt: now, updatedAt: now };
    // Created at the same time on another replica: theirs stands.
    if (!(await this.writeIf(this.records.keyOf(userName), null, JSON.stringify(user)))) throw exists();
    return user;
  }

  async remove(userName: string): Promise<void> {
    await this.replace(userName, () => null);
  }

  setRole(userName: string, role: Role): Promise<UserRecord> {
    return this.replace(userName, (user) => ({ ...user, role, version: user.version + 1, updatedAt: this.clock() }));
  }

  async setPassword(userName: string, password: string): Promise<UserRecord> {
    const passwordHash = await hashPassword(password);
    return this.replace(userName, (user) => ({ ...user, passwordHash, version: user.version + 1, updatedAt: this.clock() }));
  }

  /** The user when the password is theirs; null otherwise, taking as long either way. */
  async check(userName: string, password: string): Promise<UserRecord | null> {
    const user = this.get(userName);
    if (user === undefined) return verifyAgainstDecoy(password).then(() => null);
    return (await verifyPassword(password, user.passwordHash)) ? user : null;
  }

  close(): void {
    this.records.close();
  }

  /** The user's record changed by `change` (null deletes), only while the store holds the version read here. */
  private async replace<T extends UserRecord | null>(userName: string, change: (user: UserRecord) => T): Promise<T> {
    const user = this.get(userName);
    const stored = this.records.stored(userName);
    if (user === undefined || stored === undefined) throw new UserError('missing', `User "${userName}" does not exist.`);
    const next = change(user);
    if (!(await this.writeIf(this.records.keyOf(userName), stored, next === null ? null : JSON.stringify(next)))) {
      throw new UserError('conflict', `User "${userName}" was changed or deleted on another replica at the same time; read it again and retry.`);
    }
    return next;
  }
}
