import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import type { AppContext } from '../context.ts';

/** The original's route, and the path scrapers look at by default. */
const PATHS = ['/api/actuator/prometheus', '/metrics'] as const;

/** The Prometheus exposition; ops:read, or public with MAXINE_METRICS_PUBLIC so a scraper needs no credentials. */
export function prometheusRoutes(ctx: AppContext): FastifyPluginAsync {
  const permission = ctx.config.metricsPublic ? 'public' : 'ops:read';
  return async (app) => {
    for (const path of PATHS) {
      app.get(
        path,
        {
          config: { permission },
          schema: {
            tags: ['actuator'],
            summary: 'Metrics in the Prometheus text format',
            description: 'Every metric is described in docs/observability.md. Needs ops:read unless MAXINE_METRICS_PUBLIC is on.',
            response: { 200: Type.String(), 401: Type.Ref('Error'), 403: Type.Ref('Error') },
          },
        },
        async (_request, reply) => {
          reply.type(ctx.metrics.contentType);
          return ctx.metrics.text();
        },
      );
    }
  };
}
