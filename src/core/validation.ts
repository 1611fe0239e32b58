import { isIP } from 'node:net';

/**
 * What the registry accepts as names, hosts, paths and metadata. Every
 * surface validates through these, so a value refused by one API is refused
 * by all, and the patterns are exported for the route schemas (and thereby
 * the OpenAPI document).
 */

export const LIMITS = {
  nameLength: 128,
  hostLength: 253,
  pathLength: 512,
  tags: 32,
  tagLength: 64,
  versionLength: 64,
  zoneLength: 64,
  metadataEntries: 32,
  metadataKeyLength: 64,
  metadataValueLength: 512,
  maxWeight: 100,
  maxTtlSec: 86_400,
} as const;

/** Starts and ends with a letter or digit; no ':' so Lightning node ids stay parseable. */
export const SERVICE_NAME_PATTERN = '^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$';
/** Instance ids also allow ':' '@' and brackets, for `host:port` and `[::1]:80` ids. */
export const INSTANCE_ID_PATTERN = '^[A-Za-z0-9\\[](?:[A-Za-z0-9._:@\\[\\]-]{0,126}[A-Za-z0-9\\]])?$';
export const TAG_PATTERN = '^[A-Za-z0-9._:/=-]+$';
export const VERSION_PATTERN = '^[A-Za-z0-9._+-]*$';
export const ZONE_PATTERN = '^(?:[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?)?$';
export const METADATA_KEY_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$';
/** RFC 3986 path characters only: no spaces, quotes, backslashes or control characters. */
export const PATH_PATTERN = "^[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$";

/**
 * Names that are harmless in Maxine's own Maps but dangerous for consumers
 * that copy registry data into plain JavaScript objects; refusing them keeps
 * every client safe, not just this server.
 */
const RESERVED_NAMES = new Set(['__proto__', 'constructor', 'prototype']);

const serviceName = new RegExp(SERVICE_NAME_PATTERN);
const instanceId = new RegExp(INSTANCE_ID_PATTERN);
const tag = new RegExp(TAG_PATTERN);
const version = new RegExp(VERSION_PATTERN);
const zone = new RegExp(ZONE_PATTERN);
const metadataKey = new RegExp(METADATA_KEY_PATTERN);
const path = new RegExp(PATH_PATTERN);
const hostLabel = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
// eslint-disable-next-line no-control-regex
const controlChars = /[\u0000-\u001f\u007f]/;

/** One problem with one field, reported back to the client in `details`. */
export interface FieldProblem {
  readonly field: string;
  readonly problem: string;
}

export function isReservedName(value: string): boolean {
  return RESERVED_NAMES.has(value.toLowerCase());
}

export function checkServiceName(value: string, field = 'serviceName'): FieldProblem | undefined {
  if (isReservedName(value)) return { field, problem: `"${value}" is a reserved name` };
  if (!serviceName.test(value)) {
    return {
      field,
      problem: `must be 1-${LIMITS.nameLength} letters, digits, '.', '_' or '-', starting and ending with a letter or digit`,
    };
  }
  return undefined;
}

export function checkInstanceId(value: string, field = 'nodeName'): FieldProblem | undefined {
  if (isReservedName(value)) return { field, problem: `"${value}" is a reserved name` };
  if (!instanceId.test(value)) {
    return {
      field,
      problem: `must be 1-${LIMITS.nameLength} letters, digits, '.', '_', '-', ':', '@' or brackets, starting and ending with a letter, digit or bracket`,
    };
  }
  return undefined;
}

/** An IPv4/IPv6 literal (IPv6 optionally in brackets) or an RFC 1123 host name. */
export function checkHost(value: string, field = 'hostName'): FieldProblem | undefined {
  const bare = value.startsWith('[') && value.endsWith(']') ? value.slice(1, -1) : value;
  if (isIP(bare) !== 0) return undefined;
  if (bare !== value) return { field, problem: 'brackets are only allowed around an IPv6 address' };
  if (isReservedName(value)) return { field, problem: `"${value}" is a reserved name` };
  const labels = value.length <= LIMITS.hostLength ? value.replace(/\.$/, '').split('.') : [];
  // An all-numeric last label is a malformed IP address, not a name (RFC 1123 2.1).
  if (labels.length === 0 || !labels.every((label) => hostLabel.test(label)) || /^[0-9]+$/.test(labels.at(-1)!)) {
    return { field, problem: 'must be an IP address or a host name (letters, digits and hyphens in dot-separated labels)' };
  }
  return undefined;
}

/** Paths are appended to addresses: no traversal segments and nothing that breaks out of a URL path. */
export function checkPath(value: string, field: string): FieldProblem | undefined {
  if (value.length > LIMITS.pathLength) return { field, problem: `must be at most ${LIMITS.pathLength} characters` };
  if (!path.test(value)) return { field, problem: 'may only contain URL path characters' };
  if (value.split('/').some((segment) => segment === '..' || segment === '.')) {
    return { field, problem: "must not contain '.' or '..' segments" };
  }
  if (value.includes('//')) return { field, problem: "must not contain '//'" };
  return undefined;
}

export function checkTags(value: readonly string[], field = 'tags'): FieldProblem | undefined {
  if (value.length > LIMITS.tags) return { field, problem: `at most ${LIMITS.tags} tags` };
  for (const t of value) {
    if (t.length === 0 || t.length > LIMITS.tagLength || !tag.test(t)) {
      return { field, problem: `each tag must be 1-${LIMITS.tagLength} letters, digits or . _ : / = -` };
    }
  }
  return undefined;
}

export function checkVersion(value: string, field = 'version'): FieldProblem | undefined {
  if (value.length > LIMITS.versionLength || !version.test(value)) {
    return { field, problem: `must be at most ${LIMITS.versionLength} letters, digits or . _ + -` };
  }
  return undefined;
}

export function checkZone(value: string, field = 'zone'): FieldProblem | undefined {
  if (value.length > LIMITS.zoneLength || !zone.test(value)) {
    return { field, problem: `must be at most ${LIMITS.zoneLength} letters, digits, '.', '_' or '-'` };
  }
  return undefined;
}

export function checkMetadata(value: Readonly<Record<string, unknown>>, field = 'metadata'): FieldProblem | undefined {
  const keys = Object.keys(value);
  if (keys.length > LIMITS.metadataEntries) return { field, problem: `at most ${LIMITS.metadataEntries} entries` };
  for (const key of keys) {
    if (isReservedName(key)) return { field: `${field}.${key}`, problem: `"${key}" is a reserved name` };
    if (!metadataKey.test(key)) {
      return { field: `${field}.${key}`, problem: `keys must be 1-${LIMITS.metadataKeyLength} letters, digits or . _ / -` };
    }
    const v = value[key];
    if (typeof v !== 'string') return { field: `${field}.${key}`, problem: 'values must be strings' };
    if (v.length > LIMITS.metadataValueLength || controlChars.test(v)) {
      return {
        field: `${field}.${key}`,
        problem: `values must be at most ${LIMITS.metadataValueLength} characters without control characters`,
      };
    }
  }
  return undefined;
}

/** The original Maxine's path normalisation: leading '/', one trailing '/' dropped, '/' alone is ''. */
export function normalisePath(value: string): string {
  if (value === '') return '';
  let p = value.startsWith('/') ? value : `/${value}`;
  if (p.endsWith('/')) p = p.slice(0, -1);
  return p;
}
