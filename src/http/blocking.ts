import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import { INDEX_PATTERN, parseWait, WAIT_PATTERN, type Scope } from '../registry/revision-waiters.ts';
import type { AppContext } from './context.ts';

/** A Consul-style blocking query's parameters, on every listing route. */
export const BlockingQuery = {
  index: Type.Optional(
    Type.String({
      pattern: INDEX_PATTERN,
      description: 'answer once the listing has changed past this X-Maxine-Index (or `wait` has passed); 0 answers at once',
    }),
  ),
  wait: Type.Optional(
    Type.String({
      pattern: WAIT_PATTERN,
      maxLength: 32,
      description: 'with `index`: the longest wait, as Consul writes it (`5s`, `2m`, `1h`, `500ms`) or in milliseconds; default 5m, at most 10m',
    }),
  ),
};

/**
 * Parks a listing request while its scope has not changed past `index`,
 * then sets the X-Maxine-Index of the listing the caller builds right after
 * (read then, not when the wait ended, so header and listing agree).
 */
export async function blockingIndex(
  ctx: AppContext,
  reply: FastifyReply,
  scope: Scope,
  query: { readonly index?: string; readonly wait?: string },
): Promise<void> {
  const waiters = ctx.revisionWaiters;
  if (query.index !== undefined) {
    // A client that hangs up must not hold a waiter and timer for minutes, even
    // one gone before this handler ran (authentication may have awaited).
    const gone = new AbortController();
    const onClose = () => gone.abort();
    reply.raw.once('close', onClose);
    if (reply.raw.destroyed) gone.abort();
    try {
      await waiters.wait(scope, Number(query.index), query.wait === undefined ? undefined : parseWait(query.wait), gone.signal);
    } finally {
      reply.raw.off('close', onClose);
    }
  }
  reply.header('x-maxine-index', String(waiters.indexOf(scope)));
}
