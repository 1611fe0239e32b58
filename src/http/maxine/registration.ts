import { Type, type Static } from 'typebox';
import { LIMITS, checkHost, checkInstanceId, checkMetadata, checkPath, checkServiceName, checkTags, checkVersion, checkZone, normalisePath, type FieldProblem } from '../../core/validation.ts';
import type { Scheme } from '../../core/instance.ts';
import { isForbiddenHost } from '../../core/addresses.ts';
import { resolveCheck, type CheckDefaults } from '../../health/check-spec.ts';
import type { Registration } from '../../registry/registry.ts';
import { ApiError } from '../errors.ts';

/** An instance's own active check; every field but type defaults from the MAXINE_ACTIVE_HEALTH_CHECK_* settings. */
export const CheckBody = Type.Object(
  {
    type: Type.Union([Type.Literal('http'), Type.Literal('tcp')]),
    path: Type.Optional(Type.String({ maxLength: LIMITS.pathLength, description: "HTTP: appended to the instance's address; default healthCheckPath, then the global path" })),
    expectedStatus: Type.Optional(Type.String({ maxLength: 7, description: 'HTTP: a status or range passing the check, e.g. "200-399" (the default) or "204"' })),
    bodyMatch: Type.Optional(Type.String({ maxLength: 256, description: 'HTTP: text the response body must contain' })),
    intervalMs: Type.Optional(Type.Integer()),
    timeoutMs: Type.Optional(Type.Integer()),
    rise: Type.Optional(Type.Integer({ description: 'consecutive passing probes that bring a critical instance back' })),
    fall: Type.Optional(Type.Integer({ description: 'consecutive failing probes that make it critical' })),
    jitterMs: Type.Optional(Type.Integer()),
    deregisterCriticalAfterMs: Type.Optional(Type.Integer({ description: 'deregister after this long critical; 0 never' })),
  },
  { additionalProperties: false, description: 'Opts this instance in to active checks, whatever the global setting.' },
);

/** What registration needs from the configuration. */
export interface RegistrationRules {
  readonly defaultTtlSec: number;
  readonly checkDefaults: CheckDefaults;
  /** MAXINE_ALLOW_LINK_LOCAL_INSTANCES. */
  readonly allowLinkLocal: boolean;
}

/** The refusal every surface gives a link-local or metadata host. */
export function forbiddenHostProblem(host: string, field: string, allowLinkLocal: boolean): FieldProblem | undefined {
  if (allowLinkLocal || !isForbiddenHost(host)) return undefined;
  return { field, problem: 'link-local and cloud-metadata addresses are refused (MAXINE_ALLOW_LINK_LOCAL_INSTANCES allows them)' };
}

export const RegisterBody = Type.Object(
  {
    hostName: Type.String({ minLength: 1, maxLength: 300, description: 'IP or host name; an http:// or https:// prefix sets the scheme' }),
    nodeName: Type.String({ minLength: 1, maxLength: LIMITS.nameLength, description: 'instance id, unique within the service' }),
    serviceName: Type.String({ minLength: 1, maxLength: LIMITS.nameLength }),
    port: Type.Optional(
      Type.Union([Type.Integer({ minimum: 1, maximum: 65535 }), Type.String({ pattern: '^[0-9]{0,5}$' })], {
        description: 'omitted or "" for an address without a port; digit strings are accepted as the original did',
      }),
    ),
    ssl: Type.Optional(Type.Boolean()),
    timeOut: Type.Optional(
      Type.Integer({ minimum: 0, maximum: LIMITS.maxTtlSec, description: 'lease TTL in seconds; 0 or omitted uses heartBeatTimeout' }),
    ),
    weight: Type.Optional(Type.Integer({ minimum: 1, maximum: LIMITS.maxWeight })),
    path: Type.Optional(Type.String({ maxLength: LIMITS.pathLength })),
    healthCheckPath: Type.Optional(Type.String({ maxLength: LIMITS.pathLength })),
    tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: LIMITS.tagLength }), { maxItems: LIMITS.tags })),
    version: Type.Optional(Type.String({ maxLength: LIMITS.versionLength })),
    zone: Type.Optional(Type.String({ maxLength: LIMITS.zoneLength })),
    metadata: Type.Optional(Type.Record(Type.String(), Type.String(), { maxProperties: LIMITS.metadataEntries })),
    status: Type.Optional(
      Type.Union([Type.Literal('up'), Type.Literal('starting'), Type.Literal('draining'), Type.Literal('maintenance')], {
        description: 'admin status; when omitted a new instance is up and an existing one keeps its status',
      }),
    ),
    check: Type.Optional(CheckBody),
  },
  { $id: 'RegisterRequest' },
);
export type RegisterBody = Static<typeof RegisterBody>;

/** Turns a validated-by-schema body into a Registration, or a 400 naming every bad field. */
export function registrationSpec(body: RegisterBody, rules: RegistrationRules): Registration {
  let host = body.hostName;
  let scheme: Scheme = body.ssl === true ? 'https' : 'http';
  const prefixed = /^(https?):\/\//i.exec(host);
  if (prefixed) {
    scheme = prefixed[1]!.toLowerCase() as Scheme;
    host = host.slice(prefixed[0].length);
  }
  const port = typeof body.port === 'string' ? (body.port === '' ? 0 : Number(body.port)) : (body.port ?? 0);
  const problems: FieldProblem[] = [];
  const add = (problem: FieldProblem | undefined) => {
    if (problem) problems.push(problem);
  };
  add(checkServiceName(body.serviceName));
  add(checkInstanceId(body.nodeName));
  add(checkHost(host));
  add(forbiddenHostProblem(host, 'hostName', rules.allowLinkLocal));
  if (typeof body.port === 'string' && body.port !== '' && (port < 1 || port > 65535)) {
    add({ field: 'port', problem: 'must be from 1 to 65535' });
  }
  add(checkPath(body.path ?? '', 'path'));
  add(checkPath(body.healthCheckPath ?? '', 'healthCheckPath'));
  add(checkTags(body.tags ?? []));
  add(checkVersion(body.version ?? ''));
  add(checkZone(body.zone ?? ''));
  add(checkMetadata(body.metadata ?? {}));
  const healthCheckPath = body.healthCheckPath ? normalisePath(body.healthCheckPath) : '';
  let check = null;
  if (body.check !== undefined) {
    const resolved = resolveCheck(body.check, healthCheckPath, rules.checkDefaults);
    if ('problems' in resolved) problems.push(...resolved.problems);
    else check = resolved.check;
  }
  if (problems.length > 0) throw ApiError.validation(problems);
  const timeOut = body.timeOut || rules.defaultTtlSec;
  return {
    service: body.serviceName,
    id: body.nodeName,
    scheme,
    host,
    port,
    path: normalisePath(body.path ?? ''),
    weight: body.weight ?? 1,
    tags: [...new Set(body.tags ?? [])],
    version: body.version ?? '',
    zone: body.zone ?? '',
    metadata: Object.fromEntries(Object.entries(body.metadata ?? {})),
    healthCheckPath,
    status: body.status,
    ttlMs: timeOut * 1000,
    check,
  };
}
