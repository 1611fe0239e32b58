import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerFactory,
  type onResponseHookHandler,
} from 'fastify';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { createServer as createHttpsServer, type ServerOptions as HttpsServerOptions } from 'node:https';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import websocket from '@fastify/websocket';
import { eventSocketRoute } from './events/websocket.ts';
import { sseRoute } from './events/sse.ts';
import { probeRoutes } from './probes.ts';
import { logRoutes } from './logs.ts';
import { graphqlRoutes } from './graphql/plugin.ts';
import { actuatorRoutes } from './actuator/routes.ts';
import { alertsRoute } from './actuator/alerts.ts';
import type { AppContext } from './context.ts';
import { ErrorBody, installErrorHandling } from './errors.ts';
import { lightningRoutes } from './lightning/routes.ts';
import { controlRoutes } from './maxine/control.ts';
import { RegisterBody } from './maxine/registration.ts';
import { serviceOpsRoutes } from './maxine/serviceops.ts';
import { InstanceRef } from './maxine/instance-key.ts';
import { instanceRoutes } from './maxine/instances.ts';
import { policyRoutes } from './maxine/policies.ts';
import { upstreamsRoute } from './actuator/upstreams.ts';
import { proxyRoutes } from './proxy/routes.ts';
import { requestIdGenerator } from './request-id.ts';
import { installPermissions, type DeclaredRoute } from './permissions.ts';
import { installAccessControl, type AccessControl } from './access.ts';
import { sessionRoutes } from './auth/sessions.ts';
import { identityRoutes } from './auth/identities.ts';
import { auditRoute } from './actuator/audit.ts';
import { tracesRoute } from './actuator/traces.ts';
import { prometheusRoutes } from './actuator/prometheus.ts';
import { FastLane } from './fast-lane.ts';
import { commonHeaders } from './response-headers.ts';
import { HealthCheckBody, InstanceBody, LeasedInstanceBody } from './views.ts';


const PROXY_PREFIX = '/api/maxine/serviceops/proxy';
/** Subscription messages are small; a bound keeps a client from making the server buffer megabytes. */
const WS_MAX_MESSAGE_BYTES = 64 * 1024;
/** The Lightning routes' proxy, at the root like the rest of them. */
const LIGHTNING_PROXY_PREFIX = '/proxy';

/** Errors raised before routing (a URL that is not validly percent-encoded) get the one error shape too. */
function answerBadUrl(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  reply.code(400).send({ message: `The request URL is not acceptable: ${error.message}`, code: 'VALIDATION_FAILED' });
}

export interface AppOptions {
  readonly logger: FastifyBaseLogger;
  /** Node https options (certificate, key, client CA): serves HTTPS when present. */
  readonly https?: HttpsServerOptions;
  /** The verified client certificate's subject, when mTLS is on. */
  readonly certificateSubject?: (request: IncomingMessage) => string | null;
  /** Server spans and the x-trace-id header (src/observe/tracing.ts), when tracing is on. */
  readonly tracing?: FastifyPluginAsync;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route with its declared permission, complete once the app is ready (the access tests enumerate it). */
    readonly declaredRoutes: readonly DeclaredRoute[];
  }
}

export async function buildApp(ctx: AppContext, options: AppOptions): Promise<FastifyInstance> {
  const requestId = requestIdGenerator();
  const access: AccessControl = {
    authenticator: ctx.security.authenticator,
    policy: () => ctx.security.policy(),
    audit: ctx.audit,
    clientAddress: ctx.clientAddress,
    ...(options.certificateSubject === undefined ? {} : { certificateSubject: options.certificateSubject }),
    onCredentialsRefused: () => ctx.metrics.credentialsRefused(),
  };
  // Traced requests get their spans from fastify's hooks, so with tracing on everything goes through fastify.
  const fastLane = options.tracing === undefined && ctx.recentRequests === null ? new FastLane({ ctx, access, requestId, logger: options.logger }) : null;
  const app = Fastify({
    ...(options.https === undefined ? {} : { https: options.https }),
    ...(fastLane === null ? {} : { serverFactory: fastLaneServer(fastLane, options.https) }),
    // No logger for fastify itself: with one it builds a child logger and
    // response listeners for every request, measured (pinned A/B runs) costing over
    // a tenth of discover throughput. Maxine logs what matters itself:
    // unhandled errors with their request id, start-up and shutdown.
    logger: false,
    bodyLimit: ctx.config.bodyLimitBytes,
    requestIdHeader: false,
    genReqId: requestId,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 256 },
    ajv: {
      // Bodies are typed as JSON types; nothing is coerced, and unknown query parameters are refused, not dropped.
      customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false },
    },
    forceCloseConnections: 'idle',
    frameworkErrors: answerBadUrl,
  });

  // First, so that every route gets its span and the span starts before any other hook.
  if (options.tracing !== undefined) await app.register(options.tracing);
  installErrorHandling(app, options.logger);
  app.decorate('declaredRoutes', installPermissions(app));
  installAccessControl(app, access);
  if (fastLane !== null) {
    app.addHook('onRoute', (route) => fastLane.onRoute(route));
    app.addHook('preClose', (done) => {
      fastLane.close();
      done();
    });
  }
  // Callback-style, not async: this runs on every request and a promise per request shows in the benchmarks.
  const { registry, recentRequests } = ctx;
  const echoTraceId = options.tracing === undefined;
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(commonHeaders(request.id, request.raw, echoTraceId, !registry.storeHealth().reachable));
    done();
  });
  // Per route, bound to its pattern: request.routeOptions would build an object per request.
  if (recentRequests !== null) {
    app.addHook('onRoute', (route) => {
      const pattern = route.url;
      const remember: onResponseHookHandler = (request, reply, done) => {
        const traceId = reply.getHeader('x-trace-id');
        recentRequests.record(request.method, pattern, reply.statusCode, reply.elapsedTime, typeof traceId === 'string' ? traceId : null);
        done();
      };
      route.onResponse = [...[route.onResponse ?? []].flat(), remember];
    });
  }
  // Likewise bound per route: the request pays one observe into plain arrays (see metrics-series.ts).
  app.addHook('onRoute', (route) => {
    const timings = ctx.metrics.requests.route(route.url);
    const time: onResponseHookHandler = (request, reply, done) => {
      timings.observe(request.method, reply.statusCode, reply.elapsedTime / 1000);
      done();
    };
    route.onResponse = [...[route.onResponse ?? []].flat(), time];
  });

  app.addSchema(ErrorBody);
  app.addSchema(HealthCheckBody);
  app.addSchema(InstanceBody);
  app.addSchema(LeasedInstanceBody);
  app.addSchema(RegisterBody);
  app.addSchema(InstanceRef);

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Maxine',
        description: 'Service registry, discovery server and traffic control plane',
        version: '0.1.0',
      },
      tags: [
        { name: 'maxine', description: 'The Maxine API (compatible with the original Maxine)' },
        { name: 'lightning', description: "The original Lightning mode's root routes" },
        { name: 'actuator', description: 'Operational endpoints' },
      ],
      components: {
        securitySchemes: {
          bearerAuth: {
            type: 'http',
            scheme: 'bearer',
            description: 'A session token from /api/maxine/signin, a service token (mxt_…) or an OIDC access token; see docs/security.md',
          },
        },
      },
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });
  await app.register(async (docs) => {
    // The documentation routes are added by a plugin; they are public like the spec they show.
    docs.addHook('onRoute', (route) => {
      route.config = { ...route.config, permission: 'public' };
    });
    await docs.register(swaggerUi, { routePrefix: '/api-docs' });
    docs.get('/api-docs/openapi.json', { config: { permission: 'public' }, schema: { hide: true } }, async () =>
      app.swagger(),
    );
  });

  // Registered once at the root, before any plugin that upgrades (the event streams, GraphQL subscriptions).
  await app.register(websocket, { options: { maxPayload: WS_MAX_MESSAGE_BYTES } });
  await app.register(eventSocketRoute(ctx, ctx.events, '/api/maxine/events/ws'));
  await app.register(eventSocketRoute(ctx, ctx.events, '/'));
  await app.register(sseRoute(ctx, ctx.events), { prefix: '/api/maxine' });
  await app.register(graphqlRoutes(ctx, options.logger));
  await app.register(probeRoutes(ctx));
  await app.register(logRoutes(ctx), { prefix: '/api/logs' });
  await app.register(serviceOpsRoutes(ctx), { prefix: '/api/maxine/serviceops' });
  await app.register(instanceRoutes(ctx), { prefix: '/api/maxine/serviceops' });
  await app.register(policyRoutes(ctx), { prefix: '/api/maxine/serviceops' });
  await app.register(proxyRoutes(ctx, PROXY_PREFIX, 'maxine'), { prefix: PROXY_PREFIX });
  await app.register(controlRoutes(ctx), { prefix: '/api/maxine/control' });
  await app.register(sessionRoutes(ctx), { prefix: '/api/maxine' });
  await app.register(identityRoutes(ctx), { prefix: '/api/maxine' });
  await app.register(auditRoute(ctx), { prefix: '/api/actuator' });
  await app.register(tracesRoute(ctx), { prefix: '/api/actuator' });
  await app.register(alertsRoute(ctx), { prefix: '/api/actuator' });
  await app.register(actuatorRoutes(ctx), { prefix: '/api/actuator' });
  await app.register(upstreamsRoute(ctx), { prefix: '/api/actuator' });
  await app.register(prometheusRoutes(ctx));
  await app.register(lightningRoutes(ctx));
  await app.register(proxyRoutes(ctx, LIGHTNING_PROXY_PREFIX, 'lightning'), { prefix: LIGHTNING_PROXY_PREFIX });
  return app;
}

/**
 * The server fastify would create for itself (same timeouts), with the fast
 * lane's listener in front of fastify's handler.
 */
function fastLaneServer(fastLane: FastLane, https: HttpsServerOptions | undefined): FastifyServerFactory {
  return (handler, serverOptions) => {
    const listener = fastLane.listener(handler);
    const server = https === undefined ? createHttpServer(listener) : createHttpsServer(https, listener);
    // fastify passes its options with its defaults filled in.
    const timeouts = serverOptions as { keepAliveTimeout: number; requestTimeout: number; connectionTimeout: number; maxRequestsPerSocket: number };
    server.keepAliveTimeout = timeouts.keepAliveTimeout;
    server.requestTimeout = timeouts.requestTimeout;
    server.setTimeout(timeouts.connectionTimeout);
    if (timeouts.maxRequestsPerSocket > 0) server.maxRequestsPerSocket = timeouts.maxRequestsPerSocket;
    return server;
  };
}
