import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import { checkServiceName, LIMITS } from '../../core/validation.ts';
import { parsePolicy } from '../../proxy/policy.ts';
import { policyKvKey } from '../../proxy/policy-book.ts';
import { serviceIn } from '../permissions.ts';
import type { AppContext } from '../context.ts';
import { ApiError } from '../errors.ts';

const ms = (description: string) => Type.Optional(Type.Integer({ description }));

/** A service's proxy policy; every field is optional and falls back to the MAXINE_PROXY_* setting. Ranges are checked by parsePolicy. */
const PolicyFields = {
  connectTimeoutMs: ms('time to connect to an instance'),
  requestTimeoutMs: ms("time to wait for the instance's response headers, and between body chunks"),
  retries: Type.Optional(Type.Integer({ description: 'extra attempts on another instance (0-5)' })),
  retryBackoffMs: ms('base of the exponential, jittered backoff'),
  retryBudgetPercent: Type.Optional(Type.Integer({ description: "retries as a share of the service's requests over 10 s" })),
  minRetriesPerSecond: Type.Optional(Type.Integer()),
  breakerFailures: Type.Optional(Type.Integer({ description: "consecutive failures that open an instance's breaker; 0 none" })),
  breakerOpenMs: ms('how long an open breaker refuses traffic before one trial'),
  maxBodyBytes: Type.Optional(Type.Integer({ description: 'largest request body forwarded (413 above)' })),
  passAuthorization: Type.Optional(Type.Boolean({ description: "forward the client's Authorization header" })),
  strategy: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()], { description: 'null: the runtime serverSelectionStrategy' })),
  outlierConsecutiveFailures: Type.Optional(Type.Integer({ description: 'consecutive connect failures or 5xx that eject; 0 off' })),
  outlierBaseEjectionMs: ms('first ejection time; grows by one base per repeat'),
  outlierMaxEjectionMs: ms('longest ejection'),
  outlierMaxEjectionPercent: Type.Optional(Type.Integer({ description: "most of a service's instances ejected at once" })),
};

const PolicyBody = Type.Object(PolicyFields, { additionalProperties: false });

const PolicyView = Type.Object({
  serviceName: Type.String(),
  stored: Type.Union([Type.Object(PolicyFields), Type.Null()], { description: 'what was set for this service; null: only defaults' }),
  effective: Type.Object(PolicyFields, { description: 'what the proxy follows: stored fields over the defaults' }),
});

const Params = Type.Object({ serviceName: Type.String({ minLength: 1, maxLength: LIMITS.nameLength }) });

const errors = { 400: Type.Ref('Error'), 503: Type.Ref('Error') };

/** What the store holds; a value that is not JSON (a hand edit) shows as none, as the proxy then follows the defaults. */
function storedPolicy(raw: string | undefined): unknown {
  if (raw === undefined) return null;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return null;
  }
}

/** Per-service proxy policies, kept in the store so every replica forwards alike. */
export function policyRoutes(ctx: AppContext): FastifyPluginAsync {
  const { proxy, registry } = ctx;
  const serviceOf = (params: unknown): string => {
    const { serviceName } = params as Static<typeof Params>;
    const bad = checkServiceName(serviceName);
    if (bad) throw ApiError.validation([bad]);
    return serviceName;
  };
  const view = (serviceName: string) => {
    return { serviceName, stored: storedPolicy(registry.catalog.kvGet(policyKvKey(serviceName))), effective: proxy.policies.get(serviceName) };
  };
  return async (app) => {
    app.get(
      '/policies/:serviceName',
      {
        config: { permission: 'config:read', service: serviceIn.params() },
        schema: { tags: ['maxine'], summary: "A service's proxy policy", params: Params, response: { 200: PolicyView, ...errors } },
      },
      async (request) => view(serviceOf(request.params)),
    );

    app.put(
      '/policies/:serviceName',
      {
        config: { permission: 'config:write', service: serviceIn.params() },
        schema: {
          tags: ['maxine'],
          summary: "Set a service's proxy policy (replaces what was set; unset fields follow the defaults)",
          params: Params,
          body: PolicyBody,
          response: { 200: PolicyView, ...errors },
        },
      },
      async (request) => {
        const serviceName = serviceOf(request.params);
        const parsed = parsePolicy(request.body, proxy.policies.defaults);
        if ('problems' in parsed) throw ApiError.validation(parsed.problems);
        // Only what was given is stored, so a field left out keeps following its default when the default changes.
        await registry.putKv(policyKvKey(serviceName), JSON.stringify(request.body));
        return view(serviceName);
      },
    );

    app.delete(
      '/policies/:serviceName',
      {
        config: { permission: 'config:write', service: serviceIn.params() },
        schema: { tags: ['maxine'], summary: "Remove a service's policy: the defaults apply", params: Params, response: { 200: PolicyView, ...errors } },
      },
      async (request) => {
        const serviceName = serviceOf(request.params);
        await registry.putKv(policyKvKey(serviceName), null);
        return view(serviceName);
      },
    );
  };
}
