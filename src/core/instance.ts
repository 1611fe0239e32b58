/**
 * The registry's unit of data. An Instance is immutable: every visible change
 * produces a new object, so eligible sets, pickers and snapshots can share
 * references without copying. Lease timing (renewals) lives beside it in the
 * catalog entry, because renewals are frequent and not visible changes.
 */

export const ADMIN_STATUSES = ['up', 'starting', 'draining', 'maintenance'] as const;
export type AdminStatus = (typeof ADMIN_STATUSES)[number];

export const HEALTH_STATES = ['passing', 'warning', 'critical'] as const;
export type Health = (typeof HEALTH_STATES)[number];

export type Scheme = 'http' | 'https';

export const CHECK_TYPES = ['http', 'tcp'] as const;
export type CheckType = (typeof CHECK_TYPES)[number];

/**
 * An active health check, as registered with the instance and fully
 * resolved (defaults filled in at registration), so every replica that
 * becomes leader probes it the same way.
 */
export interface HealthCheck {
  readonly type: CheckType;
  /** HTTP only: the path (and query) probed on the instance's address; '' for TCP. */
  readonly path: string;
  /** HTTP only: a response status from statusMin to statusMax (inclusive) passes. */
  readonly statusMin: number;
  readonly statusMax: number;
  /** HTTP only: text the response body must contain; '' checks no body. */
  readonly bodyMatch: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Consecutive passing probes that bring a critical instance back. */
  readonly rise: number;
  /** Consecutive failing probes that make a passing instance critical. */
  readonly fall: number;
  /** Each probe waits a random 0..jitterMs beyond its interval, so checks registered together spread out. */
  readonly jitterMs: number;
  /** Deregister the instance once it has been critical this long; 0 never (Consul's DeregisterCriticalServiceAfter). */
  readonly deregisterCriticalAfterMs: number;
}

/** What a client supplies when it registers; everything else is derived. */
export interface InstanceSpec {
  readonly service: string;
  readonly id: string;
  readonly scheme: Scheme;
  readonly host: string;
  /** 0 means "no port in the address" (the original Maxine allowed it). */
  readonly port: number;
  /** Path prefix appended to the address, '' or starting with '/'. */
  readonly path: string;
  readonly weight: number;
  readonly tags: readonly string[];
  readonly version: string;
  readonly zone: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly healthCheckPath: string;
  readonly status: AdminStatus;
  readonly ttlMs: number;
  /** The instance's own active check; null when it registered none (the global check may still apply). */
  readonly check: HealthCheck | null;
}

export interface Instance extends InstanceSpec {
  /** Why the admin status is what it is ('' when set at registration without one). */
  readonly statusReason: string;
  /** Epoch ms of the last admin status change. */
  readonly statusChangedAt: number;
  readonly health: Health;
  readonly healthReason: string;
  readonly healthChangedAt: number;
  /** Epoch ms of the first registration of this id (kept across upserts). */
  readonly registeredAt: number;
  readonly createRevision: number;
  readonly modifyRevision: number;
  /** `scheme://host[:port][path]`, as the original Maxine built it. */
  readonly address: string;
}

/** Identifies an instance across the whole catalog. */
export interface InstanceKey {
  readonly service: string;
  readonly id: string;
}

export function buildAddress(scheme: Scheme, host: string, port: number, path: string): string {
  const bracketed = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const portPart = port > 0 ? `:${port}` : '';
  return `${scheme}://${bracketed}${portPart}${path}`;
}

/** An instance's fields beyond its spec: states, times, revisions and address. */
export type InstanceState = Omit<Instance, keyof InstanceSpec>;

/**
 * A frozen Instance with exactly the Instance fields, always in this order,
 * so that every instance shares one hidden class; tags, metadata and check
 * are reused when already frozen, otherwise copied and frozen (the metadata
 * copy defines own data properties, so a key such as "__proto__" stays an
 * ordinary key). Instances are built here, never by spreading one into an
 * object literal with more fields: V8 then made each object several times
 * larger and allocated several times more to build it (docs/performance.md,
 * "Building instances").
 */
export function instanceOf(spec: InstanceSpec, state: InstanceState): Instance {
  const { tags, metadata, check } = spec;
  return Object.freeze({
    service: spec.service,
    id: spec.id,
    scheme: spec.scheme,
    host: spec.host,
    port: spec.port,
    path: spec.path,
    weight: spec.weight,
    tags: Object.isFrozen(tags) ? tags : Object.freeze(tags.slice()),
    version: spec.version,
    zone: spec.zone,
    metadata: Object.isFrozen(metadata) ? metadata : Object.freeze({ ...metadata }),
    healthCheckPath: spec.healthCheckPath,
    status: spec.status,
    ttlMs: spec.ttlMs,
    check: check === null ? null : frozenCheck(check),
    statusReason: state.statusReason,
    statusChangedAt: state.statusChangedAt,
    health: state.health,
    healthReason: state.healthReason,
    healthChangedAt: state.healthChangedAt,
    registeredAt: state.registeredAt,
    createRevision: state.createRevision,
    modifyRevision: state.modifyRevision,
    address: state.address,
  });
}

/** The instance as a store keeps it: the same fields, stamped with the store's revisions. */
export function withRevisions(instance: Instance, createRevision: number, modifyRevision: number): Instance {
  return instanceOf(instance, {
    statusReason: instance.statusReason,
    statusChangedAt: instance.statusChangedAt,
    health: instance.health,
    healthReason: instance.healthReason,
    healthChangedAt: instance.healthChangedAt,
    registeredAt: instance.registeredAt,
    createRevision,
    modifyRevision,
    address: instance.address,
  });
}

/** A frozen copy with exactly the HealthCheck fields, in one order. */
function frozenCheck(c: HealthCheck): HealthCheck {
  if (Object.isFrozen(c)) return c;
  return Object.freeze({
    type: c.type,
    path: c.path,
    statusMin: c.statusMin,
    statusMax: c.statusMax,
    bodyMatch: c.bodyMatch,
    intervalMs: c.intervalMs,
    timeoutMs: c.timeoutMs,
    rise: c.rise,
    fall: c.fall,
    jitterMs: c.jitterMs,
    deregisterCriticalAfterMs: c.deregisterCriticalAfterMs,
  } satisfies HealthCheck);
}

/**
 * True when two specs describe the same visible instance, so that a
 * re-registration is only a lease renewal and must not bump the revision.
 */
export function sameSpec(a: InstanceSpec, b: InstanceSpec): boolean {
  return (
    a.service === b.service &&
    a.id === b.id &&
    a.scheme === b.scheme &&
    a.host === b.host &&
    a.port === b.port &&
    a.path === b.path &&
    a.weight === b.weight &&
    a.version === b.version &&
    a.zone === b.zone &&
    a.healthCheckPath === b.healthCheckPath &&
    a.status === b.status &&
    a.ttlMs === b.ttlMs &&
    sameCheck(a.check, b.check) &&
    sameList(a.tags, b.tags) &&
    sameMap(a.metadata, b.metadata)
  );
}

export function sameCheck(a: HealthCheck | null, b: HealthCheck | null): boolean {
  if (a === null || b === null) return a === b;
  return (
    a.type === b.type &&
    a.path === b.path &&
    a.statusMin === b.statusMin &&
    a.statusMax === b.statusMax &&
    a.bodyMatch === b.bodyMatch &&
    a.intervalMs === b.intervalMs &&
    a.timeoutMs === b.timeoutMs &&
    a.rise === b.rise &&
    a.fall === b.fall &&
    a.jitterMs === b.jitterMs &&
    a.deregisterCriticalAfterMs === b.deregisterCriticalAfterMs
  );
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameMap(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ak = Object.keys(a);
  if (ak.length !== Object.keys(b).length) return false;
  for (const k of ak) if (!Object.hasOwn(b, k) || a[k] !== b[k]) return false;
  return true;
}

/** Eligible for new picks: admin status up and not failing its checks. */
export function isEligible(instance: Instance): boolean {
  return instance.status === 'up' && instance.health !== 'critical';
}
