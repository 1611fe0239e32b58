import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Catalog } from '../core/catalog.ts';
import { isAction } from './actions.ts';
import { compilePattern, PATTERN_SOURCE } from './glob.ts';
import { KvCollection } from '../core/kv-collection.ts';
import { SECURITY_KV_PREFIX } from './security-kv.ts';
import type { CompiledGrant, Grant, Principal } from './principal.ts';
import type { KvWriter } from './users.ts';

/** A service token as stored: the secret only as its SHA-256. */
export interface ServiceTokenRecord {
  readonly id: string;
  readonly name: string;
  readonly scopes: readonly Grant[];
  readonly secretSha256: string;
  readonly createdBy: string;
  readonly createdAt: number;
  /** Epoch ms, or null for a token that lasts until revoked. */
  readonly expiresAt: number | null;
}

export interface ServiceTokenView {
  readonly id: string;
  readonly name: string;
  readonly scopes: readonly Grant[];
  readonly createdBy: string;
  readonly createdAt: string;
  readonly expiresAt: string | null;
}

/**
 * `mxt_<id>_<secret>`: the prefix tells a service token from a JWT at a
 * glance (and lets secret scanners find leaked ones); the id finds the record
 * without comparing secrets.
 */
const TOKEN_FORMAT = /^mxt_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
export const TOKEN_PREFIX = 'mxt_';
const PATTERN = new RegExp(PATTERN_SOURCE);

function sha256(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

function parseGrant(value: unknown): Grant | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  if (!Array.isArray(v.actions) || !v.actions.every(isAction) || typeof v.services !== 'string' || !PATTERN.test(v.services)) return null;
  return { actions: v.actions, services: v.services };
}

function parseToken(value: unknown): ServiceTokenRecord | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  const scopes = Array.isArray(v.scopes) ? v.scopes.map(parseGrant) : [null];
  const ok =
    typeof v.id === 'string' &&
    typeof v.name === 'string' &&
    typeof v.secretSha256 === 'string' &&
    /^[0-9a-f]{64}$/.test(v.secretSha256) &&
    typeof v.createdBy === 'string' &&
    Number.isSafeInteger(v.createdAt) &&
    (v.expiresAt === null || Number.isSafeInteger(v.expiresAt)) &&
    scopes.every((s) => s !== null);
  return ok ? { ...(v as unknown as ServiceTokenRecord), scopes: scopes as Grant[] } : null;
}

export function serviceTokenView(token: ServiceTokenRecord): ServiceTokenView {
  return {
    id: token.id,
    name: token.name,
    scopes: token.scopes,
    createdBy: token.createdBy,
    createdAt: new Date(token.createdAt).toISOString(),
    expiresAt: token.expiresAt === null ? null : new Date(token.expiresAt).toISOString(),
  };
}

/** Why a presented service token is refused; safe to show. */
export class ServiceTokenError extends Error {}

/** Long-lived, revocable API tokens scoped to actions and service-name patterns. */
export class ServiceTokens {
  private readonly records: KvCollection<ServiceTokenRecord>;
  /** Compiled grants per token id, rebuilt only when a record is replaced. */
  private readonly compiled = new WeakMap<ServiceTokenRecord, readonly CompiledGrant[]>();

  constructor(
    catalog: Catalog,
    private readonly write: KvWriter,
    private readonly clock: () => number,
    onWarning: (message: string) => void,
  ) {
    this.records = new KvCollection(catalog, `${SECURITY_KV_PREFIX}tokens/`, parseToken, onWarning);
  }

  list(): ServiceTokenRecord[] {
    return [...this.records.values()].sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  get(id: string): ServiceTokenRecord | undefined {
    return this.records.get(id);
  }

  /** Resolves to the record and the token itself, which is shown this once and never stored. */
  async create(spec: { name: string; scopes: readonly Grant[]; expiresAt: number | null; createdBy: string }): Promise<{ record: ServiceTokenRecord; token: string }> {
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const record: ServiceTokenRecord = {
      id,
      name: spec.name,
      scopes: spec.scopes,
      secretSha256: sha256(secret).toString('hex'),
      createdBy: spec.createdBy,
      createdAt: this.clock(),
      expiresAt: spec.expiresAt,
    };
    await this.write(this.records.keyOf(id), JSON.stringify(record));
    return { record, token: `${TOKEN_PREFIX}${id}_${secret}` };
  }

  /** Resolves to false when there was no such token. */
  async revoke(id: string): Promise<boolean> {
    if (this.records.get(id) === undefined) return false;
    await this.write(this.records.keyOf(id), null);
    return true;
  }

  /** The principal a presented token stands for; throws ServiceTokenError when it is not a live token. */
  authenticate(presented: string): Principal {
    const match = TOKEN_FORMAT.exec(presented);
    if (match === null) throw new ServiceTokenError('The service token is malformed.');
    const record = this.records.get(match[1]!);
    // Compared as digests: equal length, and the stored value is not the secret.
    if (record === undefined || !timingSafeEqual(sha256(match[2]!), Buffer.from(record.secretSha256, 'hex'))) {
      throw new ServiceTokenError('The service token is not valid (unknown or revoked).');
    }
    if (record.expiresAt !== null && record.expiresAt <= this.clock()) throw new ServiceTokenError('The service token has expired.');
    return { kind: 'token', id: record.id, role: null, groups: [], grants: this.grantsOf(record), expiresAt: record.expiresAt };
  }

  close(): void {
    this.records.close();
  }

  private grantsOf(record: ServiceTokenRecord): readonly CompiledGrant[] {
    let grants = this.compiled.get(record);
    if (grants === undefined) {
      grants = record.scopes.map((scope) => ({ ...scope, matches: compilePattern(scope.services) }));
      this.compiled.set(record, grants);
    }
    return grants;
  }
}
