import type { Role } from './roles.ts';

/**
 * What a principal may be allowed to do. Routes declare one of these (or
 * `public` / `authenticated`); ACL rules and token scopes speak them too.
 */
export const ACTIONS = [
  'discover',
  'proxy',
  'register',
  'deregister',
  'registry:read',
  'config:read',
  'config:write',
  'ops:read',
  'ops:write',
  'users:manage',
  'audit:read',
  'logs:manage',
] as const;
export type Action = (typeof ACTIONS)[number];

export function isAction(value: unknown): value is Action {
  return typeof value === 'string' && (ACTIONS as readonly string[]).includes(value);
}

const VIEWER: readonly Action[] = ['discover', 'proxy', 'registry:read', 'config:read', 'ops:read'];
const OPERATOR: readonly Action[] = [...VIEWER, 'register', 'deregister', 'config:write', 'ops:write'];

/** The original's role matrix: viewers read, operators change the registry and its settings, admins also manage identities, read the audit and the logs. */
export const ROLE_ACTIONS: Readonly<Record<Role, ReadonlySet<Action>>> = {
  viewer: new Set(VIEWER),
  operator: new Set(OPERATOR),
  admin: new Set(ACTIONS),
};

/** What the compatible posture lets anyone do, as the original's register, heartbeat and discover routes did. */
export const CLIENT_ACTIONS: ReadonlySet<Action> = new Set(['discover', 'proxy', 'register', 'deregister']);
