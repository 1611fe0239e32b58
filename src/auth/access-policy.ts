import { ACTIONS, CLIENT_ACTIONS, ROLE_ACTIONS, type Action } from './actions.ts';
import { compilePattern, type NamePattern } from './glob.ts';
import { principalNames, type Principal } from './principal.ts';

export type Effect = 'allow' | 'deny';

/** One ACL rule as stored and as the API shows it. */
export interface AclRule {
  readonly effect: Effect;
  /** `*`, `anonymous`, `authenticated`, `user:<name>`, `role:<role>`, `token:<id>`, `oidc:<subject>`, `oidc-group:<group>`, `cert:<subject>`. */
  readonly principal: string;
  /** Actions, or `*` for all. */
  readonly actions: readonly (Action | '*')[];
  /** Service-name pattern (`*` wildcards). */
  readonly services: string;
}

export interface Decision {
  readonly allowed: boolean;
  /** Safe to show the caller and to audit. */
  readonly reason: string;
}

interface CompiledRule {
  readonly index: number;
  readonly effect: Effect;
  readonly principal: string;
  readonly actions: ReadonlySet<string>;
  readonly everyService: boolean;
  readonly matches: NamePattern;
}

const ALLOWED_BY_POSTURE: Decision = { allowed: true, reason: 'open to every client (MAXINE_REQUIRE_CLIENT_AUTH is off)' };
const ALLOWED_BY_ROLE: Decision = { allowed: true, reason: 'granted by role' };
const ALLOWED_BY_TOKEN: Decision = { allowed: true, reason: 'granted by token scope' };

/**
 * The one decision: may this principal do this action on this service?
 *
 * A deny rule that matches wins over everything. Otherwise the action is
 * allowed when the posture opens it to every client, the principal's role
 * grants it, one of its token scopes covers it, or an allow rule matches.
 *
 * `service` is null for requests that touch no single service (listings,
 * settings). A grant or allow rule must cover every service (`*`) to allow
 * those, while a deny rule applies to them whatever its pattern: a listing
 * would show the service the rule protects.
 */
export class AccessPolicy {
  private readonly rules: readonly CompiledRule[];

  constructor(
    rules: readonly AclRule[],
    private readonly openActions: ReadonlySet<Action>,
  ) {
    this.rules = rules.map((rule, index) => ({
      index,
      effect: rule.effect,
      principal: rule.principal,
      actions: new Set(rule.actions.includes('*') ? ACTIONS : rule.actions),
      everyService: rule.services === '*',
      matches: compilePattern(rule.services),
    }));
  }

  /** The posture's open actions: CLIENT_ACTIONS, or none when clients must authenticate. */
  static openActionsFor(requireClientAuth: boolean): ReadonlySet<Action> {
    return requireClientAuth ? new Set() : CLIENT_ACTIONS;
  }

  get ruleCount(): number {
    return this.rules.length;
  }

  decide(principal: Principal, action: Action, service: string | null): Decision {
    let allowRule: CompiledRule | undefined;
    if (this.rules.length > 0) {
      const names = principalNames(principal);
      for (const rule of this.rules) {
        if (!rule.actions.has(action) || !names.includes(rule.principal)) continue;
        if (rule.effect === 'deny') {
          if (service === null || rule.matches(service)) return { allowed: false, reason: `denied by ACL rule ${rule.index + 1}` };
        } else if (allowRule === undefined && (service === null ? rule.everyService : rule.matches(service))) {
          allowRule = rule;
        }
      }
    }
    if (this.openActions.has(action)) return ALLOWED_BY_POSTURE;
    if (principal.role !== null && ROLE_ACTIONS[principal.role].has(action)) return ALLOWED_BY_ROLE;
    for (const grant of principal.grants) {
      if (grant.actions.includes(action) && (grant.services === '*' || (service !== null && grant.matches(service)))) {
        return ALLOWED_BY_TOKEN;
      }
    }
    if (allowRule !== undefined) return { allowed: true, reason: `granted by ACL rule ${allowRule.index + 1}` };
    return { allowed: false, reason: refusal(principal, action, service) };
  }

  /**
   * Whether the principal could be allowed `action` on some service. Checked
   * before the body is read, so a request that can never pass is refused
   * without parsing it.
   */
  mayEver(principal: Principal, action: Action): boolean {
    if (this.openActions.has(action)) return true;
    if (principal.role !== null && ROLE_ACTIONS[principal.role].has(action)) return true;
    if (principal.grants.some((grant) => grant.actions.includes(action))) return true;
    const names = principalNames(principal);
    return this.rules.some((rule) => rule.effect === 'allow' && rule.actions.has(action) && names.includes(rule.principal));
  }
}

function refusal(principal: Principal, action: Action, service: string | null): string {
  const target = service === null ? '' : ` on service "${service}"`;
  if (principal.kind === 'anonymous') return `Sign in: ${action}${target} needs credentials.`;
  const who = principal.role === null ? principal.kind : `role ${principal.role}`;
  return `${who} may not ${action}${target}.`;
}
