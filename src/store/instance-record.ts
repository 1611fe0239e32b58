import { ADMIN_STATUSES, CHECK_TYPES, HEALTH_STATES, withRevisions } from '../core/instance.ts';
import type { Snapshot } from '../core/changes.ts';
import type { Instance, Scheme } from '../core/instance.ts';

/**
 * The instance as every store persists it (log lines, snapshots, redis
 * records, etcd values, shared-file records), and the checks on reading it
 * back. Everything read back is validated, because a record that cannot be
 * restored is worse than one that was refused when it was written.
 */

/** Persisted (or about to be persisted) data that does not have the expected shape. */
export class DataError extends Error {
  override readonly name = 'DataError';
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
 * with exactly the Instance fields in one order (core's instanceOf), stamped
 * with the revisions.
 */
export function stampedInstance(value: Instance, createRevision: number, modifyRevision: number): Instance {
  checkInstance(fields(value, 'instance'), false);
  return withRevisions(value, createRevision, modifyRevision);
}

/**
 * Validates an instance read back from disk and freezes it in place: it was
 * just created by JSON.parse, so nobody else holds it, and the checks make
 * sure it has exactly the Instance fields. JSON.parse defines every key as an
 * own data property ("__proto__" included), so metadata needs no copy.
 * Avoiding the copies matters at 100,000 instances.
 */
export function restoredInstance(value: unknown): Instance {
  const o = withDefaultsOfOlderRecords(fields(value, 'instance') as Record<string, unknown>);
  checkInstance(o, true);
  Object.freeze(o['tags']);
  Object.freeze(o['metadata']);
  if (o['check'] !== null) Object.freeze(o['check']);
  return Object.freeze(o) as unknown as Instance;
}

/**
 * Records written before instances had their own check and status reason
 * (Maxine 0.1) lack those three fields; they read back as "no check, status
 * set at registration", which is what they meant.
 */
function withDefaultsOfOlderRecords(o: Record<string, unknown>): Record<string, unknown> {
  if (!('check' in o) && !('statusReason' in o) && !('statusChangedAt' in o)) {
    o['check'] = null;
    o['statusReason'] = '';
    o['statusChangedAt'] = o['registeredAt'];
  }
  return o;
}

/** checkInstance names each of them; the literal in stampedInstance stops compiling when Instance changes. */
const INSTANCE_FIELDS = 24;

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
  if (o['check'] !== null) healthCheck(fields(o['check'], '"check"'));
  text(o, 'statusReason');
  finite(o, 'statusChangedAt');
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

export type Fields = Readonly<Record<string, unknown>>;

export function fields(value: unknown, what: string): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new DataError(`${what} must be an object`);
  return value as Fields;
}

export function text(o: Fields, key: string): string {
  const v = o[key];
  if (typeof v !== 'string') throw new DataError(`"${key}" must be a string`);
  return v;
}

export function finite(o: Fields, key: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new DataError(`"${key}" must be a finite number`);
  return v;
}

function oneOf<T extends string>(o: Fields, key: string, allowed: readonly T[]): T {
  const v = o[key];
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new DataError(`"${key}" must be one of ${allowed.join(', ')}`);
  }
  return v as T;
}

const CHECK_FIELDS = 11;

function healthCheck(o: Fields): void {
  oneOf(o, 'type', CHECK_TYPES);
  text(o, 'path');
  for (const key of ['statusMin', 'statusMax', 'intervalMs', 'timeoutMs', 'rise', 'fall', 'jitterMs', 'deregisterCriticalAfterMs']) {
    finite(o, key);
  }
  text(o, 'bodyMatch');
  if (Object.keys(o).length !== CHECK_FIELDS) throw new DataError('"check" has fields that are not HealthCheck fields');
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

/** The instances (with their renewal times) and KV of a snapshot file, as every file-based store writes them. */
export function snapshotState(o: Fields): Pick<Snapshot, 'instances' | 'kv'> {
  const rawInstances = o['instances'];
  const rawKv = o['kv'];
  if (!Array.isArray(rawInstances)) throw new DataError('"instances" must be a list');
  if (!Array.isArray(rawKv)) throw new DataError('"kv" must be a list');
  const instances: Array<{ instance: Instance; renewedAt: number }> = [];
  for (let i = 0; i < rawInstances.length; i++) {
    try {
      const entry = fields(rawInstances[i], 'entry');
      instances.push({ instance: restoredInstance(entry['instance']), renewedAt: finite(entry, 'renewedAt') });
    } catch (err) {
      if (err instanceof DataError) throw new DataError(`instances[${i}]: ${err.message}`);
      throw err;
    }
  }
  const kv: Array<[string, string]> = [];
  for (const pair of rawKv as unknown[]) {
    if (!Array.isArray(pair) || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
      throw new DataError('"kv" entries must be [key, value] strings');
    }
    kv.push([pair[0], pair[1]]);
  }
  return { instances, kv };
}
