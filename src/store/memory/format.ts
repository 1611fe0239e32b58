import type { Instance, InstanceKey } from '../../core/instance.ts';
import type { RemoveReason } from '../../core/changes.ts';
import { DataError, fields, finite, parseJson, restoredInstance, text, type Fields } from '../instance-record.ts';

/**
 * The memory store's log vocabulary: one JSON object per log line. Instances
 * in it are checked by instance-record.ts, like every store's.
 */

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

function revision(o: Fields): number {
  const v = o['rev'];
  if (!Number.isSafeInteger(v) || (v as number) < 1) throw new DataError('"rev" must be a positive integer');
  return v as number;
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
