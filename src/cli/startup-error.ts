import type { MaxineConfig } from '../config/index.ts';

// Reasons for failures of listen() (and of resolving the host it needs),
// which are the usual startup failures and deserve a plain-words message.
const LISTEN_REASONS: ReadonlyMap<string, string> = new Map([
  ['EADDRINUSE', 'address already in use'],
  ['EACCES', 'permission denied (ports below 1024 need privileges)'],
  ['EADDRNOTAVAIL', 'address not available on this machine'],
  ['ENOTFOUND', 'host name not found'],
]);

/** One line saying why the server did not start. */
export function describeStartupError(err: unknown, config: Pick<MaxineConfig, 'host' | 'port'>): string {
  const { code, syscall } = (err ?? {}) as NodeJS.ErrnoException;
  const reason = code === undefined ? undefined : LISTEN_REASONS.get(code);
  if (reason !== undefined && (syscall === 'listen' || syscall === 'getaddrinfo')) {
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    return `cannot listen on ${host}:${config.port}: ${reason}`;
  }
  const message = err instanceof Error ? err.message : String(err);
  return `failed to start: ${message.split('\n')[0]}`;
}
