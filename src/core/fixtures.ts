/**
 * Instances for tests and benchmarks: every field filled with a plain value,
 * overridable one by one, frozen like the catalog's own.
 */
import { buildAddress, type Instance, type InstanceSpec } from './instance.ts';

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
    ...overrides,
  };
}

export function testInstance(service: string, id: string, overrides: Partial<Instance> = {}): Instance {
  const fields = {
    ...testSpec(service, id),
    health: 'passing' as const,
    healthReason: '',
    healthChangedAt: 1,
    registeredAt: 1,
    createRevision: 0,
    modifyRevision: 0,
    ...overrides,
  };
  return Object.freeze({ ...fields, address: buildAddress(fields.scheme, fields.host, fields.port, fields.path) });
}
