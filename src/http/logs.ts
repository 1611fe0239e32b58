import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import { auditEvent } from './access.ts';
import type { AppContext } from './context.ts';

const errors = { 401: Type.Ref('Error'), 403: Type.Ref('Error') };

/**
 * The original's log routes. Maxine logs to standard output (collect it
 * there); these serve the replica's most recent lines, kept in memory.
 */
export function logRoutes(ctx: AppContext): FastifyPluginAsync {
  const manage = { permission: 'logs:manage' as const };
  return async (app) => {
    app.get(
      '/recent',
      { config: manage, schema: { tags: ['actuator'], summary: "This replica's recent log lines", response: { 200: Type.Object({ logs: Type.String() }), ...errors } } },
      async () => ({ logs: ctx.recentLogs.text() }),
    );

    app.get(
      '/recent/clear',
      {
        config: manage,
        schema: { tags: ['actuator'], summary: 'Forget the recent log lines (a GET, as in the original)', response: { 200: Type.Object({ message: Type.String() }), ...errors } },
      },
      async (request) => {
        ctx.recentLogs.clear();
        // A GET that changes something: audited here, as GETs are not audited on their way out.
        const { principal } = request;
        ctx.audit.record(
          auditEvent(request, ctx.clientAddress, {
            actor: { kind: principal.kind, id: principal.id, role: principal.role },
            action: 'logs:manage',
            service: null,
            result: 'succeeded',
            status: 200,
            reason: null,
          }),
        );
        return { message: 'Recent logs cleared.' };
      },
    );

    app.get(
      '/download',
      {
        config: manage,
        schema: { tags: ['actuator'], summary: 'The recent log lines as a file', response: { 200: Type.String(), ...errors } },
      },
      async (_request, reply) => {
        reply.type('text/plain; charset=utf-8').header('content-disposition', 'attachment; filename="maxine-recent.log"');
        return ctx.recentLogs.text();
      },
    );
  };
}
