import type { HealthCheck, Instance } from '../core/instance.ts';
import { LIMITS, checkPath, type FieldProblem } from '../core/validation.ts';

/**
 * The MAXINE_ACTIVE_HEALTH_CHECK_* settings: they fill in what a registered
 * check leaves out, and (with `enabled`) give every instance without a check
 * of its own the global HTTP check.
 */
export interface CheckDefaults {
  /** MAXINE_ACTIVE_HEALTH_CHECKS_ENABLED: check every instance, even those that registered no check. */
  readonly enabled: boolean;
  /** MAXINE_ACTIVE_HEALTH_CHECK_PATH, default '/health'. */
  readonly path: string;
  /** MAXINE_ACTIVE_HEALTH_CHECK_INTERVAL_MS, default 10000. */
  readonly intervalMs: number;
  /** MAXINE_ACTIVE_HEALTH_CHECK_TIMEOUT_MS, default 2000. */
  readonly timeoutMs: number;
  /** MAXINE_ACTIVE_HEALTH_CHECK_FAILURE_THRESHOLD, default 3. */
  readonly fall: number;
  /** MAXINE_ACTIVE_HEALTH_CHECK_RISE_THRESHOLD, default 2. */
  readonly rise: number;
  /** Default intervalMs / 10. */
  readonly jitterMs: number;
  /** MAXINE_ACTIVE_HEALTH_CHECK_CONCURRENCY: most probes in flight at once, default 64. */
  readonly concurrency: number;
}

/** The `check` object a client registers; everything but `type` is optional. */
export interface CheckInput {
  type: 'http' | 'tcp';
  path?: string;
  /** "200-399" (the default) or "204": a status or an inclusive range within 100..599. */
  expectedStatus?: string;
  bodyMatch?: string;
  intervalMs?: number;
  timeoutMs?: number;
  rise?: number;
  fall?: number;
  jitterMs?: number;
  deregisterCriticalAfterMs?: number;
}

/** Bounds of a registered check, shared with the route schemas' descriptions and the tests. */
export const CHECK_LIMITS = {
  intervalMs: { min: 100, max: 3_600_000 },
  timeoutMs: { min: 50, max: 60_000 },
  threshold: { min: 1, max: 10 },
  /** 0 (never) or within these. */
  deregisterCriticalAfterMs: { min: 1000, max: 604_800_000 },
  status: { min: 100, max: 599 },
  bodyMatchLength: 256,
} as const;

export const DEFAULT_EXPECTED_STATUS = { min: 200, max: 399 } as const;

/** Query-string characters (RFC 3986 query: pchar, '/' and '?'); no '#', spaces, quotes or control characters. */
const QUERY = /^[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$/;
const STATUS = /^([0-9]{3})(?:-([0-9]{3}))?$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Fill in a registered check from the defaults and validate it. Only the
 * input's own, known fields are read: anything else (including a
 * `__proto__` key or inherited properties) is ignored, so a hostile object
 * cannot smuggle values in. Field names in problems are `check.<field>`.
 */
export function resolveCheck(
  input: CheckInput,
  healthCheckPath: string,
  defaults: CheckDefaults,
): { check: HealthCheck } | { problems: FieldProblem[] } {
  const problems: FieldProblem[] = [];
  const problem = (field: string, text: string) => problems.push({ field: `check.${field}`, problem: text });
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { problems: [{ field: 'check', problem: 'must be an object' }] };
  }
  const own = (key: keyof CheckInput): unknown => (Object.hasOwn(input, key) ? (input as unknown as Record<string, unknown>)[key] : undefined);

  const type = own('type');
  if (type !== 'http' && type !== 'tcp') {
    problem('type', 'must be "http" or "tcp"');
    return { problems };
  }

  const integer = (key: 'intervalMs' | 'timeoutMs' | 'rise' | 'fall' | 'jitterMs' | 'deregisterCriticalAfterMs', fallback: number, min: number, max: number): number => {
    const value = own(key);
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      problem(key, 'must be an integer');
      return fallback;
    }
    if (value < min || value > max) problem(key, `must be from ${min} to ${max}`);
    return value;
  };

  const intervalMs = integer('intervalMs', defaults.intervalMs, CHECK_LIMITS.intervalMs.min, CHECK_LIMITS.intervalMs.max);
  const intervalGiven = own('intervalMs') !== undefined;
  const timeoutMs = integer('timeoutMs', Math.min(defaults.timeoutMs, intervalMs), CHECK_LIMITS.timeoutMs.min, CHECK_LIMITS.timeoutMs.max);
  if (timeoutMs > intervalMs && !problems.some((p) => p.field === 'check.timeoutMs')) {
    problem('timeoutMs', `must not exceed intervalMs (${intervalMs})`);
  }
  const rise = integer('rise', defaults.rise, CHECK_LIMITS.threshold.min, CHECK_LIMITS.threshold.max);
  const fall = integer('fall', defaults.fall, CHECK_LIMITS.threshold.min, CHECK_LIMITS.threshold.max);
  // A check with its own interval gets a tenth of it as jitter, like the global one.
  const jitterDefault = intervalGiven ? Math.round(intervalMs / 10) : Math.min(defaults.jitterMs, intervalMs);
  const jitterMs = integer('jitterMs', jitterDefault, 0, Math.max(intervalMs, 0));
  const deregisterCriticalAfterMs = integer('deregisterCriticalAfterMs', 0, 0, CHECK_LIMITS.deregisterCriticalAfterMs.max);
  if (deregisterCriticalAfterMs > 0 && deregisterCriticalAfterMs < CHECK_LIMITS.deregisterCriticalAfterMs.min) {
    problem('deregisterCriticalAfterMs', `must be 0 (never) or from ${CHECK_LIMITS.deregisterCriticalAfterMs.min} to ${CHECK_LIMITS.deregisterCriticalAfterMs.max}`);
  }

  let path = '';
  let statusMin = 0;
  let statusMax = 0;
  let bodyMatch = '';
  if (type === 'tcp') {
    for (const key of ['path', 'expectedStatus', 'bodyMatch'] as const) {
      if (own(key) !== undefined) problem(key, 'a TCP check only connects: it has no path, expectedStatus or bodyMatch');
    }
  } else {
    const givenPath = own('path');
    if (givenPath !== undefined && typeof givenPath !== 'string') problem('path', 'must be a string');
    else {
      path = givenPath ?? (healthCheckPath || defaults.path);
      const pathProblem = checkProbePath(path, 'check.path');
      if (pathProblem) problems.push(pathProblem);
      else path = withLeadingSlash(path);
    }

    const expected = own('expectedStatus');
    if (expected === undefined) {
      statusMin = DEFAULT_EXPECTED_STATUS.min;
      statusMax = DEFAULT_EXPECTED_STATUS.max;
    } else {
      const range = typeof expected === 'string' ? parseStatusRange(expected) : undefined;
      if (range === undefined) {
        problem('expectedStatus', `must be a status or a range like "200-399", within ${CHECK_LIMITS.status.min}..${CHECK_LIMITS.status.max}, lowest first`);
      } else {
        statusMin = range.min;
        statusMax = range.max;
      }
    }

    const match = own('bodyMatch');
    if (match !== undefined) {
      if (typeof match !== 'string' || match.length > CHECK_LIMITS.bodyMatchLength || CONTROL.test(match)) {
        problem('bodyMatch', `must be text of at most ${CHECK_LIMITS.bodyMatchLength} characters without control characters`);
      } else {
        bodyMatch = match;
      }
    }
  }

  if (problems.length > 0) return { problems };
  return {
    check: Object.freeze({
      type,
      path,
      statusMin,
      statusMax,
      bodyMatch,
      intervalMs,
      timeoutMs,
      rise,
      fall,
      jitterMs,
      deregisterCriticalAfterMs,
    } satisfies HealthCheck),
  };
}

/**
 * The check the leader runs for an instance: its own, else (when active
 * checks are enabled globally) an HTTP check of its healthCheckPath or the
 * global path with the global settings, else none. The probed URL is
 * `instance.address + check.path` (the address already carries the
 * instance's path prefix, as the original Maxine built health URLs).
 */
export function effectiveCheck(instance: Instance, defaults: CheckDefaults): HealthCheck | null {
  if (instance.check !== null) return instance.check;
  if (!defaults.enabled) return null;
  return globalCheck(instance.healthCheckPath || defaults.path, defaults);
}

/** One frozen global check per path: instances sharing it share the object (and sameCheck is cheap). */
const globalChecks = new WeakMap<CheckDefaults, Map<string, HealthCheck>>();

function globalCheck(path: string, defaults: CheckDefaults): HealthCheck {
  let byPath = globalChecks.get(defaults);
  if (byPath === undefined) {
    byPath = new Map();
    globalChecks.set(defaults, byPath);
  }
  let check = byPath.get(path);
  if (check === undefined) {
    check = Object.freeze({
      type: 'http',
      path: withLeadingSlash(path),
      statusMin: DEFAULT_EXPECTED_STATUS.min,
      statusMax: DEFAULT_EXPECTED_STATUS.max,
      bodyMatch: '',
      intervalMs: defaults.intervalMs,
      timeoutMs: Math.min(defaults.timeoutMs, defaults.intervalMs),
      rise: defaults.rise,
      fall: defaults.fall,
      jitterMs: Math.min(defaults.jitterMs, defaults.intervalMs),
      deregisterCriticalAfterMs: 0,
    } satisfies HealthCheck);
    // Paths come from registrations (already validated) and one setting; the map stays small, but bound it anyway.
    if (byPath.size >= 1024) byPath.clear();
    byPath.set(path, check);
  }
  return check;
}

/** A path (checkPath rules) optionally followed by `?query` of URL characters. */
function checkProbePath(value: string, field: string): FieldProblem | undefined {
  if (value.length > LIMITS.pathLength) return { field, problem: `must be at most ${LIMITS.pathLength} characters` };
  const q = value.indexOf('?');
  const pathPart = q < 0 ? value : value.slice(0, q);
  const pathProblem = checkPath(pathPart, field);
  if (pathProblem) return pathProblem;
  if (q >= 0 && !QUERY.test(value.slice(q + 1))) return { field, problem: 'the query may only contain URL query characters' };
  return undefined;
}

/** "204" or "200-399" within 100..599, lowest first; undefined when malformed. */
export function parseStatusRange(value: string): { min: number; max: number } | undefined {
  const m = STATUS.exec(value);
  if (m === null) return undefined;
  const min = Number(m[1]);
  const max = m[2] === undefined ? min : Number(m[2]);
  const { min: lo, max: hi } = CHECK_LIMITS.status;
  if (min < lo || max > hi || min > max) return undefined;
  return { min, max };
}

/** Probe paths are appended to the address, so they start with '/' (or are '' for the address itself). */
function withLeadingSlash(path: string): string {
  return path === '' || path.startsWith('/') ? path : `/${path}`;
}
