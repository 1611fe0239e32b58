import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';

/**
 * What a route requires. Every route declares one in `config.permission`;
 * the server refuses to start when a route has none, so nothing can be added
 * without deciding who may call it.
 */
export const PERMISSIONS = [
  'public',
  'discover',
  'register',
  'deregister',
  'registry:read',
  'config:read',
  'config:write',
  'ops:read',
  'ops:write',
  'proxy',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

declare module 'fastify' {
  interface FastifyContextConfig {
    permission?: Permission;
  }
}

/** The one place that decides; the security issue supplies the real decision. */
export interface Authorizer {
  /** Resolve to allow; throw an ApiError (401/403) to refuse. */
  authorize(request: FastifyRequest, permission: Permission): void | Promise<void>;
}

/**
 * The foundation's posture: every route open, as the original Maxine's
 * register/heartbeat/discover were. Identities and roles arrive with the
 * security issue by replacing this authorizer; routes already carry the
 * permission it will decide on.
 */
export const OPEN_AUTHORIZER: Authorizer = { authorize: () => undefined };

const known = new Set<string>(PERMISSIONS);

export function installPermissions(app: FastifyInstance, authorizer: Authorizer): void {
  const routes: RouteOptions[] = [];
  app.addHook('onRoute', (route) => {
    routes.push(route);
  });
  // Checked once every plugin has added its routes (plugins may set the permission in their own onRoute hooks).
  app.addHook('onReady', async () => {
    const missing = routes.filter((r) => !known.has(r.config?.permission ?? '')).map((r) => `${String(r.method)} ${r.url}`);
    if (missing.length > 0) throw new Error(`Routes without a declared permission: ${missing.join(', ')}`);
  });
  // With nothing to decide, the hook would only cost every request a call.
  if (authorizer === OPEN_AUTHORIZER) return;
  app.addHook('onRequest', async (request) => {
    // Unmatched URLs (404s) have no route config; they reveal nothing and change nothing.
    const permission = request.routeOptions.config.permission ?? 'public';
    await authorizer.authorize(request, permission);
  });
}
