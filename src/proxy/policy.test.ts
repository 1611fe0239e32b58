import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Catalog } from '../core/catalog.ts';
import { parsePolicy, PROXY_POLICY_DEFAULTS, type ProxyPolicy } from './policy.ts';
import { PolicyBook, policyKvKey } from './policy-book.ts';

function parsed(body: unknown): ProxyPolicy {
  const result = parsePolicy(body, PROXY_POLICY_DEFAULTS);
  assert.ok('policy' in result, JSON.stringify(result));
  return result.policy;
}

function problems(body: unknown): string[] {
  const result = parsePolicy(body, PROXY_POLICY_DEFAULTS);
  assert.ok('problems' in result, `expected problems for ${JSON.stringify(body)}`);
  return result.problems.map((p) => p.field);
}

test('a partial policy takes the defaults for the missing fields; the result is frozen', () => {
  const policy = parsed({ retries: 3, strategy: 'RR', passAuthorization: true, retryBudgetPercent: 12.5 });
  assert.deepEqual(policy, { ...PROXY_POLICY_DEFAULTS, retries: 3, strategy: 'round-robin', passAuthorization: true, retryBudgetPercent: 12.5 });
  assert.ok(Object.isFrozen(policy));
  assert.deepEqual(parsed({}), PROXY_POLICY_DEFAULTS);
  assert.equal(parsed({ strategy: null }).strategy, null);
  assert.equal(parsed({ strategy: 'least-connections' }).strategy, 'least-requests');
});

test('wrong types, out-of-range values and unknown fields are problems naming each field', () => {
  assert.deepEqual(problems({ retries: '2' }), ['retries']);
  assert.deepEqual(problems({ retries: 6 }), ['retries']);
  assert.deepEqual(problems({ retries: 1.5 }), ['retries']);
  assert.deepEqual(problems({ connectTimeoutMs: 0 }), ['connectTimeoutMs']);
  assert.deepEqual(problems({ requestTimeoutMs: Number.NaN }), ['requestTimeoutMs']);
  assert.deepEqual(problems({ retryBudgetPercent: 101 }), ['retryBudgetPercent']);
  assert.deepEqual(problems({ passAuthorization: 'true' }), ['passAuthorization']);
  assert.deepEqual(problems({ strategy: 'fastest' }), ['strategy']);
  assert.deepEqual(problems({ maxBodyBytes: -1 }), ['maxBodyBytes']);
  assert.deepEqual(problems({ outlierBaseEjectionMs: 5000, outlierMaxEjectionMs: 4000 }), ['outlierMaxEjectionMs']);
  assert.deepEqual(problems({ retries: -1, colour: 'red', breakerFailures: null }).sort(), ['breakerFailures', 'colour', 'retries']);
  for (const body of [null, [], 'retries=1', 3]) assert.deepEqual(problems(body), ['body']);
});

test('hostile keys pollute nothing', () => {
  const body: unknown = JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}, "retries": 2}');
  assert.deepEqual(problems(body).sort(), ['__proto__', 'constructor']);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  const clean = parsed(JSON.parse('{"retries": 2}'));
  assert.equal(Object.getPrototypeOf(clean), Object.prototype);
  assert.equal((clean as unknown as Record<string, unknown>).polluted, undefined);
});

test('PolicyBook follows the catalog KV; a stored value that does not parse means the defaults and a warning', () => {
  const catalog = new Catalog(10);
  catalog.reset({ revision: 1, instances: [], kv: [[policyKvKey('a'), '{"retries": 4}'], ['config/logAsync', 'true']] });
  const warnings: string[] = [];
  const book = new PolicyBook(catalog, PROXY_POLICY_DEFAULTS, (w) => warnings.push(w));
  assert.equal(book.get('a').retries, 4);
  assert.equal(book.get('a').requestTimeoutMs, PROXY_POLICY_DEFAULTS.requestTimeoutMs);
  assert.equal(book.get('b'), PROXY_POLICY_DEFAULTS);
  assert.equal(book.get('a'), book.get('a'), 'the hot path reads a stored object, it does not parse');

  catalog.apply({ kind: 'kv', revision: 2, key: policyKvKey('b'), value: '{"breakerFailures": 9}' });
  assert.equal(book.get('b').breakerFailures, 9);
  catalog.apply({ kind: 'kv', revision: 3, key: policyKvKey('a'), value: null });
  assert.equal(book.get('a'), PROXY_POLICY_DEFAULTS);
  assert.deepEqual(warnings, []);

  catalog.apply({ kind: 'kv', revision: 4, key: policyKvKey('b'), value: '{"retries": 99}' });
  assert.equal(book.get('b'), PROXY_POLICY_DEFAULTS);
  catalog.apply({ kind: 'kv', revision: 5, key: policyKvKey('c'), value: 'not json' });
  assert.equal(book.get('c'), PROXY_POLICY_DEFAULTS);
  assert.equal(warnings.length, 2);
  assert.match(warnings[0]!, /"b".*retries/);
  assert.match(warnings[1]!, /"c".*not JSON/);

  // A reset replaces every policy: d is read from the new state, nothing earlier is kept.
  catalog.apply({ kind: 'kv', revision: 6, key: policyKvKey('a'), value: '{"retries": 3}' });
  catalog.reset({ revision: 9, instances: [], kv: [[policyKvKey('d'), '{"retries": 0}']] });
  assert.equal(book.get('d').retries, 0);
  for (const service of ['a', 'b', 'c']) assert.equal(book.get(service), PROXY_POLICY_DEFAULTS, service);
  book.close();
  catalog.apply({ kind: 'kv', revision: 10, key: policyKvKey('e'), value: '{"retries": 2}' });
  assert.equal(book.get('e'), PROXY_POLICY_DEFAULTS, 'a closed book no longer follows the catalog');
});
