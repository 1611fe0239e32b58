/**
 * One string per instance for the proxy's per-instance state and for the
 * `exclude` sets handed to `pick`. NUL cannot occur in a service name or an
 * instance id (validation.ts), so the pair is unambiguous.
 */
export function instanceKey(service: string, id: string): string {
  return `${service}\u0000${id}`;
}
