import type { RemoveReason } from '../../core/changes.ts';
import type { Instance } from '../../core/instance.ts';
import { DataError, fields, finite, parseJson, restoredInstance } from '../instance-record.ts';

/**
 * One log record: a batch of entries appended by one replica at one
 * position. A record states facts, not requests: its writer composed it
 * against the exact state after the previous position (it had read every
 * record before it, or the exclusive create would have failed), so the
 * revisions are written in it and readers only apply it.
 *
 * The header chains each record to the one before it and repeats the state
 * a reader must hold to apply it (revision, leadership), so any record can
 * be a starting point and a reader that followed a different history (a
 * position reused after compaction, see append.ts) notices instead of
 * applying it.
 */
export interface LogRecord {
  /** Random id of this record. */
  readonly rid: string;
  /** rid of the record at the previous position; null only for the genesis record. */
  readonly prev: string | null;
  /** Revision after the previous position. */
  readonly base: number;
  /** Leadership after the previous position. */
  readonly lead: Lead | null;
  /** instanceId of the replica that appended it. */
  readonly writer: string;
  /** Epoch ms on the writer's clock when it composed the record. */
  readonly at: number;
  readonly entries: readonly Entry[];
}

/** A leadership term as the log records it. `until` 0 is a resignation. */
export interface Lead {
  readonly holder: string;
  /** Fencing token: increases with every new term. */
  readonly token: number;
  /** Epoch ms at which the term lapses unless renewed. */
  readonly until: number;
}

/** [service, id, renewedAt] */
export type LeaseRenewal = readonly [string, string, number];

export type Entry =
  | { readonly op: 'upsert'; readonly rev: number; readonly renewedAt: number; readonly instance: Instance }
  /** `token` is the fencing token of the leader that expired or evicted it. */
  | { readonly op: 'remove'; readonly rev: number; readonly service: string; readonly id: string; readonly reason: RemoveReason; readonly token?: number }
  | { readonly op: 'kv'; readonly rev: number; readonly key: string; readonly value: string | null }
  /** Lease renewals: not visible changes, no revision. */
  | { readonly op: 'renew'; readonly leases: readonly LeaseRenewal[] }
  /** A takeover, renewal or resignation: the whole term, so one entry defines the leadership. */
  | ({ readonly op: 'lead' } & Lead);

const FORMAT = 1;

/** `format` and `rid` come first: append.ts reads a record's id from its first bytes. */
export function encodeRecord(r: LogRecord): string {
  return JSON.stringify({ format: FORMAT, rid: r.rid, prev: r.prev, base: r.base, lead: r.lead, writer: r.writer, at: r.at, entries: r.entries });
}

/** Parses and validates a record read from the log; a DataError says what is wrong. */
export function parseRecord(text: string): LogRecord {
  const o = fields(parseJson(text), 'record');
  if (o['format'] !== FORMAT) throw new DataError(`unsupported record format ${JSON.stringify(o['format'])}`);
  const prev = o['prev'];
  if (prev !== null && typeof prev !== 'string') throw new DataError('"prev" must be a string or null');
  const entries = o['entries'];
  if (!Array.isArray(entries)) throw new DataError('"entries" must be a list');
  return {
    rid: str(o, 'rid'),
    prev,
    base: count(o, 'base'),
    lead: parseLead(o['lead']),
    writer: str(o, 'writer'),
    at: finite(o, 'at'),
    entries: entries.map((entry: unknown, i) => {
      try {
        return parseEntry(fields(entry, 'entry'));
      } catch (err) {
        if (err instanceof DataError) throw new DataError(`entries[${i}]: ${err.message}`);
        throw err;
      }
    }),
  };
}

export function parseLead(value: unknown): Lead | null {
  if (value === null) return null;
  const o = fields(value, '"lead"');
  return { holder: str(o, 'holder'), token: count(o, 'token'), until: finite(o, 'until') };
}

const REMOVE_REASONS: readonly RemoveReason[] = ['deregistered', 'expired', 'evicted'];

function parseEntry(o: Readonly<Record<string, unknown>>): Entry {
  switch (o['op']) {
    case 'upsert':
      return { op: 'upsert', rev: revision(o), renewedAt: finite(o, 'renewedAt'), instance: restoredInstance(o['instance']) };
    case 'remove': {
      const reason = o['reason'];
      if (!REMOVE_REASONS.includes(reason as RemoveReason)) throw new DataError(`"reason" must be one of ${REMOVE_REASONS.join(', ')}`);
      const entry = { op: 'remove' as const, rev: revision(o), service: str(o, 'service'), id: str(o, 'id'), reason: reason as RemoveReason };
      return o['token'] === undefined ? entry : { ...entry, token: count(o, 'token') };
    }
    case 'kv': {
      const value = o['value'];
      if (value !== null && typeof value !== 'string') throw new DataError('"value" must be a string or null');
      return { op: 'kv', rev: revision(o), key: str(o, 'key'), value };
    }
    case 'renew':
      return { op: 'renew', leases: leases(o['leases']) };
    case 'lead':
      return { op: 'lead', ...(parseLead(o) as Lead) };
    default:
      throw new DataError(`unknown entry op ${JSON.stringify(o['op'])}`);
  }
}

function leases(value: unknown): readonly LeaseRenewal[] {
  if (!Array.isArray(value)) throw new DataError('"leases" must be a list');
  for (const lease of value as unknown[]) {
    if (!Array.isArray(lease) || typeof lease[0] !== 'string' || typeof lease[1] !== 'string' || !Number.isFinite(lease[2])) {
      throw new DataError('"leases" entries must be [service, id, renewedAt]');
    }
  }
  return value as readonly LeaseRenewal[];
}

function str(o: Readonly<Record<string, unknown>>, key: string): string {
  const v = o[key];
  if (typeof v !== 'string') throw new DataError(`"${key}" must be a string`);
  return v;
}

function count(o: Readonly<Record<string, unknown>>, key: string): number {
  const v = o[key];
  if (!Number.isSafeInteger(v) || (v as number) < 0) throw new DataError(`"${key}" must be an integer >= 0`);
  return v as number;
}

function revision(o: Readonly<Record<string, unknown>>): number {
  const v = o['rev'];
  if (!Number.isSafeInteger(v) || (v as number) < 1) throw new DataError('"rev" must be a positive integer');
  return v as number;
}
