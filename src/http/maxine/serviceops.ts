import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import { LIMITS } from '../../core/validation.ts';
import { BlockingQuery, blockingIndex } from '../blocking.ts';
import { heartbeatAnswer, instanceKey, unknownInstanceMessage } from './instance-key.ts';
import { serviceIn } from '../permissions.ts';
import type { AppContext } from '../context.ts';
import { ApiError } from '../errors.ts';
import { instanceJsonBytes, legacyServersView, servicesV2View } from '../views.ts';
import { discoverInstance } from '../discovery.ts';
import { checkedUpstreamPath, forwardToService } from '../proxy/forwarding.ts';
import { RegisterBody, registrationSpec } from './registration.ts';
import { DiscoverQuery, discoverRequest, discoverUnavailable, isProxied } from './discover-request.ts';

const ServersQuery = Type.Object(
  {
    format: Type.Optional(Type.Union([Type.Literal('v1'), Type.Literal('v2')])),
    serviceName: Type.Optional(Type.String({ maxLength: LIMITS.nameLength })),
    ...BlockingQuery,
  },
  { additionalProperties: false },
);

const RegisterResponse = Type.Object({
  hostName: Type.String(),
  nodeName: Type.String(),
  serviceName: Type.String(),
  timeOut: Type.Integer(),
  weight: Type.Integer(),
  address: Type.String(),
  healthCheckPath: Type.String(),
  registeredAt: Type.String({ format: 'date-time' }),
  ssl: Type.Boolean(),
  port: Type.Integer(),
  path: Type.String(),
  tags: Type.Array(Type.String()),
  version: Type.String(),
  zone: Type.String(),
  metadata: Type.Record(Type.String(), Type.String()),
  status: Type.String(),
  health: Type.String(),
  check: Type.Union([Type.Ref('HealthCheck'), Type.Null()]),
  revision: Type.Integer({ description: 'modify revision of this instance' }),
});

const errors = { 400: Type.Ref('Error'), 404: Type.Ref('Error'), 503: Type.Ref('Error') };

/** The original Maxine's /api/maxine/serviceops routes, plus heartbeat and deregister. */
export function serviceOpsRoutes(ctx: AppContext): FastifyPluginAsync {
  const { registry, runtime } = ctx;
  return async (app) => {
    app.post(
      '/register',
      {
        config: { permission: 'register', service: serviceIn.body() },
        schema: {
          tags: ['maxine'],
          summary: 'Register an instance (an upsert that also renews its lease)',
          body: Type.Ref('RegisterRequest'),
          response: { 200: RegisterResponse, 400: Type.Ref('Error'), 409: Type.Ref('Error'), 503: Type.Ref('Error') },
        },
      },
      async (request) => {
        const spec = registrationSpec(request.body as RegisterBody, {
          defaultTtlSec: runtime.settings.heartBeatTimeout,
          checkDefaults: ctx.checkDefaults,
          allowLinkLocal: ctx.config.allowLinkLocal,
        });
        const { instance, changed } = await registry.register(spec);
        request.routine = !changed;
        return {
          hostName: instance.host,
          nodeName: instance.id,
          serviceName: instance.service,
          timeOut: Math.round(instance.ttlMs / 1000),
          weight: instance.weight,
          address: instance.address,
          healthCheckPath: instance.healthCheckPath,
          registeredAt: new Date(instance.registeredAt).toISOString(),
          ssl: instance.scheme === 'https',
          port: instance.port,
          path: instance.path,
          tags: instance.tags,
          version: instance.version,
          zone: instance.zone,
          metadata: instance.metadata,
          status: instance.status,
          health: instance.health,
          check: instance.check,
          revision: instance.modifyRevision,
        };
      },
    );

    app.post(
      '/heartbeat',
      {
        config: { permission: 'register', service: serviceIn.body(), audit: false },
        schema: {
          tags: ['maxine'],
          summary: 'Renew the lease of a registered instance',
          body: Type.Ref('InstanceRef'),
          response: {
            200: Type.Object({
              serviceName: Type.String(),
              nodeName: Type.String(),
              timeOut: Type.Integer(),
            }),
            ...errors,
          },
        },
      },
      (request, reply) => {
        const { serviceName, nodeName } = request.body as { serviceName: string; nodeName: string };
        const key = instanceKey(serviceName, nodeName);
        const instance = registry.heartbeat(key);
        if (instance === undefined) throw unknownInstance(serviceName, nodeName);
        reply.send(heartbeatAnswer(key, instance.ttlMs));
      },
    );

    app.delete(
      '/deregister',
      {
        config: { permission: 'deregister', service: serviceIn.body() },
        schema: {
          tags: ['maxine'],
          summary: 'Remove an instance',
          body: Type.Ref('InstanceRef'),
          response: {
            200: Type.Object({ message: Type.String(), serviceName: Type.String(), nodeName: Type.String() }),
            ...errors,
          },
        },
      },
      async (request) => {
        const { serviceName, nodeName } = request.body as { serviceName: string; nodeName: string };
        const removed = await registry.deregister(instanceKey(serviceName, nodeName));
        if (removed === undefined) throw unknownInstance(serviceName, nodeName);
        return { message: 'Deregistered successfully', serviceName, nodeName };
      },
    );

    app.get(
      '/discover',
      {
        config: { permission: 'discover', service: serviceIn.query(), forwardsCredentials: true },
        schema: {
          tags: ['maxine'],
          summary: 'Choose a healthy instance: a 302 to its address (default) or the instance as JSON',
          querystring: DiscoverQuery,
          response: { 200: Type.Ref('Instance'), 302: Type.Null({ description: 'Location: address + endPoint' }), ...errors },
        },
      },
      (request, reply): Promise<void> | void => {
        const discover = discoverRequest(request.query as Static<typeof DiscoverQuery>);
        if (isProxied(ctx, discover)) {
          const upstreamPath = checkedUpstreamPath(discover.endPoint || '/');
          return forwardToService(ctx, request, reply, discover.serviceName, upstreamPath, (exclude) =>
            discoverInstance(ctx, request.raw, discover.discovery, exclude),
          );
        }
        const instance = discoverInstance(ctx, request.raw, discover.discovery);
        if (instance === undefined) throw discoverUnavailable();
        if (discover.json) reply.type('application/json; charset=utf-8').send(instanceJsonBytes(instance));
        else reply.redirect(instance.address + discover.endPoint, 302);
      },
    );

    app.get(
      '/servers',
      {
        config: { permission: 'registry:read' },
        schema: {
          tags: ['maxine'],
          summary: "List every service: the original shape, or ?format=v2 with full instances and revisions; index and wait make it a blocking query",
          querystring: ServersQuery,
          response: { 400: Type.Ref('Error') },
        },
      },
      async (request, reply) => {
        const query = request.query as Static<typeof ServersQuery>;
        await blockingIndex(ctx, reply, query.serviceName ?? null, query);
        const catalog = registry.catalog;
        const one = query.serviceName === undefined ? undefined : catalog.service(query.serviceName);
        const services = query.serviceName === undefined ? catalog.allServices() : one ? [one] : [];
        return query.format === 'v2' ? servicesV2View(services, catalog.revision) : legacyServersView(services);
      },
    );
  };
}

function unknownInstance(serviceName: string, nodeName: string): ApiError {
  return new ApiError(404, 'NOT_FOUND', unknownInstanceMessage(serviceName, nodeName));
}
