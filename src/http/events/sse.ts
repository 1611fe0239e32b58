import type { FastifyPluginAsync } from 'fastify';
import type { ServerResponse } from 'node:http';
import { Type, type Static } from 'typebox';
import type { Principal } from '../../auth/principal.ts';
import type { AppContext } from '../context.ts';
import { ApiError } from '../errors.ts';
import type { EventFrames } from './frames.ts';
import { parseFilter, type StreamFilter } from './filter.ts';
import type { EventHub, EventSink } from './hub.ts';
import { streamOwner } from './websocket.ts';
import { timerAt } from './timer-at.ts';

const Query = Type.Object(
  {
    event: Type.Optional(Type.String({ maxLength: 512, description: 'event types, comma-separated' })),
    serviceName: Type.Optional(Type.String({ maxLength: 200, description: 'a service name or a pattern with * wildcards' })),
    nodeId: Type.Optional(Type.String({ maxLength: 400 })),
    lastEventId: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$', description: 'resume after this revision (the Last-Event-ID header does the same)' })),
  },
  { additionalProperties: false },
);

const REVISION = /^[0-9]{1,15}$/;

/** One SSE response: `id` is the revision, so EventSource's Last-Event-ID resumes without gaps. */
class ResponseSink implements EventSink {
  readonly filters: readonly StreamFilter[];
  private slow = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly hub: EventHub,
    readonly principal: Principal,
    filter: StreamFilter,
    /** Verifies the stream's credential again; resolves false once it is no longer good. */
    private readonly stillValid: () => Promise<boolean>,
  ) {
    this.filters = [filter];
    // 'drain' ends a slow spell: one resync marker says events were dropped.
    res.on('drain', () => {
      if (!this.slow) return;
      this.slow = false;
      this.resync(this.hub.revision, 'events were dropped while this stream was slow');
    });
  }

  deliver(frames: EventFrames): void {
    if (this.slow || this.res.writableLength > this.hub.limits.bufferBytes) {
      this.slow = true;
      this.hub.countDropped();
      return;
    }
    this.write(`id: ${frames.event.revision}\nevent: ${frames.event.type}\ndata: ${frames.json}\n\n`);
    this.hub.countSent(frames.event.type);
  }

  reset(revision: number): void {
    this.resync(revision, 'the registry was reloaded');
  }

  /** Tells the client to list again: events between what it has and `revision` cannot be replayed. */
  resync(revision: number, reason: string): void {
    this.hub.countResync();
    this.write(`event: resync\ndata: ${JSON.stringify({ revision, reason })}\n\n`);
  }

  ping(): void {
    this.write(': ping\n\n');
  }

  recheck(): void {
    void this.stillValid().then((valid) => {
      if (!valid) this.res.end();
    });
  }

  write(text: string): void {
    if (!this.res.writableEnded) this.res.write(text);
  }
}

/** `GET /api/maxine/events`: the same events as the WebSocket, as Server-Sent Events. */
export function sseRoute(ctx: AppContext, hub: EventHub): FastifyPluginAsync {
  return async (app) => {
    app.get(
      '/events',
      {
        config: { permission: 'per-item', audit: false },
        schema: {
          tags: ['maxine'],
          summary: 'Live registry events as Server-Sent Events; Last-Event-ID resumes',
          querystring: Query,
          response: { 400: Type.Ref('Error'), 429: Type.Ref('Error') },
        },
      },
      (request, reply) => {
        const query = request.query as Static<typeof Query>;
        const parsed = parseFilter(query);
        if ('problems' in parsed) throw ApiError.validation(parsed.problems);
        const header = request.headers['last-event-id'];
        const resumeFrom = query.lastEventId ?? (typeof header === 'string' && REVISION.test(header) ? header : undefined);
        const { principal } = request;
        const res = reply.raw;
        const credential = principal.kind === 'anonymous' || principal.kind === 'cert' ? undefined : request.headers.authorization;
        const stillValid = () =>
          credential === undefined
            ? Promise.resolve(true)
            : ctx.security.authenticator.authenticate(credential, null).then(
                () => true,
                () => false,
              );
        const sink = new ResponseSink(res, hub, principal, parsed.filter, stillValid);
        const close = hub.open(sink, streamOwner(principal, request, ctx));
        if (close === null) throw new ApiError(429, 'LIMIT_EXCEEDED', 'Too many event streams for this principal.');
        reply.hijack();
        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache, no-transform',
          connection: 'keep-alive',
          // Proxies such as nginx would otherwise hold events back in their buffers.
          'x-accel-buffering': 'no',
          'x-request-id': String(request.id),
        });
        sink.write(`retry: 2000\n\n`);
        if (resumeFrom !== undefined) {
          const replay = hub.replay(principal, parsed.filter, Number(resumeFrom));
          if (replay.kind === 'events') for (const frames of replay.frames) sink.deliver(frames);
          else sink.resync(replay.revision, 'Last-Event-ID is older than the events kept; list again');
        }
        // A stream lasts as long as its credential: EventSource reconnects, with fresh credentials.
        const expiry = principal.expiresAt === null ? undefined : timerAt(principal.expiresAt, () => res.end());
        res.on('close', () => {
          expiry?.cancel();
          close();
        });
      },
    );
  };
}
