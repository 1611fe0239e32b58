import type { FastifyBaseLogger, FastifyPluginAsync } from 'fastify';
import mercurius from 'mercurius';
import type { AppContext } from '../context.ts';
import { formatErrors } from './errors.ts';
import { Gate } from './gate.ts';
import { scalarResolvers } from './inputs.ts';
import { limitsRule, noSubscriptionOverHttp } from './limits.ts';
import { mutationResolvers } from './mutations.ts';
import { queryResolvers } from './queries.ts';
import { SCHEMA } from './schema.ts';
import { subscriptionConnections, subscriptionResolvers, validateSubscription } from './subscriptions.ts';

/** Pings on idle subscriptions, so proxies in between do not close them. */
const KEEP_ALIVE_MS = 30_000;
/** Far more than any real operation needs; the parser stops early on documents built to be slow to parse. */
const MAX_TOKENS = 5000;

/**
 * GraphQL at /graphql: queries and mutations over HTTP, subscriptions over
 * WebSocket (graphql-transport-ws) on the same path, GraphiQL at /graphiql
 * outside production. Uses the root's @fastify/websocket when app.ts has
 * registered it before this plugin.
 */
export function graphqlRoutes(ctx: AppContext, logger: FastifyBaseLogger): FastifyPluginAsync {
  return async (app) => {
    app.addHook('onRoute', (route) => {
      // GraphiQL is a static page with its assets, public like the API docs.
      if (route.url.startsWith('/graphiql')) route.config = { ...route.config, permission: 'public' };
      // Not REST resources: documented in docs/graphql.md rather than the OpenAPI document.
      route.schema = { ...route.schema, hide: true };
    });

    const gate = new Gate(ctx);
    await app.register(mercurius, {
      schema: SCHEMA,
      resolvers: {
        ...scalarResolvers,
        ...queryResolvers(ctx, gate),
        Mutation: mutationResolvers(ctx, gate),
        Subscription: subscriptionResolvers(ctx, gate),
      },
      path: '/graphql',
      graphiql: process.env.NODE_ENV !== 'production',
      // On the route itself, not set in onRoute: the access layer reads `audit` when the route is added, before this plugin's hook runs.
      // Resolvers decide and audit per item, so the door only verifies presented credentials.
      additionalRouteOptions: { config: { permission: 'per-item', audit: false } },
      context: (request) => ({ principal: request.principal, request }),
      errorFormatter: formatErrors(logger),
      // The limits need the variables (a `first` given by one), which mercurius only passes to uncached validation.
      cache: false,
      validationRules: ({ variables }) => [limitsRule(variables), noSubscriptionOverHttp],
      graphql: { parseOptions: { maxTokens: MAX_TOKENS } },
      subscription: {
        ...subscriptionConnections(ctx, gate, logger),
        keepAlive: KEEP_ALIVE_MS,
      },
    });
    app.graphql.addHook('preSubscriptionExecution', async (schema, document) => validateSubscription(schema, document));
  };
}
