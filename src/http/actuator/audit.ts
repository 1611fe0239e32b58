import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import type { AppContext } from '../context.ts';

const Query = Type.Object(
  {
    limit: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,5}$', description: 'at most this many events (default 100)' })),
    actor: Type.Optional(Type.String({ maxLength: 256 })),
    result: Type.Optional(Type.Union([Type.Literal('allowed'), Type.Literal('denied'), Type.Literal('succeeded'), Type.Literal('failed')])),
    service: Type.Optional(Type.String({ maxLength: 256 })),
  },
  { additionalProperties: false },
);

const Event = Type.Object({
  time: Type.String(),
  actor: Type.Object({ kind: Type.String(), id: Type.Union([Type.String(), Type.Null()]), role: Type.Union([Type.String(), Type.Null()]) }),
  action: Type.String(),
  service: Type.Union([Type.String(), Type.Null()]),
  method: Type.String(),
  route: Type.String(),
  address: Type.String(),
  result: Type.String(),
  status: Type.Integer(),
  reason: Type.Union([Type.String(), Type.Null()]),
  traceId: Type.Union([Type.String(), Type.Null()]),
  requestId: Type.String(),
});

/** The original's /api/actuator/audit: this replica's recent audit events, newest first. */
export function auditRoute(ctx: AppContext): FastifyPluginAsync {
  return async (app) => {
    app.get(
      '/audit',
      {
        config: { permission: 'audit:read' },
        schema: {
          tags: ['actuator'],
          summary: "Recent audit events of this replica, newest first (the full record is the audit log's JSON lines)",
          querystring: Query,
          response: { 200: Type.Object({ events: Type.Array(Event) }), 400: Type.Ref('Error'), 401: Type.Ref('Error'), 403: Type.Ref('Error') },
        },
      },
      async (request) => {
        const { limit, ...filters } = request.query as Static<typeof Query>;
        return { events: ctx.audit.recent({ ...filters, ...(limit === undefined ? {} : { limit: Number(limit) }) }) };
      },
    );
  };
}
