import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import type { AppContext } from '../context.ts';

const Query = Type.Object(
  { limit: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,5}$', description: 'at most this many requests (default: all kept)' })) },
  { additionalProperties: false },
);

const RequestSummary = Type.Object({
  time: Type.String({ format: 'date-time', description: 'when the request arrived' }),
  method: Type.String(),
  route: Type.String({ description: 'the route pattern, never the raw URL' }),
  status: Type.Integer(),
  durationMs: Type.Number(),
  traceId: Type.Union([Type.String(), Type.Null()], { description: "the request's x-trace-id; null when it had none" }),
});

/** The original's /api/actuator/traces: this replica's recently answered requests, newest first, while tracing is on. */
export function tracesRoute(ctx: AppContext): FastifyPluginAsync {
  return async (app) => {
    app.get(
      '/traces',
      {
        config: { permission: 'ops:read' },
        schema: {
          tags: ['actuator'],
          summary: "This replica's recently answered requests, newest first, with their trace ids (the spans themselves go to the OTLP collector)",
          description: 'Recorded only while tracing is on (an OTEL_* exporter is configured); off, `tracing` is false and the list empty.',
          querystring: Query,
          response: {
            200: Type.Object({ tracing: Type.Boolean({ description: 'whether requests are being traced and recorded' }), requests: Type.Array(RequestSummary) }),
            400: Type.Ref('Error'),
            401: Type.Ref('Error'),
            403: Type.Ref('Error'),
          },
        },
      },
      async (request) => {
        const { limit } = request.query as Static<typeof Query>;
        const recent = ctx.recentRequests;
        return { tracing: recent !== null, requests: recent === null ? [] : recent.recent(limit === undefined ? undefined : Number(limit)) };
      },
    );
  };
}
