import { parseStrategy, STRATEGY_SPELLINGS } from '../core/selection/names.ts';
import type { StrategyName } from '../core/selection/strategy.ts';
import type { FieldProblem } from '../core/validation.ts';

/**
 * How the proxy treats one service's traffic. Stored per service in the
 * catalog's KV (see policy-book.ts), so every replica forwards the same way.
 */
export interface ProxyPolicy {
  /** Time allowed to open a connection to an instance. */
  readonly connectTimeoutMs: number;
  /**
   * Time allowed waiting on the instance once connected: for the response
   * headers after the last request byte was sent, and between any two body
   * chunks in either direction. Time spent waiting on the client is not counted.
   */
  readonly requestTimeoutMs: number;
  /** Extra attempts after the first (0..5). */
  readonly retries: number;
  /** Base of the exponential backoff between attempts (full jitter, capped at 10x). */
  readonly retryBackoffMs: number;
  /** Retries may add at most this percentage of the service's requests over the last 10 s ... */
  readonly retryBudgetPercent: number;
  /** ... but this many retries per second are always allowed. */
  readonly minRetriesPerSecond: number;
  /** Consecutive failures that open an instance's breaker; 0 disables the breaker. */
  readonly breakerFailures: number;
  /** How long an open breaker refuses traffic before one half-open trial. */
  readonly breakerOpenMs: number;
  /** Largest request body forwarded; larger ones are answered 413. */
  readonly maxBodyBytes: number;
  /** Forward the client's Authorization header to the instance. */
  readonly passAuthorization: boolean;
  /** Selection strategy for proxied requests; null means the runtime serverSelectionStrategy. */
  readonly strategy: StrategyName | null;
  /** Consecutive connection failures or 5xx responses that eject an instance; 0 disables ejection. */
  readonly outlierConsecutiveFailures: number;
  /** An ejection lasts base x (times ejected before + 1), at most outlierMaxEjectionMs. */
  readonly outlierBaseEjectionMs: number;
  readonly outlierMaxEjectionMs: number;
  /** Never eject when more than this percentage of the service's instances would be ejected. */
  readonly outlierMaxEjectionPercent: number;
}

/** Defaults for a deployment that configures nothing. */
export const PROXY_POLICY_DEFAULTS: ProxyPolicy = Object.freeze({
  connectTimeoutMs: 2_000,
  requestTimeoutMs: 30_000,
  retries: 1,
  retryBackoffMs: 25,
  retryBudgetPercent: 20,
  minRetriesPerSecond: 10,
  breakerFailures: 5,
  breakerOpenMs: 10_000,
  maxBodyBytes: 10 * 1024 * 1024,
  passAuthorization: false,
  strategy: null,
  outlierConsecutiveFailures: 5,
  outlierBaseEjectionMs: 30_000,
  outlierMaxEjectionMs: 300_000,
  outlierMaxEjectionPercent: 50,
});

type Check = (value: unknown) => { ok: true; value: unknown } | { ok: false; problem: string };

function integer(min: number, max: number): Check {
  return (value) =>
    typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max
      ? { ok: true, value }
      : { ok: false, problem: `must be an integer from ${min} to ${max}` };
}

function decimal(min: number, max: number): Check {
  return (value) =>
    typeof value === 'number' && Number.isFinite(value) && value >= min && value <= max
      ? { ok: true, value }
      : { ok: false, problem: `must be a number from ${min} to ${max}` };
}

const HOUR = 3_600_000;

/** The fixed list of fields: only these are ever read from a body or written to a policy. */
const CHECKS: { readonly [K in keyof ProxyPolicy]: Check } = {
  connectTimeoutMs: integer(1, 60_000),
  requestTimeoutMs: integer(1, HOUR),
  retries: integer(0, 5),
  retryBackoffMs: integer(0, 60_000),
  retryBudgetPercent: decimal(0, 100),
  minRetriesPerSecond: decimal(0, 10_000),
  breakerFailures: integer(0, 1_000),
  breakerOpenMs: integer(1, HOUR),
  maxBodyBytes: integer(0, 2 ** 40),
  passAuthorization: (value) =>
    typeof value === 'boolean' ? { ok: true, value } : { ok: false, problem: 'must be true or false' },
  strategy: (value) => {
    if (value === null) return { ok: true, value: null };
    const name = typeof value === 'string' ? parseStrategy(value) : undefined;
    return name !== undefined
      ? { ok: true, value: name }
      : { ok: false, problem: `must be null or one of ${STRATEGY_SPELLINGS.join(', ')}` };
  },
  outlierConsecutiveFailures: integer(0, 1_000),
  outlierBaseEjectionMs: integer(1, HOUR),
  outlierMaxEjectionMs: integer(1, 24 * HOUR),
  outlierMaxEjectionPercent: decimal(0, 100),
};

const FIELDS = Object.keys(CHECKS) as (keyof ProxyPolicy)[];
const KNOWN: ReadonlySet<string> = new Set(FIELDS);

/**
 * Validate a (possibly partial) policy: missing fields take `defaults`;
 * unknown fields, wrong types and out-of-range values are problems naming
 * the field. The result is a new frozen object built only from the fixed
 * field list, so keys such as `__proto__` in the body reach nothing.
 */
export function parsePolicy(
  body: unknown,
  defaults: ProxyPolicy,
): { policy: ProxyPolicy } | { problems: FieldProblem[] } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { problems: [{ field: 'body', problem: 'must be a JSON object' }] };
  }
  const source = body as Record<string, unknown>;
  const problems: FieldProblem[] = [];
  for (const key of Object.keys(source)) {
    if (!KNOWN.has(key)) problems.push({ field: key, problem: 'is not a policy field' });
  }
  const policy: Record<string, unknown> = {};
  for (const field of FIELDS) {
    if (!Object.hasOwn(source, field)) {
      policy[field] = defaults[field];
      continue;
    }
    const checked = CHECKS[field](source[field]);
    if (checked.ok) policy[field] = checked.value;
    else problems.push({ field, problem: checked.problem });
  }
  if (problems.length === 0 && (policy.outlierMaxEjectionMs as number) < (policy.outlierBaseEjectionMs as number)) {
    problems.push({ field: 'outlierMaxEjectionMs', problem: 'must be at least outlierBaseEjectionMs' });
  }
  if (problems.length > 0) return { problems };
  return { policy: Object.freeze(policy) as unknown as ProxyPolicy };
}
