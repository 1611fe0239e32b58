import { Type, type Static } from 'typebox';
import { LIMITS, checkHost, checkInstanceId, checkMetadata, checkPath, checkServiceName, checkTags, checkVersion, checkZone, normalisePath, type FieldProblem } from '../../core/validation.ts';
import type { InstanceSpec, Scheme } from '../../core/instance.ts';
import { ApiError } from '../errors.ts';

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
        description: 'admin status; up when omitted',
      }),
    ),
  },
  { $id: 'RegisterRequest' },
);
export type RegisterBody = Static<typeof RegisterBody>;

/** Turns a validated-by-schema body into an InstanceSpec, or a 400 naming every bad field. */
export function registrationSpec(body: RegisterBody, defaultTtlSec: number): InstanceSpec {
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
  if (typeof body.port === 'string' && body.port !== '' && (port < 1 || port > 65535)) {
    add({ field: 'port', problem: 'must be from 1 to 65535' });
  }
  add(checkPath(body.path ?? '', 'path'));
  add(checkPath(body.healthCheckPath ?? '', 'healthCheckPath'));
  add(checkTags(body.tags ?? []));
  add(checkVersion(body.version ?? ''));
  add(checkZone(body.zone ?? ''));
  add(checkMetadata(body.metadata ?? {}));
  if (problems.length > 0) throw ApiError.validation(problems);
  const timeOut = body.timeOut || defaultTtlSec;
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
    healthCheckPath: body.healthCheckPath ? normalisePath(body.healthCheckPath) : '',
    status: body.status ?? 'up',
    ttlMs: timeOut * 1000,
  };
}
