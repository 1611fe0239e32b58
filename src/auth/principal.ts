import type { Action } from './actions.ts';
import type { NamePattern } from './glob.ts';
import type { Role } from './roles.ts';

export type PrincipalKind = 'anonymous' | 'user' | 'token' | 'oidc' | 'cert';

/** What a service token may do: these actions on services matching the pattern. */
export interface Grant {
  readonly actions: readonly Action[];
  readonly services: string;
}

/** A grant with its pattern compiled once, when its token is loaded. */
export interface CompiledGrant extends Grant {
  readonly matches: NamePattern;
}

/** Who is asking, as established by the authenticator. */
export interface Principal {
  readonly kind: PrincipalKind;
  /** User name, token id, OIDC subject, certificate subject; null for anonymous. */
  readonly id: string | null;
  /** The role its identity carries (users, mapped OIDC groups); null when none. */
  readonly role: Role | null;
  /** OIDC groups (the configured claim's values). */
  readonly groups: readonly string[];
  /** A service token's scopes: all it may do besides what ACL rules allow. */
  readonly grants: readonly CompiledGrant[];
  /** Epoch ms after which its credential is no longer valid; null when it does not expire. */
  readonly expiresAt: number | null;
}

export const ANONYMOUS: Principal = Object.freeze({
  kind: 'anonymous',
  id: null,
  role: null,
  groups: [],
  grants: [],
  expiresAt: null,
});

/** A client known only by its verified TLS certificate: no role, only what ACL rules grant `cert:<subject>`. */
export function certificatePrincipal(subject: string): Principal {
  return { ...ANONYMOUS, kind: 'cert', id: subject };
}

/**
 * The names ACL rules may use for this principal: `*` (everyone),
 * `anonymous` or `authenticated`, and its specific names (`user:alice`,
 * `role:operator`, `token:<id>`, `oidc:<subject>`, `oidc-group:<group>`,
 * `cert:<subject>`).
 */
export function principalNames(principal: Principal): string[] {
  if (principal.kind === 'anonymous') return ['*', 'anonymous'];
  const names = ['*', 'authenticated', `${principal.kind}:${principal.id}`];
  if (principal.role !== null) names.push(`role:${principal.role}`);
  for (const group of principal.groups) names.push(`oidc-group:${group}`);
  return names;
}

/** How audit records and error messages name a principal (never a credential). */
export function describePrincipal(principal: Principal): string {
  return principal.kind === 'anonymous' ? 'anonymous' : `${principal.kind}:${principal.id}`;
}
