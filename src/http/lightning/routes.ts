import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import type { Instance, InstanceKey } from '../../core/instance.ts';
import type { Registration } from '../../registry/registry.ts';
import { forbiddenHostProblem } from '../maxine/registration.ts';
import { blockingIndex, BlockingQuery } from '../blocking.ts';
import { checkHost, checkInstanceId, checkServiceName, checkTags, checkVersion, LIMITS, type FieldProblem } from '../../core/validation.ts';
import { serviceIn } from '../permissions.ts';
import type { AppContext } from '../context.ts';
import { ApiError } from '../errors.ts';
import { discoverInstance, type DiscoveryQuery } from '../discovery.ts';

/**
 * The original Lightning mode's root routes. Lightning clients heartbeat
 * against its fixed 30 s timeout, so their leases keep it.
 */
const LIGHTNING_TTL_MS = 30_000;

const LightningRegister = Type.Object({
  serviceName: Type.String({ minLength: 1, maxLength: LIMITS.nameLength }),
  host: Type.String({ minLength: 1, maxLength: LIMITS.hostLength }),
  port: Type.Integer({ minimum: 1, maximum: 65535 }),
  metadata: Type.Optional(
    Type.Object({
      version: Type.Optional(Type.String({ maxLength: LIMITS.versionLength })),
      weight: Type.Optional(Type.Integer({ minimum: 1, maximum: LIMITS.maxWeight })),
      tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: LIMITS.tagLength }), { maxItems: LIMITS.tags })),
    }),
  ),
});

export const NodeRef = Type.Object({ nodeId: Type.String({ minLength: 3, maxLength: 2 * LIMITS.nameLength + 1 }) });

export const LightningDiscoverQuery = Type.Object(
  {
    serviceName: Type.Optional(Type.String({ maxLength: LIMITS.nameLength })),
    loadBalancing: Type.Optional(Type.String({ maxLength: 64 })),
    version: Type.Optional(Type.String({ maxLength: LIMITS.versionLength })),
    tags: Type.Optional(Type.String({ maxLength: 2048 })),
    key: Type.Optional(Type.String({ maxLength: 512 })),
  },
  { additionalProperties: false },
);

const LightningServersQuery = Type.Object(BlockingQuery, { additionalProperties: false });

const Success = Type.Object({ success: Type.Boolean() });
/** What Lightning mode answered a heartbeat or a deregistration with. */
export const LIGHTNING_SUCCESS = { success: true } as const;

/**
 * A node id is `serviceName:host:port`, unique across services (the
 * original's `host:port` collided). Service names cannot contain ':', so the
 * first ':' always separates the service from the instance id.
 */
export function parseNodeId(nodeId: string): InstanceKey | undefined {
  const colon = nodeId.indexOf(':');
  if (colon <= 0 || colon === nodeId.length - 1) return undefined;
  return { service: nodeId.slice(0, colon), id: nodeId.slice(colon + 1) };
}

export function nodeKey(nodeId: string): InstanceKey {
  const key = parseNodeId(nodeId);
  if (key === undefined || checkServiceName(key.service) || checkInstanceId(key.id)) {
    throw ApiError.validation([{ field: 'nodeId', problem: 'must be serviceName:host:port as returned by /register' }]);
  }
  return key;
}

/** What a Lightning discover asks for; throws the ApiError that refuses it. Read alike by the route and the fast lane. */
export function lightningDiscovery(query: Static<typeof LightningDiscoverQuery>): DiscoveryQuery {
  if (!query.serviceName) {
    throw new ApiError(400, 'VALIDATION_FAILED', 'Missing serviceName', [{ field: 'serviceName', problem: 'is required' }]);
  }
  return {
    serviceName: query.serviceName,
    strategy: query.loadBalancing,
    strategyField: 'loadBalancing',
    tags: query.tags,
    version: query.version,
    key: query.key,
  };
}

/** Lightning mode answered a miss with 404 and this message; its clients rely on it. */
export function lightningUnavailable(): ApiError {
  return new ApiError(404, 'SERVICE_UNAVAILABLE', 'Service unavailable');
}

/** A chosen node as Lightning mode answered it. */
export function lightningNode(instance: Instance): { address: string; nodeName: string; nodeId: string; url: string; healthy: boolean } {
  return {
    address: instance.port > 0 ? `${instance.host}:${instance.port}` : instance.host,
    nodeName: instance.id,
    nodeId: `${instance.service}:${instance.id}`,
    url: instance.address,
    healthy: instance.health !== 'critical',
  };
}

function unknownNode(nodeId: string): ApiError {
  return new ApiError(404, 'NOT_FOUND', `No node "${nodeId}" is registered.`);
}

export function lightningRoutes(ctx: AppContext): FastifyPluginAsync {
  const { registry } = ctx;
  return async (app) => {
    app.post(
      '/register',
      {
        config: { permission: 'register', service: serviceIn.body() },
        schema: {
          tags: ['lightning'],
          summary: 'Register (Lightning mode); re-registering an existing node renews it',
          body: LightningRegister,
          response: {
            200: Type.Object({ nodeId: Type.String(), status: Type.Literal('registered') }),
            400: Type.Ref('Error'),
            409: Type.Ref('Error'),
            503: Type.Ref('Error'),
          },
        },
      },
      async (request) => {
        const body = request.body as Static<typeof LightningRegister>;
        const meta = body.metadata ?? {};
        const problems = [
          checkServiceName(body.serviceName),
          checkHost(body.host, 'host'),
          forbiddenHostProblem(body.host, 'host', ctx.config.allowLinkLocal),
          checkVersion(meta.version ?? '', 'metadata.version'),
          checkTags(meta.tags ?? [], 'metadata.tags'),
        ].filter((p): p is FieldProblem => p !== undefined);
        if (problems.length > 0) throw ApiError.validation(problems);
        // IPv6 hosts are bracketed so the id reads as an address and stays parseable.
        const host = body.host.includes(':') && !body.host.startsWith('[') ? `[${body.host}]` : body.host;
        const id = `${host}:${body.port}`;
        const spec: Registration = {
          service: body.serviceName,
          id,
          scheme: 'http',
          host: body.host,
          port: body.port,
          path: '',
          weight: meta.weight ?? 1,
          tags: [...new Set(meta.tags ?? [])],
          version: meta.version ?? '',
          zone: '',
          metadata: {},
          healthCheckPath: '',
          ttlMs: LIGHTNING_TTL_MS,
          check: null,
        };
        request.routine = !(await registry.register(spec)).changed;
        return { nodeId: `${body.serviceName}:${id}`, status: 'registered' as const };
      },
    );

    app.post(
      '/heartbeat',
      {
        config: { permission: 'register', service: serviceIn.nodeId(), audit: false },
        schema: {
          tags: ['lightning'],
          summary: 'Renew a node (Lightning mode)',
          body: NodeRef,
          response: { 200: Success, 400: Type.Ref('Error'), 404: Type.Ref('Error') },
        },
      },
      (request, reply) => {
        const { nodeId } = request.body as Static<typeof NodeRef>;
        if (registry.heartbeat(nodeKey(nodeId)) === undefined) throw unknownNode(nodeId);
        reply.send(LIGHTNING_SUCCESS);
      },
    );

    app.delete(
      '/deregister',
      {
        config: { permission: 'deregister', service: serviceIn.nodeId() },
        schema: {
          tags: ['lightning'],
          summary: 'Remove a node (Lightning mode)',
          body: NodeRef,
          response: { 200: Success, 400: Type.Ref('Error'), 404: Type.Ref('Error'), 503: Type.Ref('Error') },
        },
      },
      async (request) => {
        const { nodeId } = request.body as Static<typeof NodeRef>;
        if ((await registry.deregister(nodeKey(nodeId))) === undefined) throw unknownNode(nodeId);
        return LIGHTNING_SUCCESS;
      },
    );

    app.get(
      '/discover',
      {
        config: { permission: 'discover', service: serviceIn.query() },
        schema: {
          tags: ['lightning'],
          summary: 'Choose a node as JSON (Lightning mode)',
          querystring: LightningDiscoverQuery,
          response: {
            200: Type.Object({
              address: Type.String({ description: 'host:port, as Lightning mode answered' }),
              nodeName: Type.String(),
              nodeId: Type.String(),
              url: Type.String(),
              healthy: Type.Boolean(),
            }),
            400: Type.Ref('Error'),
            404: Type.Ref('Error'),
          },
        },
      },
      (request, reply) => {
        const instance = discoverInstance(ctx, request.raw, lightningDiscovery(request.query as Static<typeof LightningDiscoverQuery>));
        if (instance === undefined) throw lightningUnavailable();
        reply.send(lightningNode(instance));
      },
    );

    app.get(
      '/servers',
      {
        config: { permission: 'registry:read' },
        schema: {
          tags: ['lightning'],
          summary: 'Service names (Lightning mode); index and wait make it a blocking query',
          querystring: LightningServersQuery,
          response: { 200: Type.Object({ services: Type.Array(Type.String()) }), 400: Type.Ref('Error') },
        },
      },
      async (request, reply) => {
        await blockingIndex(ctx, reply, null, request.query as Static<typeof LightningServersQuery>);
        return { services: [...registry.catalog.allServices()].map((s) => s.name).sort() };
      },
    );

    app.get(
      '/health',
      {
        config: { permission: 'public' },
        schema: {
          tags: ['lightning'],
          summary: 'Liveness with counts (Lightning mode)',
          response: { 200: Type.Object({ status: Type.Literal('ok'), services: Type.Integer(), nodes: Type.Integer() }) },
        },
      },
      async () => ({
        status: 'ok' as const,
        services: registry.catalog.serviceCount,
        nodes: registry.catalog.instanceCount,
      }),
    );
  };
}
