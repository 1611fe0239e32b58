import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import type { Alert } from '../../alerts/alert-book.ts';
import { DELIVERY_STATES, type DeliveryStatus } from '../../alerts/delivery.ts';
import { ALERT_RULES, SEVERITIES } from '../../alerts/rules.ts';
import type { AppContext } from '../context.ts';

const STATES = ['pending', 'firing', 'resolved'] as const;
const STATE_FILTERS = [...STATES, 'all'] as const;

const Query = Type.Object(
  {
    // A pattern, not a union of literals: one clear message for a bad value instead of one per literal.
    state: Type.Optional(Type.String({ pattern: `^(${STATE_FILTERS.join('|')})$`, description: `only alerts in this state: ${STATE_FILTERS.join(', ')} (default: all)` })),
    limit: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,5}$', description: 'at most this many alerts' })),
  },
  { additionalProperties: false },
);

const NullableString = Type.Union([Type.String(), Type.Null()]);
const Time = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);

const Delivery = Type.Object({
  webhook: Type.String(),
  state: Type.Union(DELIVERY_STATES.map((s) => Type.Literal(s))),
  attempts: Type.Integer(),
  statusCode: Type.Union([Type.Integer(), Type.Null()], { description: "the last response's status; null when none came" }),
  error: NullableString,
  lastAttemptAt: Time,
  nextAttemptAt: Time,
});

const AlertView = Type.Object({
  type: Type.Union(ALERT_RULES.map((r) => Type.Literal(r)), { description: 'the rule (named `type` as in the original)' }),
  fingerprint: Type.String({ description: 'the same on every replica and across restarts' }),
  severity: Type.Union(SEVERITIES.map((s) => Type.Literal(s))),
  scope: Type.Union([Type.Literal('cluster'), Type.Literal('replica')]),
  state: Type.Union(STATES.map((s) => Type.Literal(s))),
  service: NullableString,
  instanceId: NullableString,
  replica: NullableString,
  summary: Type.String(),
  details: Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()])),
  pendingSince: Type.String({ format: 'date-time' }),
  firedAt: Time,
  resolvedAt: Time,
  notifications: Type.Array(
    Type.Object({
      status: Type.Union([Type.Literal('firing'), Type.Literal('resolved')]),
      sentBy: Type.String({ description: 'the replica that sent it' }),
      sentAt: Type.String({ format: 'date-time' }),
      deliveries: Type.Array(Delivery),
    }),
  ),
});

const WebhookView = Type.Object({
  name: Type.String(),
  target: Type.String({ description: "the URL's origin only: paths of webhook URLs often hold a token" }),
  severities: Type.Array(Type.String()),
  services: Type.Array(Type.String()),
  rules: Type.Array(Type.String()),
  signed: Type.Boolean(),
  delivered: Type.Integer(),
  failed: Type.Integer(),
});

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

function deliveryView(d: DeliveryStatus) {
  return { ...d, lastAttemptAt: iso(d.lastAttemptAt), nextAttemptAt: iso(d.nextAttemptAt) };
}

function stateOf(alert: Alert): (typeof STATES)[number] {
  return alert.resolvedAt !== null ? 'resolved' : alert.firedAt !== null ? 'firing' : 'pending';
}

/** The original's /api/actuator/alerts: this replica's alerts (active, then recently resolved) and where they go. */
export function alertsRoute(ctx: AppContext): FastifyPluginAsync {
  const { alerts } = ctx;
  return async (app) => {
    app.get(
      '/alerts',
      {
        config: { permission: 'ops:read' },
        schema: {
          tags: ['actuator'],
          summary: 'Alerts pending, firing and recently resolved, with their notifications, and the webhooks they are routed to',
          description:
            "Cluster alerts are evaluated alike on every replica and notified by the leader; while one fires, a follower shows the leader's record of its notification. Replica alerts are this replica's own.",
          querystring: Query,
          response: {
            200: Type.Object({
              alerts: Type.Array(AlertView),
              notifiesClusterAlerts: Type.Boolean({ description: 'whether this replica sends the cluster alerts (it leads)' }),
              webhooks: Type.Array(WebhookView),
            }),
            400: Type.Ref('Error'),
            401: Type.Ref('Error'),
            403: Type.Ref('Error'),
          },
        },
      },
      async (request) => {
        const { state = 'all', limit } = request.query as Static<typeof Query>;
        const listed = alerts
          .alerts()
          .filter((alert) => state === 'all' || stateOf(alert) === state)
          .slice(0, limit === undefined ? undefined : Number(limit));
        return {
          alerts: listed.map((alert) => ({
            type: alert.rule,
            fingerprint: alert.fingerprint,
            severity: alert.severity,
            scope: alert.scope,
            state: stateOf(alert),
            service: alert.service,
            instanceId: alert.instanceId,
            replica: alert.replica,
            summary: alert.summary,
            details: alert.details,
            pendingSince: new Date(alert.pendingSince).toISOString(),
            firedAt: iso(alert.firedAt),
            resolvedAt: iso(alert.resolvedAt),
            notifications: alerts.notificationsOf(alert).map((n) => ({ status: n.status, sentBy: n.sentBy, sentAt: new Date(n.sentAt).toISOString(), deliveries: n.deliveries.map(deliveryView) })),
          })),
          notifiesClusterAlerts: alerts.notifiesClusterAlerts,
          webhooks: alerts.webhooks.map((webhook) => ({
            name: webhook.name,
            target: webhook.target,
            severities: [...webhook.spec.severities],
            services: [...webhook.spec.services],
            rules: [...webhook.spec.rules],
            signed: webhook.signed,
            ...alerts.deliveryCounts(webhook.name),
          })),
        };
      },
    );
  };
}
