import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import type { AdminStatus } from '../../core/instance.ts';
import { serviceIn } from '../permissions.ts';
import type { AppContext } from '../context.ts';
import { instanceView } from '../views.ts';
import { InstanceParams, instanceKey } from './instance-key.ts';

/** Why an operator changed a status: shown in listings and events. */
export const StatusReason = Type.String({ maxLength: 256, pattern: '^[^\\u0000-\\u001f\\u007f]*$', description: 'shown in listings and events' });

const StatusBody = Type.Object(
  {
    status: Type.Union([Type.Literal('up'), Type.Literal('starting'), Type.Literal('draining'), Type.Literal('maintenance')], {
      description: 'maintenance: no picks (on), up: back in rotation (off), draining: no new picks but still listed',
    }),
    reason: Type.Optional(StatusReason),
  },
  { additionalProperties: false },
);

const errors = { 400: Type.Ref('Error'), 404: Type.Ref('Error'), 409: Type.Ref('Error'), 503: Type.Ref('Error') };

/** Operators' changes to one instance: maintenance on and off, drain. */
export function instanceRoutes(ctx: AppContext): FastifyPluginAsync {
  return async (app) => {
    app.put(
      '/instances/:serviceName/:nodeName/status',
      {
        config: { permission: 'ops:write', service: serviceIn.params() },
        schema: {
          tags: ['maxine'],
          summary: "Set an instance's admin status (maintenance on/off, drain)",
          description:
            'The status sticks: re-registrations that give no status keep it. Every replica sees the change through the store.',
          params: InstanceParams,
          body: StatusBody,
          response: { 200: Type.Ref('Instance'), ...errors },
        },
      },
      async (request) => {
        const { serviceName, nodeName } = request.params as Static<typeof InstanceParams>;
        const body = request.body as Static<typeof StatusBody>;
        const key = instanceKey(serviceName, nodeName);
        const instance = await ctx.registry.setStatus(key, body.status as AdminStatus, body.reason ?? '');
        return instanceView(instance);
      },
    );
  };
}
