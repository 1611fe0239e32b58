import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { WebSocket } from '@fastify/websocket';
import { AuthenticationError } from '../../auth/authenticator.ts';
import { describePrincipal, type Principal } from '../../auth/principal.ts';
import type { AppContext } from '../context.ts';
import { instanceView } from '../views.ts';
import type { EventFrames } from './frames.ts';
import { describeFilter, parseFilter, type StreamFilter } from './filter.ts';
import type { EventHub, EventSink } from './hub.ts';
import { timerAt } from './timer-at.ts';

/** Close codes: 1008 policy (too many connections), 1013 try again later (too slow), 4401 credentials expired. */
const TOO_MANY = 1008;
const TOO_SLOW = 1013;
const EXPIRED = 4401;
/** A slow consumer that has not drained its buffer in this long is closed rather than waited for. */
const SLOW_GRACE_MS = 30_000;
const DRAIN_CHECK_MS = 100;
/** Pushes are sent as bytes encoded once per event, but are text frames (JSON) on the wire. */
const TEXT = { binary: false } as const;
/** The refresh request goes out this long before the token expires. */
const REFRESH_NOTICE_MS = 30_000;

/**
 * One WebSocket speaking the original Lightning protocol, extended:
 * {"auth":jwt} -> authenticated; {"subscribe":{event,serviceName,nodeId,fromRevision?}} -> subscribed
 * (filters accumulate; serviceName may be a pattern; fromRevision replays or resyncs);
 * {"unsubscribe":true} -> unsubscribed; {"refresh_token":true} -> token_refreshed.
 */
class SocketSink implements EventSink {
  filters: StreamFilter[] = [];
  private alive = true;
  private stopped = false;
  private slowSince: number | null = null;
  private drainTimer: NodeJS.Timeout | undefined;
  private refreshTimer: { cancel(): void } | undefined;
  private expiryTimer: { cancel(): void } | undefined;
  private close: () => void = () => undefined;
  /** Messages are handled one after another: a subscribe sent right after an auth must see the new principal. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly socket: WebSocket,
    private readonly ctx: AppContext,
    private readonly hub: EventHub,
    public principal: Principal,
    /** The Authorization value the principal came from, checked again when credentials change anywhere. */
    private credential: string | undefined,
    private owner: string,
  ) {}

  start(): void {
    const close = this.hub.open(this, this.owner);
    if (close === null) {
      this.socket.close(TOO_MANY, 'too many event streams for this principal');
      return;
    }
    this.close = close;
    this.watchExpiry();
    this.socket.on('pong', () => (this.alive = true));
    this.socket.on('message', (data, isBinary) => {
      const text = isBinary ? null : data.toString();
      this.queue = this.queue.then(() => this.onMessage(text)).catch(() => this.socket.terminate());
    });
    this.socket.on('close', () => this.stop());
    this.socket.on('error', () => this.stop());
  }

  /** Users, tokens or keys changed somewhere: a revoked credential must stop receiving at once. */
  recheck(): void {
    const { credential } = this;
    if (credential === undefined) return;
    this.ctx.security.authenticator.authenticate(credential, null).then(
      (principal) => {
        if (this.credential === credential) this.principal = principal;
      },
      () => {
        if (this.credential === credential) this.socket.close(EXPIRED, 'credentials revoked');
      },
    );
  }

  deliver(frames: EventFrames): void {
    if (this.slowSince !== null) {
      this.hub.countDropped();
      return;
    }
    if (this.socket.bufferedAmount > this.hub.limits.bufferBytes) {
      this.hub.countDropped();
      this.becomeSlow();
      return;
    }
    this.socket.send(frames.push, TEXT);
    this.hub.countSent(frames.event.type);
  }

  reset(revision: number): void {
    this.hub.countResync();
    this.send({ type: 'resync', revision, reason: 'the registry was reloaded; list again or subscribe with fromRevision' });
  }

  ping(): void {
    if (!this.alive) {
      this.socket.terminate();
      return;
    }
    this.alive = false;
    this.socket.ping();
  }

  private stop(): void {
    this.stopped = true;
    clearInterval(this.drainTimer);
    this.refreshTimer?.cancel();
    this.expiryTimer?.cancel();
    this.close();
  }

  private send(message: object): void {
    this.socket.send(JSON.stringify(message));
  }

  /** Events are dropped, not queued, until the buffer drains; then one resync marker says what was missed. */
  private becomeSlow(): void {
    this.slowSince = Date.now();
    this.drainTimer = setInterval(() => {
      if (this.socket.bufferedAmount <= this.hub.limits.bufferBytes / 4) {
        clearInterval(this.drainTimer);
        this.slowSince = null;
        this.hub.countResync();
        this.send({ type: 'resync', revision: this.hub.revision, reason: 'events were dropped while this connection was slow' });
      } else if (Date.now() - this.slowSince! > SLOW_GRACE_MS) {
        this.socket.close(TOO_SLOW, 'too slow to keep up');
      }
    }, DRAIN_CHECK_MS);
  }

  /** A credential that ends mid-connection gets a refresh request, then a close if nothing refreshed it. */
  private watchExpiry(): void {
    this.refreshTimer?.cancel();
    this.expiryTimer?.cancel();
    const expiresAt = this.principal.expiresAt;
    if (expiresAt === null || this.stopped) return;
    this.refreshTimer = timerAt(expiresAt - REFRESH_NOTICE_MS, () => this.send({ type: 'refresh_required', expiresAt: new Date(expiresAt).toISOString() }));
    this.expiryTimer = timerAt(expiresAt, () => this.socket.close(EXPIRED, 'credentials expired'));
  }

  private async onMessage(text: string | null): Promise<void> {
    let message: unknown;
    try {
      message = text === null ? undefined : JSON.parse(text);
    } catch {
      message = undefined;
    }
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      this.send({ type: 'error', error: 'Send one JSON object per message: {"auth"}, {"subscribe"}, {"unsubscribe"} or {"refresh_token"}.' });
      return;
    }
    const m = message as Record<string, unknown>;
    if ('auth' in m) await this.authenticate(m.auth);
    else if ('subscribe' in m) this.subscribe(m.subscribe);
    else if ('unsubscribe' in m) {
      this.filters = [];
      this.send({ type: 'unsubscribed' });
    } else if ('refresh_token' in m) await this.refresh();
    else this.send({ type: 'error', error: 'Unknown message.' });
  }

  private async authenticate(token: unknown): Promise<void> {
    if (typeof token !== 'string' || token.length > 8192) {
      this.send({ type: 'error', error: 'auth must be a token string.' });
      return;
    }
    const credential = `Bearer ${token}`;
    let principal: Principal;
    try {
      principal = await this.ctx.security.authenticator.authenticate(credential, null);
    } catch (error) {
      if (!(error instanceof AuthenticationError)) throw error;
      this.send({ type: 'error', error: error.message });
      return;
    }
    if (this.stopped) return;
    // The stream now counts against the principal it became, under that principal's cap.
    const owner = describePrincipal(principal);
    if (owner !== this.owner) {
      this.close();
      const close = this.hub.open(this, owner);
      if (close === null) {
        this.close = () => undefined;
        this.socket.close(TOO_MANY, 'too many event streams for this principal');
        return;
      }
      this.close = close;
      this.owner = owner;
    }
    this.principal = principal;
    this.credential = credential;
    this.watchExpiry();
    this.send({ type: 'authenticated', principal: owner });
  }

  private subscribe(spec: unknown): void {
    const raw = typeof spec === 'object' && spec !== null ? (spec as Record<string, unknown>) : {};
    const parsed = parseFilter(raw);
    if ('problems' in parsed) {
      this.send({ type: 'error', error: 'Invalid subscription.', details: parsed.problems });
      return;
    }
    const { filter } = parsed;
    const from = raw.fromRevision;
    if (from !== undefined && !(Number.isSafeInteger(from) && (from as number) >= 0)) {
      this.send({ type: 'error', error: 'fromRevision must be a non-negative integer.' });
      return;
    }
    this.filters.push(filter);
    this.send({ type: 'subscribed', filter: describeFilter(filter), revision: this.hub.revision });
    if (from === undefined) return;
    const replay = this.hub.replay(this.principal, filter, from as number);
    if (replay.kind === 'events') {
      for (const frames of replay.frames) this.deliver(frames);
      return;
    }
    // Too far behind for the ring: the current state instead, and live events from its revision on.
    this.hub.countResync();
    this.send({ type: 'resync', revision: replay.revision, snapshot: this.hub.snapshot(this.principal, filter).map(instanceView) });
  }

  private async refresh(): Promise<void> {
    const { security } = this.ctx;
    if (this.principal.kind !== 'user' || this.credential === undefined) {
      this.send({ type: 'error', error: 'Only a user signed in with a password can refresh here; send {"auth": <new token>} instead.' });
      return;
    }
    // The credential must still be good: a password reset or a deletion since must not be refreshed away.
    let current: Principal;
    try {
      current = await security.authenticator.authenticate(this.credential, null);
    } catch (error) {
      if (!(error instanceof AuthenticationError)) throw error;
      this.send({ type: 'error', error: error.message });
      this.socket.close(EXPIRED, 'credentials revoked');
      return;
    }
    const user = security.users.get(current.id!);
    if (user === undefined || this.stopped) return;
    // An access token alone: the connection is not a new session, so no refresh family starts.
    const session = await security.sessions.access(user);
    this.credential = `Bearer ${session.accessToken}`;
    this.principal = { ...current, expiresAt: Date.now() + session.expiresIn * 1000 };
    this.watchExpiry();
    this.send({ type: 'token_refreshed', token: session.accessToken });
  }
}

/** Who a stream counts against for the per-principal cap: anonymous callers by address. */
export function streamOwner(principal: Principal, request: FastifyRequest, ctx: AppContext): string {
  return principal.kind === 'anonymous' ? `anonymous@${ctx.clientAddress(request.raw)}` : describePrincipal(principal);
}

const UPGRADE_REQUIRED = { message: 'This is a WebSocket endpoint: connect with Upgrade: websocket.', code: 'UPGRADE_REQUIRED' };

/** The event WebSocket at `path`, with a plain-HTTP answer for clients that did not upgrade. */
export function eventSocketRoute(ctx: AppContext, hub: EventHub, path: string): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.route({
      method: 'GET',
      url: path,
      config: { permission: 'per-item', audit: false },
      schema: {
        tags: ['maxine'],
        summary: 'Live registry events over WebSocket (the original Lightning protocol, extended)',
        response: { 426: Type.Ref('Error') },
      },
      handler: async (_request, reply) => reply.code(426).header('upgrade', 'websocket').send(UPGRADE_REQUIRED),
      wsHandler: (socket, request) => {
        const { principal } = request;
        const credential = principal.kind === 'anonymous' || principal.kind === 'cert' ? undefined : request.headers.authorization;
        new SocketSink(socket, ctx, hub, principal, credential, streamOwner(principal, request, ctx)).start();
      },
    });
  };
}
