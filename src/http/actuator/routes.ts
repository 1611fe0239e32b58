import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import type { AppContext } from '../context.ts';
import { PACKAGE_INFO } from '../../package-info.ts';


const ClusterView = Type.Object({
  enabled: Type.Boolean({ description: 'true when replicas share the store (not local)' }),
  instanceId: Type.String(),
  isLeader: Type.Boolean(),
  hasLeader: Type.Boolean(),
  fencingToken: Type.Union([Type.Integer(), Type.Null()], { description: "the current leader's term; null without a leader" }),
  leaderInstanceId: Type.Union([Type.String(), Type.Null()]),
  observedAt: Type.String({ format: 'date-time', description: 'when this view was last confirmed with the store' }),
  store: Type.String(),
  revision: Type.Integer({ description: "the revision this replica's catalog has applied" }),
  reachable: Type.Boolean(),
  storeError: Type.Union([Type.String(), Type.Null()]),
});

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
      async () => ({ build: { name: 'maxine-discovery', description: PACKAGE_INFO.description, version: PACKAGE_INFO.version } }),
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
              store: Type.Object({
                kind: Type.String(),
                reachable: Type.Boolean({ description: 'false while reads come from the last known catalog' }),
              }),
              events: Type.Object(
                {
                  connections: Type.Integer({ description: 'open WebSocket and SSE event streams' }),
                  sent: Type.Record(Type.String(), Type.Integer(), { description: 'events delivered, by type' }),
                  dropped: Type.Integer({ description: 'events not delivered to slow subscribers' }),
                  resyncs: Type.Integer({ description: 'resync markers sent' }),
                },
                { description: "this replica's event streams" },
              ),
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
          store: { kind: ctx.registry.storeKind, reachable: ctx.registry.storeHealth().reachable },
          events: ctx.events.stats(),
        };
      },
    );

    app.get(
      '/cluster',
      {
        config: { permission: 'ops:read' },
        schema: {
          tags: ['actuator'],
          summary: 'Leadership and store state of this replica',
          description:
            "The original's shape, plus the store kind, the revision this replica's catalog has applied and whether the store's backend is reachable.",
          response: { 200: ClusterView },
        },
      },
      async () => clusterView(ctx),
    );
  };
}

/** This replica's view of leadership and its store: /api/actuator/cluster and GraphQL's `cluster`. */
export function clusterView(ctx: AppContext) {
  const { registry } = ctx;
  const leadership = registry.leadership();
  const health = registry.storeHealth();
  return {
    enabled: registry.storeKind !== 'local',
    instanceId: ctx.instanceId,
    isLeader: leadership.isLeader,
    hasLeader: leadership.leaderId !== null,
    fencingToken: leadership.leaderId === null ? null : leadership.fencingToken,
    leaderInstanceId: leadership.leaderId,
    observedAt: new Date(leadership.observedAt).toISOString(),
    store: registry.storeKind,
    revision: registry.catalog.revision,
    reachable: health.reachable,
    storeError: health.error,
  };
}
