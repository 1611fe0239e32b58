import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AccessPolicy, type AclRule } from './access-policy.ts';
import { parseAclRules } from './acl-rules.ts';
import { compilePattern } from './glob.ts';
import { ANONYMOUS, certificatePrincipal, type Principal } from './principal.ts';

const user = (id: string, role: Principal['role']): Principal => ({ ...ANONYMOUS, kind: 'user', id, role });
const token = (services: string, actions: Principal['grants'][number]['actions']): Principal => ({
  ...ANONYMOUS,
  kind: 'token',
  id: 'abc',
  grants: [{ actions, services, matches: compilePattern(services) }],
});
const open = AccessPolicy.openActionsFor(false);
const closed = AccessPolicy.openActionsFor(true);

describe('AccessPolicy', () => {
  test('roles follow the original matrix', () => {
    const policy = new AccessPolicy([], closed);
    assert.ok(policy.decide(user('v', 'viewer'), 'discover', 'orders').allowed);
    assert.ok(!policy.decide(user('v', 'viewer'), 'register', 'orders').allowed);
    assert.ok(policy.decide(user('o', 'operator'), 'config:write', null).allowed);
    assert.ok(!policy.decide(user('o', 'operator'), 'users:manage', null).allowed);
    assert.ok(policy.decide(user('a', 'admin'), 'audit:read', null).allowed);
    assert.ok(!policy.decide(ANONYMOUS, 'discover', 'orders').allowed);
  });

  test('the compatible posture opens the client actions to everyone, and nothing else', () => {
    const policy = new AccessPolicy([], open);
    for (const action of ['discover', 'proxy', 'register', 'deregister'] as const) assert.ok(policy.decide(ANONYMOUS, action, 'orders').allowed);
    assert.ok(!policy.decide(ANONYMOUS, 'registry:read', null).allowed);
    assert.ok(!policy.decide(user('v', 'viewer'), 'ops:write', 'orders').allowed);
  });

  test('a token may do its scopes on matching services; a listing needs a * scope', () => {
    const policy = new AccessPolicy([], closed);
    const scoped = token('orders-*', ['register', 'discover']);
    assert.ok(policy.decide(scoped, 'register', 'orders-api').allowed);
    assert.ok(!policy.decide(scoped, 'register', 'payments').allowed);
    assert.ok(!policy.decide(scoped, 'deregister', 'orders-api').allowed);
    assert.ok(!policy.decide(scoped, 'register', null).allowed);
    assert.ok(policy.decide(token('*', ['registry:read']), 'registry:read', null).allowed);
    assert.ok(policy.mayEver(scoped, 'register'));
    assert.ok(!policy.mayEver(scoped, 'config:write'));
  });

  test('deny wins over roles, scopes, the posture and allow rules', () => {
    const rules: AclRule[] = [
      { effect: 'allow', principal: 'user:root', actions: ['*'], services: '*' },
      { effect: 'deny', principal: '*', actions: ['register'], services: 'payments-*' },
    ];
    const policy = new AccessPolicy(rules, open);
    for (const p of [ANONYMOUS, user('root', 'admin'), token('*', ['register'])]) {
      assert.equal(policy.decide(p, 'register', 'payments-eu').reason, 'denied by ACL rule 2');
      assert.ok(policy.decide(p, 'register', 'orders').allowed);
    }
  });

  test('without a service, deny rules apply whatever their pattern and allow rules only with *', () => {
    const policy = new AccessPolicy(
      [
        { effect: 'deny', principal: 'role:viewer', actions: ['registry:read'], services: 'secret-*' },
        { effect: 'allow', principal: 'user:otto', actions: ['ops:read'], services: 'orders' },
        { effect: 'allow', principal: 'user:otto', actions: ['audit:read'], services: '*' },
      ],
      closed,
    );
    assert.ok(!policy.decide(user('vera', 'viewer'), 'registry:read', null).allowed);
    assert.ok(policy.decide(user('vera', 'viewer'), 'registry:read', 'orders').allowed);
    assert.ok(!policy.decide(user('otto', null), 'ops:read', null).allowed);
    assert.ok(policy.decide(user('otto', null), 'ops:read', 'orders').allowed);
    assert.ok(policy.decide(user('otto', null), 'audit:read', null).allowed);
  });

  test('rules name principals by kind, role, group and certificate subject', () => {
    const oidc: Principal = { ...ANONYMOUS, kind: 'oidc', id: 'svc-1', groups: ['orders-team'] };
    const policy = new AccessPolicy(
      [
        { effect: 'allow', principal: 'oidc-group:orders-team', actions: ['register'], services: 'orders-*' },
        { effect: 'allow', principal: 'cert:CN=bot,O=Acme', actions: ['discover'], services: '*' },
        { effect: 'allow', principal: 'authenticated', actions: ['ops:read'], services: '*' },
      ],
      closed,
    );
    assert.ok(policy.decide(oidc, 'register', 'orders-api').allowed);
    assert.ok(!policy.decide({ ...oidc, groups: [] }, 'register', 'orders-api').allowed);
    assert.ok(policy.decide(certificatePrincipal('CN=bot,O=Acme'), 'discover', 'x').allowed);
    assert.ok(!policy.decide(certificatePrincipal('CN=bot2,O=Acme'), 'discover', 'x').allowed);
    assert.ok(policy.decide(oidc, 'ops:read', null).allowed);
    assert.ok(!policy.decide(ANONYMOUS, 'ops:read', null).allowed);
  });
});

describe('parseAclRules', () => {
  test('accepts well-formed rules and drops nothing', () => {
    const rules = [{ effect: 'deny', principal: 'role:operator', actions: ['register', 'deregister'], services: 'payments-*' }];
    assert.deepEqual(parseAclRules(rules), { rules });
  });

  test('names the field of every problem', () => {
    const parsed = parseAclRules([
      { effect: 'maybe', principal: 'role:root', actions: [], services: 'a b' },
      { effect: 'allow', principal: 'user:\n', actions: ['fly'], services: '*', extra: 1 },
      'x',
    ]);
    assert.ok('problems' in parsed);
    assert.deepEqual(
      parsed.problems.map((p) => p.field),
      ['rules[0].effect', 'rules[0].principal', 'rules[0].actions', 'rules[0].services', 'rules[1].extra', 'rules[1].principal', 'rules[1].actions', 'rules[2]'],
    );
    assert.ok('problems' in parseAclRules({ rules: [] }));
  });
});

describe('compilePattern', () => {
  test('* is the only wildcard; everything else is literal', () => {
    assert.ok(compilePattern('orders-*')('orders-api'));
    assert.ok(compilePattern('orders-*')('orders-'));
    assert.ok(!compilePattern('orders-*')('my-orders-api'));
    assert.ok(compilePattern('*-eu')('payments-eu'));
    assert.ok(!compilePattern('a.b')('axb'));
    assert.ok(compilePattern('*')('anything'));
    assert.ok(!compilePattern('orders')('orders-api'));
  });
});
