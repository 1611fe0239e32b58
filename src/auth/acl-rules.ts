import type { FieldProblem } from '../core/validation.ts';
import type { AclRule } from './access-policy.ts';
import { isAction } from './actions.ts';
import { PATTERN_SOURCE } from './glob.ts';
import { isRole } from './roles.ts';

/** Most rules one deployment may have: each is checked on requests whose principal it names. */
export const MAX_ACL_RULES = 1000;

const PATTERN = new RegExp(PATTERN_SOURCE);
/** What may follow a principal kind: names, subjects and certificate DNs, but no control characters. */
const PRINCIPAL_VALUE = /^[^\x00-\x1f\x7f]{1,256}$/;
const PRINCIPAL_KINDS = ['user', 'token', 'oidc', 'oidc-group', 'cert'];

function validPrincipal(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  if (value === '*' || value === 'anonymous' || value === 'authenticated') return true;
  const colon = value.indexOf(':');
  const kind = value.slice(0, colon);
  const rest = value.slice(colon + 1);
  if (kind === 'role') return isRole(rest);
  return colon > 0 && PRINCIPAL_KINDS.includes(kind) && PRINCIPAL_VALUE.test(rest);
}

/** Rules as sent to PUT /api/maxine/acl or read back from the store; problems name the field. */
export function parseAclRules(value: unknown): { rules: AclRule[] } | { problems: FieldProblem[] } {
  if (!Array.isArray(value)) return { problems: [{ field: 'rules', problem: 'must be an array' }] };
  if (value.length > MAX_ACL_RULES) return { problems: [{ field: 'rules', problem: `must have at most ${MAX_ACL_RULES} rules` }] };
  const problems: FieldProblem[] = [];
  const rules: AclRule[] = [];
  value.forEach((raw: unknown, i) => {
    const at = `rules[${i}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      problems.push({ field: at, problem: 'must be an object' });
      return;
    }
    const r = raw as Record<string, unknown>;
    const unknownKeys = Object.keys(r).filter((k) => !['effect', 'principal', 'actions', 'services'].includes(k));
    if (unknownKeys.length > 0) problems.push({ field: `${at}.${unknownKeys[0]}`, problem: 'is not a rule field' });
    if (r.effect !== 'allow' && r.effect !== 'deny') problems.push({ field: `${at}.effect`, problem: 'must be allow or deny' });
    if (!validPrincipal(r.principal)) {
      problems.push({
        field: `${at}.principal`,
        problem: 'must be *, anonymous, authenticated, role:<viewer|operator|admin>, user:<name>, token:<id>, oidc:<subject>, oidc-group:<group> or cert:<subject>',
      });
    }
    const actions = r.actions;
    if (!Array.isArray(actions) || actions.length === 0 || !actions.every((a) => a === '*' || isAction(a))) {
      problems.push({ field: `${at}.actions`, problem: 'must be a non-empty list of actions (or "*")' });
    }
    if (typeof r.services !== 'string' || !PATTERN.test(r.services)) {
      problems.push({ field: `${at}.services`, problem: 'must be a service-name pattern (letters, digits, . _ - and * wildcards)' });
    }
    rules.push(r as unknown as AclRule);
  });
  return problems.length > 0 ? { problems } : { rules: rules.map(({ effect, principal, actions, services }) => ({ effect, principal, actions, services })) };
}
