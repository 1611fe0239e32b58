import { Type } from 'typebox';
import type { InstanceKey } from '../../core/instance.ts';
import { checkInstanceId, checkServiceName, LIMITS } from '../../core/validation.ts';
import { ApiError } from '../errors.ts';

/** `:serviceName/:nodeName` in a route path. */
export const InstanceParams = Type.Object({
  serviceName: Type.String({ minLength: 1, maxLength: LIMITS.nameLength }),
  nodeName: Type.String({ minLength: 1, maxLength: LIMITS.nameLength }),
});

/** An instance named in a JSON body (heartbeat, deregister). */
export const InstanceRef = Type.Object(
  {
    serviceName: Type.String({ minLength: 1, maxLength: LIMITS.nameLength }),
    nodeName: Type.String({ minLength: 1, maxLength: LIMITS.nameLength }),
  },
  { $id: 'InstanceRef' },
);

/** A heartbeat's answer: the instance and its lease in seconds. */
export function heartbeatAnswer(key: InstanceKey, ttlMs: number): { serviceName: string; nodeName: string; timeOut: number } {
  return { serviceName: key.service, nodeName: key.id, timeOut: Math.round(ttlMs / 1000) };
}

/** What a client is told about an instance that is not registered (REST and GraphQL alike). */
export function unknownInstanceMessage(serviceName: string, nodeName: string): string {
  return `No instance "${nodeName}" is registered for service "${serviceName}".`;
}

/** Names that could never have been registered are a client error, not an unknown instance. */
export function instanceKey(serviceName: string, nodeName: string): InstanceKey {
  const badService = checkServiceName(serviceName);
  const badNode = checkInstanceId(nodeName);
  // Every heartbeat comes through here: nothing is built unless a name is refused.
  if (badService !== undefined || badNode !== undefined) throw ApiError.validation([badService, badNode].filter((p) => p !== undefined));
  return { service: serviceName, id: nodeName };
}
