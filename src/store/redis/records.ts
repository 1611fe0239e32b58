import type { Change, RemoveReason, Snapshot } from '../../core/changes.ts';
import type { Instance, InstanceKey } from '../../core/instance.ts';
import { DataError, parseJson, restoredInstance } from '../instance-record.ts';

/**
 * What the redis store keeps and reads back: instance records, feed entries
 * and snapshots. Everything read from redis is validated (the same checks as
 * the memory store's files): a record another process or a hand edit
 * corrupted is reported, not trusted.
 */

/** The hash field and sorted-set member of an instance. Service names never contain a newline. */
export function memberOf(key: InstanceKey): string {
  return `${key.service}\n${key.id}`;
}

/**
 * The instance record as JSON without its revisions and closing brace; the
 * upsert script appends `,"createRevision":c,"modifyRevision":m}`, which it
 * alone knows. The record is then an exact Instance in JSON.
 */
export function recordHead(instance: Instance): string {
  const fields = {
    service: instance.service,
    id: instance.id,
    scheme: instance.scheme,
    host: instance.host,
    port: instance.port,
    path: instance.path,
    weight: instance.weight,
    tags: instance.tags,
    version: instance.version,
    zone: instance.zone,
    metadata: instance.metadata,
    healthCheckPath: instance.healthCheckPath,
    status: instance.status,
    ttlMs: instance.ttlMs,
    check: instance.check,
    statusReason: instance.statusReason,
    statusChangedAt: instance.statusChangedAt,
    health: instance.health,
    healthReason: instance.healthReason,
    healthChangedAt: instance.healthChangedAt,
    registeredAt: instance.registeredAt,
    address: instance.address,
  } satisfies Omit<Instance, 'createRevision' | 'modifyRevision'>;
  return JSON.stringify(fields).slice(0, -1);
}

/** JSON.parse defines "__proto__" as an ordinary own key, so metadata needs no special care. */
export function parseRecord(record: string): Instance {
  return restoredInstance(parseJson(record));
}

/** A feed entry as node-redis decodes it: the stream ID and its fields. */
export interface FeedEntry {
  readonly id: string;
  readonly message: Readonly<Record<string, string | undefined>>;
}

/** The revision of a feed entry ID `<revision>-0`. */
export function revisionOf(id: string): number {
  const dash = id.indexOf('-');
  const revision = Number(dash < 0 ? id : id.slice(0, dash));
  if (!Number.isSafeInteger(revision) || revision < 1) throw new DataError(`feed entry ID ${JSON.stringify(id)} is not <revision>-0`);
  return revision;
}

const REASONS: readonly RemoveReason[] = ['deregistered', 'expired', 'evicted'];

export function changeOf(revision: number, message: FeedEntry['message']): Change {
  switch (message['op']) {
    case 'upsert': {
      const renewedAt = Number(field(message, 'at'));
      if (!Number.isFinite(renewedAt)) throw new DataError(`feed entry ${revision}: "at" is not a number`);
      return { kind: 'upsert', revision, instance: parseRecord(field(message, 'record')), renewedAt };
    }
    case 'remove': {
      const reason = field(message, 'reason') as RemoveReason;
      if (!REASONS.includes(reason)) throw new DataError(`feed entry ${revision}: unknown removal reason ${JSON.stringify(reason)}`);
      return { kind: 'remove', revision, key: { service: field(message, 'service'), id: field(message, 'id') }, reason };
    }
    case 'kv':
      return { kind: 'kv', revision, key: field(message, 'key'), value: message['value'] ?? null };
    default:
      throw new DataError(`feed entry ${revision}: unknown op ${JSON.stringify(message['op'])}`);
  }
}

function field(message: FeedEntry['message'], name: string): string {
  const value = message[name];
  if (typeof value !== 'string') throw new DataError(`feed entry: missing field "${name}"`);
  return value;
}

/**
 * Decodes the snapshot script's reply. A record that does not decode is
 * left out with a warning (the replica keeps serving the rest); lease
 * timing comes from the sorted set: renewedAt = deadline - ttlMs.
 */
export function snapshotOf(reply: unknown, warn: (message: string) => void): Snapshot {
  if (!Array.isArray(reply) || reply.length !== 4) throw new DataError('the snapshot reply is not [revision, instances, leases, kv]');
  const [rev, records, leases, kv] = reply as [unknown, unknown, unknown, unknown];
  const revision = Number(rev);
  if (!Number.isSafeInteger(revision) || revision < 0) throw new DataError(`the revision counter holds ${JSON.stringify(rev)}`);
  const deadlines = new Map<string, number>();
  for (const [member, score] of pairs(leases, 'leases')) deadlines.set(member, Number(score));
  const instances: Array<{ instance: Instance; renewedAt: number }> = [];
  for (const [member, record] of pairs(records, 'instances')) {
    try {
      const instance = parseRecord(record);
      const deadline = deadlines.get(member);
      if (deadline === undefined) warn(`redis store: instance ${JSON.stringify(member)} has no lease deadline; it will not expire`);
      instances.push({ instance, renewedAt: deadline === undefined ? instance.registeredAt : deadline - instance.ttlMs });
    } catch (err) {
      warn(`redis store: skipped the unreadable record of ${JSON.stringify(member)}: ${(err as Error).message}`);
    }
  }
  return { revision, instances, kv: [...pairs(kv, 'kv')] };
}

function* pairs(flat: unknown, what: string): Generator<[string, string]> {
  if (!Array.isArray(flat) || flat.length % 2 !== 0) throw new DataError(`the snapshot's ${what} are not a flat list of pairs`);
  for (let i = 0; i < flat.length; i += 2) yield [String(flat[i]), String(flat[i + 1])];
}
