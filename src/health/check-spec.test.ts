import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { testInstance } from '../core/fixtures.ts';
import type { FieldProblem } from '../core/validation.ts';
import { effectiveCheck, parseStatusRange, resolveCheck, type CheckDefaults, type CheckInput } from './check-spec.ts';

const defaults: CheckDefaults = {
  enabled: false,
  path: '/health',
  intervalMs: 10_000,
  timeoutMs: 2000,
  fall: 3,
  rise: 2,
  jitterMs: 1000,
  concurrency: 64,
};

function problemsOf(input: unknown, healthCheckPath = ''): FieldProblem[] {
  const resolved = resolveCheck(input as CheckInput, healthCheckPath, defaults);
  assert.ok('problems' in resolved, `expected problems for ${JSON.stringify(input)}`);
  return resolved.problems;
}

function fieldsOf(input: unknown): string[] {
  return problemsOf(input).map((p) => p.field);
}

function resolved(input: CheckInput, healthCheckPath = '') {
  const result = resolveCheck(input, healthCheckPath, defaults);
  assert.ok('check' in result, `unexpected problems: ${JSON.stringify(result)}`);
  return result.check;
}

describe('resolveCheck', () => {
  test('an HTTP check with only a type takes every default', () => {
    assert.deepEqual(resolved({ type: 'http' }), {
      type: 'http',
      path: '/health',
      statusMin: 200,
      statusMax: 399,
      bodyMatch: '',
      intervalMs: 10_000,
      timeoutMs: 2000,
      rise: 2,
      fall: 3,
      jitterMs: 1000,
      deregisterCriticalAfterMs: 0,
    });
    assert.ok(Object.isFrozen(resolved({ type: 'http' })));
  });

  test('the path is the check own, else the registration healthCheckPath, else the global one', () => {
    assert.equal(resolved({ type: 'http', path: '/ready?deep=1' }, '/hc').path, '/ready?deep=1');
    assert.equal(resolved({ type: 'http' }, '/hc').path, '/hc');
    assert.equal(resolved({ type: 'http' }).path, '/health');
    assert.equal(resolved({ type: 'http', path: 'status' }).path, '/status');
    assert.equal(resolved({ type: 'http', path: '' }).path, '');
  });

  test('every given field is kept; an own interval brings its own jitter and a timeout capped by it', () => {
    const check = resolved({
      type: 'http',
      expectedStatus: '204',
      bodyMatch: '"status":"UP"',
      intervalMs: 500,
      rise: 1,
      fall: 10,
      deregisterCriticalAfterMs: 60_000,
    });
    assert.equal(check.statusMin, 204);
    assert.equal(check.statusMax, 204);
    assert.equal(check.bodyMatch, '"status":"UP"');
    assert.equal(check.intervalMs, 500);
    assert.equal(check.timeoutMs, 500);
    assert.equal(check.jitterMs, 50);
    assert.equal(check.rise, 1);
    assert.equal(check.fall, 10);
    assert.equal(check.deregisterCriticalAfterMs, 60_000);
  });

  test('a TCP check has no path, status range or body', () => {
    assert.deepEqual(
      { ...resolved({ type: 'tcp', intervalMs: 1000, timeoutMs: 300 }) },
      {
        type: 'tcp',
        path: '',
        statusMin: 0,
        statusMax: 0,
        bodyMatch: '',
        intervalMs: 1000,
        timeoutMs: 300,
        rise: 2,
        fall: 3,
        jitterMs: 100,
        deregisterCriticalAfterMs: 0,
      },
    );
    assert.deepEqual(fieldsOf({ type: 'tcp', path: '/health', expectedStatus: '200', bodyMatch: 'ok' }), [
      'check.path',
      'check.expectedStatus',
      'check.bodyMatch',
    ]);
  });

  test('numbers out of range are refused, each naming its field', () => {
    assert.deepEqual(fieldsOf({ type: 'http', intervalMs: 99 }), ['check.intervalMs']);
    assert.deepEqual(fieldsOf({ type: 'http', intervalMs: 3_600_001 }), ['check.intervalMs']);
    assert.deepEqual(fieldsOf({ type: 'http', intervalMs: 1.5 }), ['check.intervalMs']);
    assert.deepEqual(fieldsOf({ type: 'http', timeoutMs: 49 }), ['check.timeoutMs']);
    assert.deepEqual(fieldsOf({ type: 'http', timeoutMs: 60_001 }), ['check.timeoutMs']);
    assert.deepEqual(fieldsOf({ type: 'http', intervalMs: 1000, timeoutMs: 1001 }), ['check.timeoutMs']);
    assert.deepEqual(fieldsOf({ type: 'http', rise: 0, fall: 11 }), ['check.rise', 'check.fall']);
    assert.deepEqual(fieldsOf({ type: 'http', intervalMs: 1000, jitterMs: 1001 }), ['check.jitterMs']);
    assert.deepEqual(fieldsOf({ type: 'http', jitterMs: -1 }), ['check.jitterMs']);
    assert.deepEqual(fieldsOf({ type: 'http', deregisterCriticalAfterMs: 999 }), ['check.deregisterCriticalAfterMs']);
    assert.deepEqual(fieldsOf({ type: 'http', deregisterCriticalAfterMs: 604_800_001 }), ['check.deregisterCriticalAfterMs']);
    assert.deepEqual(fieldsOf({ type: 'http', rise: '2' }), ['check.rise']);
    assert.deepEqual(fieldsOf({ type: 'http', intervalMs: Number.NaN }), ['check.intervalMs']);
    // Several at once are all reported.
    assert.equal(problemsOf({ type: 'http', intervalMs: 5, rise: 99, expectedStatus: 'x' }).length, 3);
  });

  test('expectedStatus is a status or a range within 100..599, lowest first', () => {
    for (const bad of ['', '2xx', '99', '600', '200-', '399-200', '200-600', '200 - 399', ' 200', '0200', '200,204']) {
      assert.deepEqual(fieldsOf({ type: 'http', expectedStatus: bad }), ['check.expectedStatus'], bad);
    }
    assert.deepEqual(parseStatusRange('100-599'), { min: 100, max: 599 });
    assert.deepEqual(parseStatusRange('429'), { min: 429, max: 429 });
  });

  test('hostile paths and bodies are refused', () => {
    for (const bad of ['../admin', '/a/../../etc/passwd', '/./x', '//evil.example/x', '/a b', '/x#frag', '/x"', '/x\\y', '/ok?q=a b', '/ok?q=<script>', `/${'a'.repeat(600)}`]) {
      assert.deepEqual(fieldsOf({ type: 'http', path: bad }), ['check.path'], bad);
    }
    assert.deepEqual(fieldsOf({ type: 'http', bodyMatch: 'x'.repeat(257) }), ['check.bodyMatch']);
    assert.deepEqual(fieldsOf({ type: 'http', bodyMatch: 'a\nb' }), ['check.bodyMatch']);
    assert.deepEqual(fieldsOf({ type: 'http', path: 42 }), ['check.path']);
    assert.deepEqual(fieldsOf({ type: 'ftp' }), ['check.type']);
    assert.deepEqual(fieldsOf({}), ['check.type']);
    assert.deepEqual(problemsOf(null), [{ field: 'check', problem: 'must be an object' }]);
  });

  test('only the input own known fields count: __proto__ and inherited values are ignored', () => {
    const parsed = JSON.parse('{"type":"http","__proto__":{"intervalMs":1,"path":"../x"},"constructor":{"x":1},"extra":"ignored"}') as CheckInput;
    assert.equal(resolved(parsed).intervalMs, 10_000);
    assert.equal(resolved(parsed).path, '/health');
    const inherited = Object.create({ intervalMs: 5, path: '/../../x' }) as CheckInput;
    inherited.type = 'http';
    assert.equal(resolved(inherited).intervalMs, 10_000);
    assert.equal(({} as Record<string, unknown>)['intervalMs'], undefined, 'Object.prototype untouched');
  });
});

describe('effectiveCheck', () => {
  test("the instance's own check wins", () => {
    const own = resolved({ type: 'tcp' });
    assert.equal(effectiveCheck(testInstance('svc', 'a', { check: own }), { ...defaults, enabled: true }), own);
  });

  test('without one: the global HTTP check when enabled, else none', () => {
    assert.equal(effectiveCheck(testInstance('svc', 'a'), defaults), null);
    const enabled = { ...defaults, enabled: true };
    const global = effectiveCheck(testInstance('svc', 'a'), enabled);
    assert.deepEqual(global, {
      type: 'http',
      path: '/health',
      statusMin: 200,
      statusMax: 399,
      bodyMatch: '',
      intervalMs: 10_000,
      timeoutMs: 2000,
      rise: 2,
      fall: 3,
      jitterMs: 1000,
      deregisterCriticalAfterMs: 0,
    });
    assert.equal(effectiveCheck(testInstance('svc', 'b'), enabled), global, 'shared, not rebuilt per instance');
    assert.equal(effectiveCheck(testInstance('svc', 'c', { healthCheckPath: '/hc' }), enabled)?.path, '/hc');
  });
});
