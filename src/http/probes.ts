import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import type { AppContext } from './context.ts';

const Readiness = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('not ready')]),
  revision: Type.Integer({ description: "the revision this replica's catalog has applied" }),
  store: Type.Object({ kind: Type.String(), reachable: Type.Boolean(), error: Type.Union([Type.String(), Type.Null()]) }),
});

/**
 * Probes for orchestrators. Liveness says the process answers; readiness
 * says its catalog is caught up with the store. Maxine listens only once the
 * catalog has loaded from the store, and while the store is unreachable the
 * catalog may lag it, so readiness fails then (reads still answer, flagged
 * `x-maxine-stale`, for clients that reach the replica anyway).
 */
export function probeRoutes(ctx: AppContext): FastifyPluginAsync {
  return async (app) => {
    app.get(
      '/healthz',
      {
        config: { permission: 'public' },
        schema: { tags: ['actuator'], summary: 'Liveness: the process answers', response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
      },
      async () => ({ status: 'ok' as const }),
    );

    app.get(
      '/readyz',
      {
        config: { permission: 'public' },
        schema: {
          tags: ['actuator'],
          summary: "Readiness: 200 while the catalog is caught up with the store, 503 while the store is unreachable",
          response: { 200: Readiness, 503: Readiness },
        },
      },
      async (_request, reply) => {
        const health = ctx.registry.storeHealth();
        reply.code(health.reachable ? 200 : 503);
        return {
          status: health.reachable ? ('ready' as const) : ('not ready' as const),
          revision: ctx.registry.catalog.revision,
          store: { kind: ctx.registry.storeKind, reachable: health.reachable, error: health.error },
        };
      },
    );
  };
}
