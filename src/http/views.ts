import { Buffer } from 'node:buffer';
import { Type } from 'typebox';
import type { CatalogEntry, ServiceView } from '../core/catalog.ts';
import type { Instance } from '../core/instance.ts';

/** An instance as the APIs show it; lease times come from the catalog entry. */
export const InstanceBody = Type.Object(
  {
    serviceName: Type.String(),
    nodeName: Type.String(),
    address: Type.String({ description: 'scheme://host[:port][path]' }),
    scheme: Type.Union([Type.Literal('http'), Type.Literal('https')]),
    hostName: Type.String(),
    port: Type.Integer({ description: '0 when the address has no port' }),
    path: Type.String(),
    weight: Type.Integer(),
    tags: Type.Array(Type.String()),
    version: Type.String(),
    zone: Type.String(),
    metadata: Type.Record(Type.String(), Type.String()),
    healthCheckPath: Type.String(),
    status: Type.String({ description: 'admin status: up, starting, draining or maintenance' }),
    statusReason: Type.String(),
    statusChangedAt: Type.String({ format: 'date-time' }),
    health: Type.String({ description: 'passing, warning or critical' }),
    healthReason: Type.String(),
    healthChangedAt: Type.String({ format: 'date-time' }),
    check: Type.Union([Type.Ref('HealthCheck'), Type.Null()], { description: "the instance's own active check; null if it registered none" }),
    timeOut: Type.Integer({ description: 'lease TTL in seconds' }),
    registeredAt: Type.String({ format: 'date-time' }),
    createRevision: Type.Integer(),
    modifyRevision: Type.Integer(),
  },
  { $id: 'Instance' },
);

export const HealthCheckBody = Type.Object(
  {
    type: Type.String({ description: 'http or tcp' }),
    path: Type.String(),
    statusMin: Type.Integer(),
    statusMax: Type.Integer(),
    bodyMatch: Type.String(),
    intervalMs: Type.Integer(),
    timeoutMs: Type.Integer(),
    rise: Type.Integer(),
    fall: Type.Integer(),
    jitterMs: Type.Integer(),
    deregisterCriticalAfterMs: Type.Integer(),
  },
  { $id: 'HealthCheck' },
);

export const LeasedInstanceBody = Type.Intersect(
  [
    Type.Ref('Instance'),
    Type.Object({
      renewedAt: Type.String({ format: 'date-time' }),
      expiresAt: Type.String({ format: 'date-time' }),
      ejected: Type.Boolean({ description: "ejected from this replica's picks by outlier detection" }),
    }),
  ],
  { $id: 'LeasedInstance' },
);

export function instanceView(instance: Instance) {
  return {
    serviceName: instance.service,
    nodeName: instance.id,
    address: instance.address,
    scheme: instance.scheme,
    hostName: instance.host,
    port: instance.port,
    path: instance.path,
    weight: instance.weight,
    tags: instance.tags,
    version: instance.version,
    zone: instance.zone,
    metadata: instance.metadata,
    healthCheckPath: instance.healthCheckPath,
    ...stateView(instance),
    check: instance.check,
    timeOut: Math.round(instance.ttlMs / 1000),
    registeredAt: new Date(instance.registeredAt).toISOString(),
    createRevision: instance.createRevision,
    modifyRevision: instance.modifyRevision,
  };
}

/** Admin status and health, each with its reason and the time it last changed. */
export function stateView(instance: Instance) {
  return {
    status: instance.status,
    statusReason: instance.statusReason,
    statusChangedAt: new Date(instance.statusChangedAt).toISOString(),
    health: instance.health,
    healthReason: instance.healthReason,
    healthChangedAt: new Date(instance.healthChangedAt).toISOString(),
  };
}

export function leasedInstanceView(entry: CatalogEntry) {
  return {
    ...instanceView(entry.instance),
    renewedAt: new Date(entry.renewedAt).toISOString(),
    expiresAt: new Date(entry.deadline).toISOString(),
    ejected: entry.ejected,
  };
}

/**
 * `build`, made once per instance version: instances are immutable, so an
 * answer built from one is reused for every request until the instance
 * changes (a new version is a new object; the old one's answer goes with it).
 */
export function oncePerInstance<Answer>(build: (instance: Instance) => Answer): (instance: Instance) => Answer {
  const built = new WeakMap<Instance, Answer>();
  return (instance) => {
    let answer = built.get(instance);
    if (answer === undefined) {
      answer = build(instance);
      built.set(instance, answer);
    }
    return answer;
  };
}

/** An instance as JSON, for the event frames that embed it. */
export const instanceJson = oncePerInstance((instance) => JSON.stringify(instanceView(instance)));

/**
 * The body a discover answers with, as bytes: node:http writes a Buffer
 * body as it is, where a string body is first joined to the header block
 * and the whole encoded again on every response.
 */
export const instanceJsonBytes = oncePerInstance((instance) => Buffer.from(JSON.stringify(instanceView(instance))));

/**
 * The original Maxine's /servers shape: one entry per service with its weight
 * expanded into virtual nodes `<nodeName>-0 .. -(weight-1)`. `offset` was the
 * original's single round-robin counter; Maxine keeps one per filtered view,
 * so the field is always 0 and only kept for shape compatibility.
 */
export function legacyServersView(services: Iterable<ServiceView>) {
  const out: Record<string, unknown> = Object.create(null);
  for (const service of services) {
    const nodes: Record<string, unknown> = Object.create(null);
    for (const { instance } of service.entries.values()) {
      for (let i = 0; i < instance.weight; i++) {
        const nodeName = `${instance.id}-${i}`;
        nodes[nodeName] = {
          nodeName,
          parentNode: instance.id,
          address: instance.address,
          timeOut: Math.round(instance.ttlMs / 1000),
          registeredAt: instance.registeredAt,
          healthCheckPath: instance.healthCheckPath,
        };
      }
    }
    out[service.name] = { offset: 0, nodes };
  }
  return out;
}

export function servicesV2View(services: Iterable<ServiceView>, revision: number) {
  const list = [];
  for (const service of services) {
    list.push({
      name: service.name,
      revision: service.revision,
      eligible: service.eligible().length,
      instances: [...service.entries.values()].map(leasedInstanceView),
    });
  }
  list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { revision, services: list };
}
