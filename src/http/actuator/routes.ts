import { readFileSync } from 'node:fs';
import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import type { AppContext } from '../context.ts';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
  version: string;
  description: string;
};

/** The original's Spring-style actuator endpoints, same shapes. */
export function actuatorRoutes(ctx: AppContext): FastifyPluginAsync {
  return async (app) => {
    app.get(
      '/health',
      {
        config: { permission: 'public' },
        schema: { tags: ['actuator'], summary: 'Liveness', response: { 200: Type.Object({ status: Type.Literal('UP') }) } },
      },
      async () => ({ status: 'UP' as const }),
    );

    app.get(
      '/info',
      {
        config: { permission: 'public' },
        schema: {
          tags: ['actuator'],
          summary: 'Build information',
          response: {
            200: Type.Object({
              build: Type.Object({ name: Type.String(), description: Type.String(), version: Type.String() }),
            }),
          },
        },
      },
      async () => ({ build: { name: 'maxine-discovery', description: pkg.description, version: pkg.version } }),
    );

    app.get(
      '/metrics',
      {
        config: { permission: 'public' },
        schema: {
          tags: ['actuator'],
          summary: 'Process memory and uptime, plus catalog counts',
          response: {
            200: Type.Object({
              mem: Type.Object({
                rss: Type.Number(),
                heapTotal: Type.Number(),
                heapUsed: Type.Number(),
                external: Type.Number(),
                arrayBuffers: Type.Number(),
              }),
              uptime: Type.Number({ description: 'seconds' }),
              services: Type.Integer(),
              instances: Type.Integer(),
              revision: Type.Integer(),
            }),
          },
        },
      },
      async () => {
        const catalog = ctx.registry.catalog;
        return {
          mem: process.memoryUsage(),
          uptime: process.uptime(),
          services: catalog.serviceCount,
          instances: catalog.instanceCount,
          revision: catalog.revision,
        };
      },
    );
  };
}
