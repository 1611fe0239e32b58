import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import { ACTIONS, type Action } from '../auth/actions.ts';

/**
 * What a route requires. Every route declares one in `config.permission`;
 * the server refuses to start when a route has none, so nothing can be added
 * without deciding who may call it. `public` needs nothing, `authenticated`
 * any signed-in principal, an action what the access policy grants.
 * `per-item` routes (event streams, GraphQL) establish the caller like any
 * protected route (presented credentials must be valid) and then decide on
 * every item they hand out, with the same policy.
 */
export const PERMISSIONS = ['public', 'authenticated', 'per-item', ...ACTIONS] as const;
export type Permission = (typeof PERMISSIONS)[number];

/** Reads the service a request touches, once its input is validated; undefined when it names none. */
export type ServiceOf = (request: FastifyRequest) => string | undefined;

declare module 'fastify' {
  interface FastifyContextConfig {
    permission?: Permission;
    /** For actions on one service: where the service name is. Without it the action must be allowed on every service. */
    service?: ServiceOf;
    /** False for routes whose calls are not changes worth auditing (heartbeats, proxied traffic). */
    audit?: boolean;
    /**
     * The route may forward the Authorization header upstream (the proxy): a
     * header that holds no credential of Maxine's is the upstream's, and the
     * caller is anonymous to Maxine rather than refused.
     */
    forwardsCredentials?: boolean;
  }
}

function field(source: unknown, name: string): string | undefined {
  const value = typeof source === 'object' && source !== null ? (source as Record<string, unknown>)[name] : undefined;
  return typeof value === 'string' ? value : undefined;
}

/** Where routes keep the service name. */
export const serviceIn = {
  params: (name = 'serviceName'): ServiceOf => (request) => field(request.params, name),
  query: (name = 'serviceName'): ServiceOf => (request) => field(request.query, name),
  body: (name = 'serviceName'): ServiceOf => (request) => field(request.body, name),
  /** The Lightning routes' `serviceName:host:port` node ids. */
  nodeId: (): ServiceOf => (request) => {
    const nodeId = field(request.body, 'nodeId');
    const colon = nodeId?.indexOf(':') ?? -1;
    return colon > 0 ? nodeId!.slice(0, colon) : undefined;
  },
};

export function isAction(permission: Permission): permission is Action {
  return permission !== 'public' && permission !== 'authenticated' && permission !== 'per-item';
}

/** A route as the access tests enumerate them. */
export interface DeclaredRoute {
  readonly method: string;
  readonly url: string;
  readonly permission: Permission;
  readonly touchesService: boolean;
  readonly forwardsCredentials: boolean;
}

const known = new Set<string>(PERMISSIONS);

/** Collects the route table and refuses to start when a route declares no permission. */
export function installPermissions(app: FastifyInstance): readonly DeclaredRoute[] {
  const routes: RouteOptions[] = [];
  const table: DeclaredRoute[] = [];
  app.addHook('onRoute', (route) => {
    routes.push(route);
  });
  // Checked once every plugin has added its routes (plugins may set the permission in their own onRoute hooks).
  app.addHook('onReady', async () => {
    const missing = routes.filter((r) => !known.has(r.config?.permission ?? '')).map((r) => `${String(r.method)} ${r.url}`);
    if (missing.length > 0) throw new Error(`Routes without a declared permission: ${missing.join(', ')}`);
    for (const route of routes) {
      for (const method of [route.method].flat()) {
        table.push({
          method,
          url: route.url,
          permission: route.config!.permission!,
          touchesService: route.config?.service !== undefined,
          forwardsCredentials: route.config?.forwardsCredentials === true,
        });
      }
    }
  });
  return table;
}
