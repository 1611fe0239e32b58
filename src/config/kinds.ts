import { isIP } from 'node:net';
import { parseStrategy, STRATEGY_SPELLINGS } from '../core/selection/names.ts';
import type { StrategyName } from '../core/selection/strategy.ts';
import { isRole, ROLES, type Role } from '../auth/roles.ts';
import { PATTERN_SOURCE } from '../auth/glob.ts';
import { ALERT_RULES, isAlertRule, isSeverity, SEVERITIES, type AlertRule, type Severity } from '../alerts/rules.ts';
import type { WebhookSpec } from '../alerts/webhooks.ts';

/** Outcome of parsing one raw value; `detail` narrows down what was wrong. */
export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly detail?: string };

/**
 * How one setting's values are read. Raw values are strings when they come
 * from flags or the environment and any JSON/YAML value when they come from
 * the config file, so every kind accepts `unknown`.
 */
export interface Kind<T> {
  /** Completes "… is not ___" in errors and "allowed: ___" in help text. */
  readonly expected: string;
  /** Placeholder for the flag's value in usage lines, e.g. `--port <n>`. */
  readonly metavar: string;
  parse(raw: unknown): Parsed<T>;
  /** Renders a value (the default) the way a user would type it. */
  format(value: T): string;
  /** Values are credentials: never echoed back in errors or help. */
  readonly secret?: boolean;
  /**
   * Values may carry credentials (webhook URLs often hold a token) but the
   * parse details never quote them: errors give the details, not the value.
   */
  readonly unquoted?: boolean;
}

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = (detail?: string): Parsed<never> => (detail === undefined ? { ok: false } : { ok: false, detail });

// Decimal only: "0x10", "1e3" and "8080.5" are typos far more often than intent.
const DECIMAL = /^[+-]?\d+$/;

/** A whole number parsed from a number or a decimal string, or undefined. */
function wholeNumber(raw: unknown): number | undefined {
  if (typeof raw === 'number') return Number.isSafeInteger(raw) ? raw : undefined;
  if (typeof raw !== 'string' || !DECIMAL.test(raw.trim())) return undefined;
  const n = Number(raw.trim());
  return Number.isSafeInteger(n) ? n : undefined;
}

export function integer(min: number, max: number): Kind<number> {
  return {
    expected: `an integer from ${min} to ${max}`,
    metavar: 'n',
    parse(raw) {
      const n = wholeNumber(raw);
      return n !== undefined && n >= min && n <= max ? ok(n) : bad();
    },
    format: String,
  };
}

/** One of a fixed set of lowercase words; input case is ignored. */
export function oneOf<const V extends string>(values: readonly V[]): Kind<V> {
  return {
    expected: `one of ${values.join(', ')}`,
    metavar: 'value',
    parse(raw) {
      if (typeof raw !== 'string') return bad();
      const wanted = raw.trim().toLowerCase();
      const match = values.find((v) => v === wanted);
      return match === undefined ? bad() : ok(match);
    },
    format: String,
  };
}

const TRUE_WORDS = new Set(['true', '1', 'yes', 'on']);
const FALSE_WORDS = new Set(['false', '0', 'no', 'off']);

/** true/false (also 1/0, yes/no, on/off as environment variables are often written), or a JSON boolean. */
export const boolean: Kind<boolean> = {
  expected: 'true or false',
  metavar: 'true|false',
  parse(raw) {
    if (typeof raw === 'boolean') return ok(raw);
    if (typeof raw !== 'string') return bad();
    const word = raw.trim().toLowerCase();
    return TRUE_WORDS.has(word) ? ok(true) : FALSE_WORDS.has(word) ? ok(false) : bad();
  },
  format: String,
};

/** A setting that may be left unset; only its default can be undefined. */
export function optional<T>(kind: Kind<T>): Kind<T | undefined> {
  return { ...kind, format: (value) => (value === undefined ? 'none' : kind.format(value)) };
}

export const strategy: Kind<StrategyName> = {
  expected: `one of ${STRATEGY_SPELLINGS.join(', ')}`,
  metavar: 'name',
  parse(raw) {
    const name = typeof raw === 'string' ? parseStrategy(raw.trim()) : undefined;
    return name === undefined ? bad() : ok(name);
  },
  format: String,
};

// RFC 1123 hostname: dot-separated labels of letters, digits and inner hyphens.
const HOST_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i;

export const host: Kind<string> = {
  expected: 'an IP address or hostname',
  metavar: 'host',
  parse(raw) {
    if (typeof raw !== 'string') return bad();
    const value = raw.trim();
    if (isIP(value) !== 0) return ok(value);
    const isHostname = value.length <= 253 && value.split('.').every((label) => HOST_LABEL.test(label));
    return isHostname ? ok(value) : bad();
  },
  format: String,
};

export const path: Kind<string> = {
  expected: 'a non-empty path',
  metavar: 'path',
  parse(raw) {
    return typeof raw === 'string' && raw.trim() !== '' ? ok(raw.trim()) : bad();
  },
  format: String,
};

/** A word made of the given characters, e.g. an instance id or a key prefix. */
export function word(pattern: RegExp, expected: string): Kind<string> {
  return {
    expected,
    metavar: 'value',
    parse(raw) {
      return typeof raw === 'string' && pattern.test(raw.trim()) ? ok(raw.trim()) : bad();
    },
    format: String,
  };
}

function urlWith(raw: string, protocols: readonly string[]): URL | undefined {
  if (!URL.canParse(raw)) return undefined;
  const url = new URL(raw);
  return protocols.includes(url.protocol) && url.hostname !== '' ? url : undefined;
}

/** A redis:// or rediss:// URL (a password may be in it: it is never printed back). */
export const redisUrl: Kind<string> = {
  expected: 'a redis:// or rediss:// URL',
  metavar: 'url',
  secret: true,
  parse(raw) {
    if (typeof raw !== 'string') return bad();
    return urlWith(raw.trim(), ['redis:', 'rediss:']) === undefined ? bad() : ok(raw.trim());
  },
  format: String,
};

/** Comma-separated http(s) URLs (or a list in the config file), at least one. */
export const endpointList: Kind<readonly string[]> = {
  expected: 'a comma-separated list of http:// or https:// URLs',
  metavar: 'urls',
  parse(raw) {
    const entries = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : undefined;
    if (entries === undefined || entries.length === 0) return bad();
    const list: string[] = [];
    for (const entry of entries) {
      const value = typeof entry === 'string' ? entry.trim() : '';
      if (urlWith(value, ['http:', 'https:']) === undefined) return bad(`${JSON.stringify(entry)} is not an http(s) URL`);
      list.push(value);
    }
    return ok(Object.freeze(list));
  },
  format: (value) => value.join(','),
};

// RFC 9110 token characters. Node lowercases incoming header names, so the
// name is stored lowercase for direct lookups in `request.headers`.
const TOKEN = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;

export const headerName: Kind<string> = {
  expected: 'an HTTP header name (RFC 9110 token characters, stored lowercase)',
  metavar: 'name',
  parse(raw) {
    if (typeof raw !== 'string') return bad();
    const value = raw.trim().toLowerCase();
    return TOKEN.test(value) ? ok(value) : bad();
  },
  format: String,
};

export type TrustProxy = boolean | number | string[];

/** Why an address or CIDR is invalid, or undefined when it is valid. */
function addressProblem(entry: string): string | undefined {
  const slash = entry.indexOf('/');
  const address = slash === -1 ? entry : entry.slice(0, slash);
  const family = isIP(address);
  if (family === 0) return `"${entry}" is not an IP address or CIDR`;
  if (slash === -1) return undefined;
  const prefix = entry.slice(slash + 1);
  const maxPrefix = family === 4 ? 32 : 128;
  const bits = /^\d{1,3}$/.test(prefix) ? Number(prefix) : Number.NaN;
  return bits <= maxPrefix ? undefined : `"${entry}" has a prefix length outside 0-${maxPrefix}`;
}

function addressList(entries: readonly unknown[]): Parsed<TrustProxy> {
  const list: string[] = [];
  for (const entry of entries) {
    if (typeof entry !== 'string') return bad(`${JSON.stringify(entry)} is not an IP address or CIDR`);
    const trimmed = entry.trim();
    const problem = addressProblem(trimmed);
    if (problem !== undefined) return bad(problem);
    list.push(trimmed);
  }
  return list.length === 0 ? bad('the address list is empty') : ok(list);
}

/**
 * Which proxies are believed about the client address: true/false (all or
 * none), a hop count, or the proxies' own addresses. The values are those
 * fastify's `trustProxy` option takes.
 */
export const trustProxy: Kind<TrustProxy> = {
  expected: 'true, false, a hop count (integer >= 0) or a comma-separated list of IP addresses/CIDRs',
  metavar: 'value',
  parse(raw) {
    if (typeof raw === 'boolean') return ok(raw);
    if (Array.isArray(raw)) return addressList(raw);
    const hops = wholeNumber(raw);
    if (hops !== undefined) return hops >= 0 ? ok(hops) : bad();
    if (typeof raw !== 'string') return bad();
    const word = raw.trim().toLowerCase();
    if (word === 'true' || word === 'false') return ok(word === 'true');
    return addressList(raw.split(','));
  },
  format: (value) => (Array.isArray(value) ? value.join(',') : String(value)),
};

/** An http:// or https:// URL. */
export const httpUrl: Kind<string> = {
  expected: 'an http:// or https:// URL',
  metavar: 'url',
  parse(raw) {
    if (typeof raw !== 'string') return bad();
    return urlWith(raw.trim(), ['http:', 'https:']) === undefined ? bad() : ok(raw.trim());
  },
  format: String,
};

/** A password or signing secret of at least `minLength` characters, taken as given (spaces included). */
export function secret(minLength: number): Kind<string> {
  return {
    expected: `a secret of at least ${minLength} characters`,
    metavar: 'secret',
    secret: true,
    parse(raw) {
      return typeof raw === 'string' && raw.length >= minLength ? ok(raw) : bad();
    },
    format: () => '(hidden)',
  };
}

/** Comma-separated secrets (or a list in the config file), each at least `minLength` characters. */
export function secretList(minLength: number): Kind<readonly string[]> {
  return {
    expected: `a comma-separated list of secrets of at least ${minLength} characters each`,
    metavar: 'secrets',
    secret: true,
    parse(raw) {
      const entries = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : undefined;
      if (entries === undefined || !entries.every((e) => typeof e === 'string' && e.length >= minLength)) return bad();
      return ok(Object.freeze(entries as string[]));
    },
    format: (value) => (value.length === 0 ? 'none' : '(hidden)'),
  };
}

/** Comma-separated file paths (or a list in the config file). */
export const pathList: Kind<readonly string[]> = {
  expected: 'a comma-separated list of paths',
  metavar: 'paths',
  parse(raw) {
    const entries = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : undefined;
    if (entries === undefined) return bad();
    const list = entries.map((e) => (typeof e === 'string' ? e.trim() : ''));
    return list.every((e) => e !== '') ? ok(Object.freeze(list)) : bad();
  },
  format: (value) => (value.length === 0 ? 'none' : value.join(',')),
};

/** `value=role` pairs, comma-separated (or an object in the config file): claim values mapped to Maxine roles. */
export const roleMap: Kind<ReadonlyMap<string, Role>> = {
  expected: `comma-separated value=role pairs (roles: ${ROLES.join(', ')})`,
  metavar: 'pairs',
  parse(raw) {
    // The last '=': claim values may hold one themselves (cn=admins).
    const pairs = pairsOf(raw, 'last');
    if (pairs === undefined) return bad();
    const map = new Map<string, Role>();
    for (const [value, written] of pairs) {
      const role = typeof written === 'string' ? written.toLowerCase() : written;
      if (value === '' || !isRole(role)) return bad(`${JSON.stringify(value)} must map to one of ${ROLES.join(', ')}`);
      map.set(value, role);
    }
    return ok(map);
  },
  format: (value) => (value.size === 0 ? 'none' : [...value].map(([k, v]) => `${k}=${v}`).join(',')),
};

/**
 * Comma-separated `key=value` pairs split at the first or the last '=', or
 * an object in the config file; undefined when the shape is wrong.
 */
function pairsOf(raw: unknown, splitAt: 'first' | 'last'): [string, unknown][] | undefined {
  if (typeof raw === 'string') {
    return raw
      .split(',')
      .filter((p) => p.trim() !== '')
      .map((p) => {
        const at = splitAt === 'first' ? p.indexOf('=') : p.lastIndexOf('=');
        return at < 0 ? [p.trim(), undefined] : [p.slice(0, at).trim(), p.slice(at + 1).trim()];
      });
  }
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) return Object.entries(raw);
  return undefined;
}

const SERVICE_PATTERN = new RegExp(PATTERN_SOURCE);

/** `service=n` pairs (a service name, or a pattern with `*`), comma-separated, or an object in the config file. */
export function serviceCounts(min: number, max: number): Kind<ReadonlyMap<string, number>> {
  return {
    expected: `comma-separated service=n pairs (a name or a pattern with *; n from ${min} to ${max})`,
    metavar: 'pairs',
    parse(raw) {
      const pairs = pairsOf(raw, 'first');
      if (pairs === undefined) return bad();
      const map = new Map<string, number>();
      for (const [name, value] of pairs) {
        const n = wholeNumber(value);
        if (!SERVICE_PATTERN.test(name)) return bad(`${JSON.stringify(name)} is not a service name or pattern`);
        if (n === undefined || n < min || n > max) return bad(`${JSON.stringify(name)} must map to a number from ${min} to ${max}`);
        map.set(name, n);
      }
      return ok(map);
    },
    format: (value) => (value.size === 0 ? 'none' : [...value].map(([k, v]) => `${k}=${v}`).join(',')),
  };
}

const WEBHOOK_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const MAX_WEBHOOKS = 20;
const WEBHOOK_KEYS = new Set(['name', 'url', 'severities', 'services', 'rules']);

/** `name=secret` pairs, comma-separated, or an object in the config file; each secret at least `minLength` characters. */
export function namedSecrets(minLength: number): Kind<ReadonlyMap<string, string>> {
  return {
    expected: `comma-separated name=secret pairs, each secret at least ${minLength} characters`,
    metavar: 'pairs',
    secret: true,
    parse(raw) {
      // The first '=': base64 secrets end in '='.
      const pairs = pairsOf(raw, 'first');
      if (pairs === undefined) return bad();
      const map = new Map<string, string>();
      for (const [name, value] of pairs) {
        if (!WEBHOOK_NAME.test(name) || typeof value !== 'string' || value.length < minLength) return bad();
        map.set(name, value);
      }
      return ok(map);
    },
    format: (value) => (value.size === 0 ? 'none' : '(hidden)'),
  };
}

function stringList<T extends string>(raw: unknown, field: string, valid: (value: string) => value is T, expected: string): T[] | string {
  if (raw === undefined) return [];
  if (!Array.isArray(raw) || !raw.every((v): v is string => typeof v === 'string' && valid(v))) return `${field} must be a list of ${expected}`;
  return raw as T[];
}

function webhookSpec(entry: unknown, index: number): WebhookSpec | string {
  const at = `webhook ${index + 1}`;
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return `${at} is not an object`;
  const fields = entry as Record<string, unknown>;
  const unknown = Object.keys(fields).find((key) => !WEBHOOK_KEYS.has(key));
  if (unknown !== undefined) return `${at}: unknown field ${JSON.stringify(unknown.slice(0, 40))} (fields: ${[...WEBHOOK_KEYS].join(', ')})`;
  const { name, url } = fields;
  if (typeof name !== 'string' || !WEBHOOK_NAME.test(name)) return `${at}: name must be 1-64 letters, digits, . _ -`;
  const parsed = typeof url === 'string' ? urlWith(url.trim(), ['http:', 'https:']) : undefined;
  if (parsed === undefined) return `${name}: url must be an http:// or https:// URL`;
  if (parsed.username !== '' || parsed.password !== '') return `${name}: url must not hold a user or password (sign with a secret instead)`;
  const severities = stringList<Severity>(fields.severities, `${name}: severities`, isSeverity, SEVERITIES.join(' / '));
  const services = stringList(fields.services, `${name}: services`, (v): v is string => SERVICE_PATTERN.test(v), 'service names or patterns');
  const rules = stringList<AlertRule>(fields.rules, `${name}: rules`, isAlertRule, ALERT_RULES.join(' / '));
  for (const list of [severities, services, rules]) if (typeof list === 'string') return list;
  return Object.freeze({ name, url: parsed.href, severities: severities as Severity[], services: services as string[], rules: rules as AlertRule[] });
}

/**
 * Alert webhooks: a JSON list (or a YAML list in the config file) of
 * {name, url, severities?, services?, rules?}; empty filters match every alert.
 */
export const webhookList: Kind<readonly WebhookSpec[]> = {
  expected: `a JSON list of at most ${MAX_WEBHOOKS} webhooks {name, url, severities?, services?, rules?}`,
  metavar: 'json',
  unquoted: true,
  parse(raw) {
    let list = raw;
    if (typeof raw === 'string') {
      try {
        list = JSON.parse(raw);
      } catch {
        return bad('not valid JSON');
      }
    }
    if (!Array.isArray(list) || list.length > MAX_WEBHOOKS) return bad();
    const specs: WebhookSpec[] = [];
    for (const [index, entry] of list.entries()) {
      const spec = webhookSpec(entry, index);
      if (typeof spec === 'string') return bad(spec);
      if (specs.some((s) => s.name === spec.name)) return bad(`two webhooks are called ${spec.name}`);
      specs.push(spec);
    }
    return ok(Object.freeze(specs));
  },
  format: (value) => (value.length === 0 ? 'none' : value.map((w) => w.name).join(',')),
};
