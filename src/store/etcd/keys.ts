import type { InstanceKey } from '../../core/instance.ts';

/**
 * Where the etcd store keeps things, all under one prefix (default
 * `maxine/`):
 *
 *   <prefix>i/<service>/<id>   an instance record (JSON), bound to its own lease
 *   <prefix>t/<service>/<id>   a tombstone: why the instance was deleted
 *   <prefix>kv/<key>           a shared runtime value
 *   <prefix>leader             the leader's instance id, bound to the leader's lease
 *
 * Service names and ids are percent-encoded, so a `/` in either cannot make
 * two instances share a key. KV names are the last segment and need no
 * encoding.
 */
export type ParsedKey =
  | { readonly kind: 'instance'; readonly key: InstanceKey }
  | { readonly kind: 'tombstone'; readonly key: InstanceKey }
  | { readonly kind: 'kv'; readonly name: string }
  | { readonly kind: 'leader' }
  | { readonly kind: 'other' };

/** A key range as etcd takes it: [key, range_end). */
export interface KeyRange {
  readonly key: Buffer;
  readonly range_end: Buffer;
}

export class KeyLayout {
  readonly leader: Buffer;
  private readonly prefix: string;

  constructor(prefix: string) {
    if (typeof prefix !== 'string' || prefix === '') throw new TypeError('etcd store: keyPrefix must be a non-empty string');
    this.prefix = prefix;
    this.leader = Buffer.from(`${prefix}leader`);
  }

  instance(key: InstanceKey): Buffer {
    return Buffer.from(`${this.prefix}i/${encodeURIComponent(key.service)}/${encodeURIComponent(key.id)}`);
  }

  tombstone(key: InstanceKey): Buffer {
    return Buffer.from(`${this.prefix}t/${encodeURIComponent(key.service)}/${encodeURIComponent(key.id)}`);
  }

  kv(name: string): Buffer {
    return Buffer.from(`${this.prefix}kv/${name}`);
  }

  /** Everything the store owns: what the feed watches and a resync reads. */
  all(): KeyRange {
    return prefixRange(this.prefix);
  }

  instances(): KeyRange {
    return prefixRange(`${this.prefix}i/`);
  }

  parse(raw: Buffer): ParsedKey {
    const text = raw.toString('utf8');
    if (!text.startsWith(this.prefix)) return OTHER;
    const rest = text.slice(this.prefix.length);
    if (rest === 'leader') return LEADER;
    if (rest.startsWith('kv/')) return { kind: 'kv', name: rest.slice(3) };
    if (rest.startsWith('i/')) return instanceKey('instance', rest.slice(2));
    if (rest.startsWith('t/')) return instanceKey('tombstone', rest.slice(2));
    return OTHER;
  }
}

/** A string naming one instance, for Maps keyed by instance (cheap: no encoding). */
export function instanceMapKey(key: InstanceKey): string {
  return `${key.service}\u0000${key.id}`;
}

const OTHER: ParsedKey = Object.freeze({ kind: 'other' });
const LEADER: ParsedKey = Object.freeze({ kind: 'leader' });

function instanceKey(kind: 'instance' | 'tombstone', encoded: string): ParsedKey {
  const parts = encoded.split('/');
  if (parts.length !== 2) return OTHER;
  try {
    return { kind, key: { service: decodeURIComponent(parts[0]!), id: decodeURIComponent(parts[1]!) } };
  } catch {
    return OTHER;
  }
}

/**
 * The range of every key starting with `prefix`: up to the prefix with its
 * last byte incremented. UTF-8 never contains the byte 0xff, so the last
 * byte can always be incremented.
 */
function prefixRange(prefix: string): KeyRange {
  const key = Buffer.from(prefix);
  const end = Buffer.from(key);
  end[end.length - 1] = end[end.length - 1]! + 1;
  return { key, range_end: end };
}
