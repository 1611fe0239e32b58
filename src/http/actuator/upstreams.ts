import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import { isEligible } from '../../core/instance.ts';
import { LIMITS } from '../../core/validation.ts';
import { effectiveCheck } from '../../health/check-spec.ts';
import type { CheckState } from '../../health/checker.ts';
import { instanceKey } from '../../core/keys.ts';
import type { UpstreamView } from '../../proxy/proxy.ts';
import type { AppContext } from '../context.ts';
import { stateView } from '../views.ts';

const UpstreamsQuery = Type.Object(
  { serviceName: Type.Optional(Type.String({ maxLength: LIMITS.nameLength })) },
  { additionalProperties: false },
);

const UpstreamInstance = Type.Object({
  nodeName: Type.String(),
  address: Type.String(),
  status: Type.String(),
  statusReason: Type.String(),
  statusChangedAt: Type.String({ format: 'date-time' }),
  health: Type.String(),
  healthReason: Type.String(),
  healthChangedAt: Type.String({ format: 'date-time' }),
  eligible: Type.Boolean({ description: 'picked by discover and the proxy on this replica' }),
  ejected: Type.Boolean({ description: "out of this replica's picks by outlier detection" }),
  check: Type.Union([Type.Ref('HealthCheck'), Type.Null()], { description: 'the check the leader runs: its own, or the global one' }),
  probe: Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()], {
    description: "the leader's probe state (null on other replicas, or without a check)",
  }),
  proxy: Type.Object({}, { additionalProperties: true, description: "this replica's proxy state: in flight, latency, breaker, outlier" }),
});

const UpstreamsView = Type.Object({
  checks: Type.Object(
    {
      enabled: Type.Boolean({ description: 'MAXINE_ACTIVE_HEALTH_CHECKS_ENABLED: every instance is checked' }),
      leading: Type.Boolean({ description: 'this replica leads and runs the probes' }),
      leaderInstanceId: Type.Union([Type.String(), Type.Null()]),
    },
    { additionalProperties: true },
  ),
  proxy: Type.Object({}, { additionalProperties: true }),
  unhealthyNodes: Type.Integer({ description: 'instances whose health is critical (the original field)' }),
  services: Type.Array(Type.Object({ name: Type.String(), instances: Type.Array(UpstreamInstance) })),
});

/** The original's /api/actuator/upstreams: every instance's check state, plus the proxy's view of it. */
export function upstreamsRoute(ctx: AppContext): FastifyPluginAsync {
  return async (app) => {
    app.get(
      '/upstreams',
      {
        config: { permission: 'ops:read' },
        schema: {
          tags: ['actuator'],
          summary: 'Health check and proxy state of every instance',
          description:
            "Probe state comes from the leader's checker (other replicas show null and name the leader); proxy state (in-flight, latency, breaker, ejection) is this replica's own.",
          querystring: UpstreamsQuery,
          response: { 200: UpstreamsView, 400: Type.Ref('Error') },
        },
      },
      async (request) => {
        const { serviceName } = request.query as Static<typeof UpstreamsQuery>;
        const { registry, checker, proxy, checkDefaults } = ctx;
        const probes = new Map<string, CheckState>();
        for (const state of checker.view(serviceName)) probes.set(instanceKey(state.service, state.id), state);
        const proxied = new Map<string, UpstreamView>();
        for (const view of proxy.upstreams(serviceName)) proxied.set(instanceKey(view.service, view.id), view);
        const catalog = registry.catalog;
        const selected = serviceName === undefined ? [...catalog.allServices()] : [catalog.service(serviceName)].filter((s) => s !== undefined);
        let unhealthyNodes = 0;
        const services = selected
          .map((service) => ({
            name: service.name,
            instances: [...service.entries.values()].map(({ instance, ejected }) => {
              if (instance.health === 'critical') unhealthyNodes++;
              const key = instanceKey(instance.service, instance.id);
              const { service: _s, id: _i, ...probe } = probes.get(key) ?? { service: '', id: '' };
              const { service: _ps, id: _pi, address: _pa, ...proxyState } = proxied.get(key) ?? { service: '', id: '', address: '' };
              return {
                nodeName: instance.id,
                address: instance.address,
                ...stateView(instance),
                eligible: isEligible(instance) && !ejected,
                ejected,
                check: effectiveCheck(instance, checkDefaults),
                probe: probes.has(key) ? probe : null,
                proxy: proxyState,
              };
            }),
          }))
          .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
        const leadership = registry.leadership();
        return {
          checks: { enabled: checkDefaults.enabled, leaderInstanceId: leadership.leaderId, ...checker.stats() },
          proxy: proxy.stats(),
          unhealthyNodes,
          services,
        };
      },
    );
  };
}
