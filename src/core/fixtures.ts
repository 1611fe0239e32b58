/**
 * Instances for tests and benchmarks: every field filled with a plain value,
 * overridable one by one, frozen like the catalog's own.
 */
import { Catalog } from './catalog.ts';
import { buildAddress, instanceOf, type Instance, type InstanceSpec } from './instance.ts';

export function testSpec(service: string, id: string, overrides: Partial<InstanceSpec> = {}): InstanceSpec {
  return {
    service,
    id,
    scheme: 'http',
    host: '127.0.0.1',
    port: 8080,
    path: '',
    weight: 1,
    tags: [],
    version: '',
    zone: '',
    metadata: {},
    healthCheckPath: '',
    status: 'up',
    ttlMs: 30_000,
    check: null,
    ...overrides,
  };
}

export function testInstance(service: string, id: string, overrides: Partial<Instance> = {}): Instance {
  const spec = testSpec(service, id, overrides);
  return instanceOf(spec, {
    statusReason: '',
    statusChangedAt: 1,
    health: 'passing',
    healthReason: '',
    healthChangedAt: 1,
    registeredAt: 1,
    createRevision: 0,
    modifyRevision: 0,
    ...overrides,
    address: buildAddress(spec.scheme, spec.host, spec.port, spec.path),
  });
}

/** A catalog holding `instances` of service `service`: [id, port, overrides]. */
export function catalogOf(service: string, instances: readonly (readonly [string, number, Partial<Instance>?])[]): Catalog {
  const catalog = new Catalog(100);
  let revision = 0;
  for (const [id, port, overrides] of instances) {
    revision++;
    const instance = testInstance(service, id, { host: '127.0.0.1', port, createRevision: revision, modifyRevision: revision, ...overrides });
    catalog.apply({ kind: 'upsert', revision, instance, renewedAt: Date.now() });
  }
  return catalog;
}
