/**
 * The registrations and requests the benchmarks load Maxine with, shared by
 * the load scenarios (scenarios.ts, tracing-scenarios.ts,
 * upstream-scenarios.ts) and the instruction counts (instructions.ts), so
 * that they all measure the same requests.
 */
import type { Registration, RequestShape } from './servers.ts';

/** Long enough that nothing expires during a run. */
const TTL_SEC = 3600;

/** Instance `node` of `service`, on its own address and port. */
export function instance(service: string, node: number): Registration {
  return {
    hostName: `10.0.${Math.floor(node / 256)}.${node % 256}`,
    nodeName: `node-${node}`,
    serviceName: service,
    port: 8000 + node,
    timeOut: TTL_SEC,
    weight: 1,
  };
}

/** Discover of `service`, answered as JSON. */
export function discoverPath(service: string): string {
  return `/api/maxine/serviceops/discover?serviceName=${service}&format=json`;
}

/** The heartbeat of instance `node` of `service` (as registered by `instance`). */
export function heartbeatRequest(service: string, node: number): RequestShape {
  return {
    method: 'POST',
    path: '/api/maxine/serviceops/heartbeat',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ serviceName: service, nodeName: `node-${node}` }),
  };
}
