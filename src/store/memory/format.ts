import { ADMIN_STATUSES, HEALTH_STATES } from '../../core/instance.ts';
import type { Instance, InstanceKey, Scheme } from '../../core/instance.ts';
import type { RemoveReason } from '../../core/changes.ts';

/**
 * The memory store's on-disk vocabulary: one JSON object per log line, and the
 * instance shape shared by log records and snapshots. Everything read back is
 * validated, because a record that cannot be restored is worse than one that
 * was refused when it was written.
 */

/** Persisted (or about to be persisted) data that does not have the expected shape. */
export class DataError extends Error {
  override readonly name = 'DataError';
}

export type LogRecord =
  | { readonly op: 'upsert'; readonly rev: number; readonly renewedAt: number; readonly instance: Instance }
  | { readonly op: 'remove'; readonly rev: number; readonly service: string; readonly id: string }
  | { readonly op: 'kv'; readonly rev: number; readonly key: string; readonly value: string | null }
  | { readonly op: 'lease'; readonly renewals: ReadonlyArray<readonly [string, string, number]> };

export function upsertLine(rev: number, instance: Instance, renewedAt: number): string {
  return `{"op":"upsert","rev":${rev},"renewedAt":${renewedAt},"instance":${JSON.stringify(instance)}}\n`;
}

/** The reason is not needed to replay; it is kept for whoever reads the log. */
export function removeLine(rev: number, key: InstanceKey, reason: RemoveReason): string {
  return `{"op":"remove","rev":${rev},"service":${JSON.stringify(key.service)},"id":${JSON.stringify(key.id)},"reason":${JSON.stringify(reason)}}\n`;
}

export function kvLine(rev: number, key: string, value: string | null): string {
  return `{"op":"kv","rev":${rev},"key":${JSON.stringify(key)},"value":${JSON.stringify(value)}}\n`;
}

export function leaseLine(renewals: ReadonlyMap<Instance, number>): string {
  const list = Array.from(renewals, ([instance, renewedAt]) => [instance.service, instance.id, renewedAt]);
  return `{"op":"lease","renewals":${JSON.stringify(list)}}\n`;
}

export function parseRecord(line: string): LogRecord {
  const o = fields(parseJson(line), 'record');
  switch (o['op']) {
    case 'upsert':
      return { op: 'upsert', rev: revision(o), renewedAt: finite(o, 'renewedAt'), instance: restoredInstance(o['instance']) };
    case 'remove':
      return { op: 'remove', rev: revision(o), service: text(o, 'service'), id: text(o, 'id') };
    case 'kv': {
      const value = o['value'];
      if (value !== null && typeof value !== 'string') throw new DataError('"value" must be a string or null');
      return { op: 'kv', rev: revision(o), key: text(o, 'key'), value };
    }
    case 'lease':
      return { op: 'lease', renewals: renewals(o['renewals']) };
    default:
      throw new DataError(`unknown record op ${JSON.stringify(o['op'])}`);
  }
}

export function parseJson(source: string): unknown {
  try {
    return JSON.parse(source) as unknown;
  } catch (err) {
    throw new DataError(`not valid JSON (${(err as Error).message})`);
  }
}

const SCHEMES: readonly Scheme[] = ['http', 'https'];

/**
 * Validates an instance about to be stored and returns a new frozen object
 * with exactly the Instance fields, always in the same order (one hidden
 * class for all), and the revisions stamped. Tags and metadata are reused
 * when already frozen, otherwise copied and frozen; the metadata copy uses
 * object spread, which defines own data properties, so a key such as
 * "__proto__" stays an ordinary key and never changes a prototype.
 */
export function stampedInstance(value: Instance, createRevision: number, modifyRevision: number): Instance {
  checkInstance(fields(value, 'instance'), false);
  const { tags, metadata } = value;
  const instance: Instance = {
    service: value.service,
    id: value.id,
    scheme: value.scheme,
    host: value.host,
    port: value.port,
    path: value.path,
    weight: value.weight,
    tags: Object.isFrozen(tags) ? tags : Object.freeze(tags.slice()),
    version: value.version,
    zone: value.zone,
    metadata: Object.isFrozen(metadata) ? metadata : Object.freeze({ ...metadata }),
    healthCheckPath: value.healthCheckPath,
    status: value.status,
    ttlMs: value.ttlMs,
    health: value.health,
    healthReason: value.healthReason,
    healthChangedAt: value.healthChangedAt,
    registeredAt: value.registeredAt,
    createRevision,
    modifyRevision,
    address: value.address,
  };
  return Object.freeze(instance);
}

/**
 * Validates an instance read back from disk and freezes it in place: it was
 * just created by JSON.parse, so nobody else holds it, and the checks make
 * sure it has exactly the Instance fields. JSON.parse defines every key as an
 * own data property ("__proto__" included), so metadata needs no copy.
 * Avoiding the copies matters at 100,000 instances.
 */
export function restoredInstance(value: unknown): Instance {
  const o = checkInstance(fields(value, 'instance'), true);
  Object.freeze(o['tags']);
  Object.freeze(o['metadata']);
  return Object.freeze(o) as unknown as Instance;
}

/** checkInstance names each of them; the literal in stampedInstance stops compiling when Instance changes. */
const INSTANCE_FIELDS = 21;

function checkInstance(o: Fields, exact: boolean): Fields {
  text(o, 'service');
  text(o, 'id');
  oneOf(o, 'scheme', SCHEMES);
  text(o, 'host');
  finite(o, 'port');
  text(o, 'path');
  finite(o, 'weight');
  tags(o['tags']);
  text(o, 'version');
  text(o, 'zone');
  metadata(o['metadata']);
  text(o, 'healthCheckPath');
  oneOf(o, 'status', ADMIN_STATUSES);
  finite(o, 'ttlMs');
  oneOf(o, 'health', HEALTH_STATES);
  text(o, 'healthReason');
  finite(o, 'healthChangedAt');
  finite(o, 'registeredAt');
  finite(o, 'createRevision');
  finite(o, 'modifyRevision');
  text(o, 'address');
  if (exact && Object.keys(o).length !== INSTANCE_FIELDS) throw new DataError('instance has fields that are not Instance fields');
  return o;
}

type Fields = Readonly<Record<string, unknown>>;

export function fields(value: unknown, what: string): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new DataError(`${what} must be an object`);
  return value as Fields;
}

function text(o: Fields, key: string): string {
  const v = o[key];
  if (typeof v !== 'string') throw new DataError(`"${key}" must be a string`);
  return v;
}

export function finite(o: Fields, key: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new DataError(`"${key}" must be a finite number`);
  return v;
}

function revision(o: Fields): number {
  const v = o['rev'];
  if (!Number.isSafeInteger(v) || (v as number) < 1) throw new DataError('"rev" must be a positive integer');
  return v as number;
}

function oneOf<T extends string>(o: Fields, key: string, allowed: readonly T[]): T {
  const v = o[key];
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new DataError(`"${key}" must be one of ${allowed.join(', ')}`);
  }
  return v as T;
}

function tags(value: unknown): void {
  if (!Array.isArray(value) || !value.every((t) => typeof t === 'string')) throw new DataError('"tags" must be a list of strings');
}

function metadata(value: unknown): void {
  const o = fields(value, '"metadata"');
  for (const key of Object.keys(o)) {
    if (typeof o[key] !== 'string') throw new DataError(`"metadata" value of ${JSON.stringify(key)} must be a string`);
  }
}

function renewals(value: unknown): ReadonlyArray<readonly [string, string, number]> {
  if (!Array.isArray(value)) throw new DataError('"renewals" must be a list');
  for (const r of value as unknown[]) {
    if (!Array.isArray(r) || typeof r[0] !== 'string' || typeof r[1] !== 'string' || !Number.isFinite(r[2])) {
      throw new DataError('"renewals" entries must be [service, id, renewedAt]');
    }
  }
  return value as ReadonlyArray<readonly [string, string, number]>;
}
