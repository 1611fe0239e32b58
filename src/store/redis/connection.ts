import { readFileSync } from 'node:fs';
import { createClient, ErrorReply } from 'redis';
import { StoreUnavailableError } from '../store.ts';
import { SCRIPTS } from './scripts.ts';

/**
 * Connections to redis. The client is node-redis (the `redis` package)
 * rather than ioredis because it is the client Redis itself maintains
 * (github.com/redis/node-redis) and recommends for new projects, it ships its
 * own TypeScript types, speaks RESP3 by default, runs Lua scripts by EVALSHA
 * and falls back to EVAL by itself when the server answers NOSCRIPT (after a
 * restart the script cache is empty), takes `rediss://` URLs for TLS, and
 * declares Node >= 20 in its engines.
 */

export interface ConnectionSettings {
  /** `redis[s]://[[user]:password@]host[:port][/db]`. */
  readonly url: string;
  /** PEM bundle of the CA that signed the server's certificate (private CAs). */
  readonly tlsCaFile?: string;
  /** The connection's name in CLIENT LIST, so operators can tell replicas apart. */
  readonly name: string;
}

export type RedisConnection = ReturnType<typeof newConnection>;

/** Between reconnection attempts: quick at first, never more than a second. */
const MAX_BACKOFF_MS = 1000;

export function backoffMs(attempt: number): number {
  return Math.min(100 * 2 ** attempt, MAX_BACKOFF_MS);
}

/**
 * A client that is not connected yet. `reconnect` lets node-redis reconnect
 * by itself (the command connection); without it the connection closes for
 * good on the first failure and its owner makes a new one (the feed
 * connection, whose blocked XREAD cannot be cancelled any other way).
 * `permanent` is asked about every failed attempt: true stops reconnecting.
 * Commands fail at once while disconnected (no offline queue): a write must
 * be refused quickly, not queued until the server returns.
 */
export function newConnection(settings: ConnectionSettings, reconnect: boolean, permanent: (error: Error) => boolean) {
  const client = createClient({
    url: settings.url,
    name: settings.name,
    scripts: SCRIPTS,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: 2000,
      ...(settings.tlsCaFile === undefined ? {} : { ca: readCa(settings.tlsCaFile) }),
      reconnectStrategy: (attempt: number, cause: Error) => (!reconnect || permanent(cause) ? cause : backoffMs(attempt)),
    },
  });
  return client;
}

function readCa(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new StoreUnavailableError(`redis store: cannot read the TLS CA file ${file}: ${(err as Error).message}`);
  }
}

/**
 * Connects within `ms`, or destroys the client and rejects. A connection
 * that never completes (a frozen server accepts TCP but never answers the
 * handshake) must not hold up open() or the feed reader.
 */
export async function connectWithin(client: RedisConnection, ms: number, lastError: () => Error | null): Promise<void> {
  try {
    await withinMs(client.connect(), ms);
  } catch (err) {
    client.destroy();
    throw lastError() ?? err;
  }
}

/** Thrown when redis gave no answer in time; the command may still run later. */
export class NoAnswerError extends Error {
  override readonly name = 'NoAnswerError';
}

/**
 * Rejects when the promise has not settled within `ms`. node-redis times out
 * only commands it has not sent yet; a command sent to a server that then
 * stops answering would wait forever.
 */
export function withinMs<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    // Judged after the event loop's next poll: after a stall (GC, CPU contention) the timer and a reply that
    // arrived in time are due together, and timers run first; the reply must win.
    timer = setTimeout(() => setImmediate(() => reject(new NoAnswerError(`no answer within ${ms} ms`))), Math.max(ms, 0));
  });
  // The abandoned command may fail later (e.g. when the client is destroyed).
  promise.catch(() => {});
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

const TRANSIENT_REPLIES = /^(LOADING|BUSY|TRYAGAIN|MASTERDOWN|CLUSTERDOWN|READONLY)\b/;

/** An error reply that will not go away by retrying (bad password, missing ACL permission, unknown command). */
export function isRefusal(error: unknown): boolean {
  return error instanceof ErrorReply && !TRANSIENT_REPLIES.test(error.message);
}

/** TLS failures that retrying cannot fix: the certificate does not verify. */
export function isCertificateError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL/.test(code);
}

/** The URL without its credentials, for messages and logs. */
export function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname.length > 1 ? parsed.pathname : ''}`;
  } catch {
    return '(invalid redis URL)';
  }
}

export function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const message = error.message || error.name;
    return typeof code === 'string' && !message.includes(code) ? `${message} (${code})` : message;
  }
  return String(error);
}

export function unavailable(message: string, cause?: unknown): StoreUnavailableError {
  return new StoreUnavailableError(`redis store: ${message}`, cause === undefined ? undefined : { cause });
}
