import type { Instance, InstanceKey } from '../../core/instance.ts';
import { argumentChecks } from '../argument-checks.ts';
import { DataError, fields, finite, parseJson, restoredInstance, stampedInstance } from '../instance-record.ts';

/**
 * The value of an instance key: `{"renewedAt":<ms>,"instance":{...}}`, the
 * instance with every Instance field. Its revisions are not trusted from the
 * JSON: they are the key's own create_revision and mod_revision, so they are
 * written as 0 and filled in when the key is read. The shape checks are
 * instance-record.ts's, so every store accepts exactly the same instances.
 */

const { validated } = argumentChecks('etcd store');

/** A validated copy of the instance (frozen, revisions 0), or a TypeError saying what is wrong. */
export function validInstance(instance: Instance): Instance {
  return validated(() => stampedInstance(instance, 0, 0));
}

/** The stored instance as the feed delivers it: `instance` (already valid) with the key's revisions. */
export function withRevisions(instance: Instance, createRevision: number, modifyRevision: number): Instance {
  return stampedInstance(instance, createRevision, modifyRevision);
}

export function encodeRecord(instance: Instance, renewedAt: number): Buffer {
  if (!Number.isFinite(renewedAt)) throw new TypeError('etcd store: renewedAt must be a finite number');
  return Buffer.from(`{"renewedAt":${renewedAt},"instance":${JSON.stringify(instance)}}`);
}

export interface DecodedRecord {
  readonly instance: Instance;
  readonly renewedAt: number;
}

/**
 * Parses an instance key's value. JSON.parse defines every key as an own
 * data property, so a metadata key "__proto__" stays data. Throws DataError
 * when the value is not a record of the instance the key names.
 */
export function decodeRecord(value: Buffer, key: InstanceKey, createRevision: number, modifyRevision: number): DecodedRecord {
  const record = fields(parseJson(value.toString('utf8')), 'record');
  const renewedAt = finite(record, 'renewedAt');
  const body = fields(record['instance'], 'instance') as Record<string, unknown>;
  body['createRevision'] = createRevision;
  body['modifyRevision'] = modifyRevision;
  const instance = restoredInstance(body);
  if (instance.service !== key.service || instance.id !== key.id) {
    throw new DataError(`the record is for ${instance.service}/${instance.id}, not ${key.service}/${key.id}`);
  }
  return { instance, renewedAt };
}

/** etcd lease TTLs are whole seconds; etcd raises anything below its minimum (about 2 s) to that minimum. */
export function leaseSeconds(ttlMs: number): number {
  return Math.max(1, Math.ceil(ttlMs / 1000));
}
