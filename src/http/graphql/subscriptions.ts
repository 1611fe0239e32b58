import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import { GraphQLError, specifiedRules, validate, type DocumentNode, type GraphQLSchema } from 'graphql';
import { AuthenticationError } from '../../auth/authenticator.ts';
import { isSecurityKvKey } from '../../auth/security-kv.ts';
import { ANONYMOUS, type Principal } from '../../auth/principal.ts';
import type { CatalogListener } from '../../core/catalog.ts';
import { EVENT_TYPES, type EventType, type InstanceEvent, type LocalEvent } from '../../core/events.ts';
import { checkServiceName } from '../../core/validation.ts';
import type { AppContext } from '../context.ts';
import { streamOwner } from '../events/websocket.ts';
import { CodedError, validationError } from './errors.ts';
import type { Gate, GraphQLContext } from './gate.ts';
import { limitsRule } from './limits.ts';
import { instanceOut, type InstanceOut } from './views.ts';

/** Events one subscription may hold undelivered; past it the subscriber is too slow and its stream ends. */
const MAX_QUEUED_EVENTS = 1000;
const MAX_SUBSCRIPTIONS_PER_CONNECTION = 32;
/** setTimeout's longest delay; later expiries are caught on the next event instead. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** graphql-transport-ws: the server refuses a connection_init with 4403 Forbidden. */
const FORBIDDEN_CLOSE = 4403;
/** Closed as the event WebSockets are when their principal holds too many streams (policy violation). */
const TOO_MANY_CLOSE = 1008;

const expiredCredentials = () => new CodedError('The credentials have expired; connect again with fresh ones.', 'UNAUTHORIZED', 401);

const SERVICE_EVENT_TYPES = EVENT_TYPES.filter((type): type is InstanceEvent['type'] => type !== 'config_changed');

/** State shared by the subscriptions of one WebSocket. */
interface Connection {
  subscriptions: number;
  /** Gives back the connection's place under its principal's cap on event streams. */
  release?: () => void;
}

type SubscriptionContext = GraphQLContext & {
  readonly connection?: Connection;
  /** The Authorization value the principal came from, verified again whenever credentials change anywhere. */
  readonly credential?: string;
};

interface ServiceEventOut {
  readonly type: InstanceEvent['type'];
  readonly revision: number;
  readonly timestamp: string;
  readonly serviceName: string;
  readonly nodeName: string;
  readonly instance: InstanceOut;
}

interface HealthEventOut extends Omit<ServiceEventOut, 'type'> {
  readonly type: 'health_changed' | LocalEvent['type'];
  readonly health: string;
  readonly reason: string;
}

/**
 * An async iterator fed by catalog listeners. Events are queued in order
 * until the subscriber takes them; an error ends the stream after what was
 * already queued.
 */
class EventStream<T> implements AsyncIterableIterator<T> {
  private readonly queue: T[] = [];
  private waiting: { resolve: (result: IteratorResult<T>) => void; reject: (error: Error) => void } | null = null;
  private failure: Error | null = null;
  private ended = false;

  constructor(private readonly cleanup: () => void) {}

  push(item: T): void {
    if (this.ended || this.failure !== null) return;
    if (this.waiting !== null) {
      const { resolve } = this.waiting;
      this.waiting = null;
      resolve({ value: item, done: false });
    } else if (this.queue.length >= MAX_QUEUED_EVENTS) {
      this.fail(new CodedError(`More than ${MAX_QUEUED_EVENTS} events were waiting for this subscriber; subscribe again.`, 'LIMIT_EXCEEDED', 429));
    } else {
      this.queue.push(item);
    }
  }

  fail(error: Error): void {
    if (this.ended || this.failure !== null) return;
    this.cleanup();
    if (this.waiting !== null) {
      const { reject } = this.waiting;
      this.waiting = null;
      this.ended = true;
      reject(error);
    } else {
      this.failure = error;
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.queue.length > 0) return Promise.resolve({ value: this.queue.shift()!, done: false });
    if (this.failure !== null) {
      const error = this.failure;
      this.failure = null;
      this.ended = true;
      return Promise.reject(error);
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<T>> {
    if (!this.ended) {
      this.ended = true;
      this.queue.length = 0;
      if (this.failure === null) this.cleanup();
      this.failure = null;
      this.waiting?.resolve({ value: undefined, done: true });
      this.waiting = null;
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

export function subscriptionResolvers(ctx: AppContext, gate: Gate) {
  const { catalog } = ctx.registry;

  /**
   * Checks what can be checked once, then streams what `listen` pushes.
   * Every event is decided again (discover on its service), so ACL changes
   * and expiring credentials take effect mid-stream.
   */
  function open<T>(
    context: SubscriptionContext,
    serviceName: string | null | undefined,
    listen: (deliver: (service: string, item: () => T) => void, stream: EventStream<T>) => CatalogListener,
  ): EventStream<T> {
    const { principal, connection } = context;
    const expired = () => principal.expiresAt !== null && principal.expiresAt <= Date.now();
    if (expired()) throw expiredCredentials();
    if (serviceName != null) {
      const problem = checkServiceName(serviceName);
      if (problem) throw validationError([problem]);
      gate.require(context, 'discover', serviceName);
    } else {
      gate.visible(context, 'discover');
    }
    if (connection !== undefined && connection.subscriptions >= MAX_SUBSCRIPTIONS_PER_CONNECTION) {
      throw new CodedError(`At most ${MAX_SUBSCRIPTIONS_PER_CONNECTION} subscriptions per connection.`, 'LIMIT_EXCEEDED', 429);
    }
    let timer: NodeJS.Timeout | undefined;
    let unsubscribe = () => {};
    const stream = new EventStream<T>(() => {
      unsubscribe();
      clearTimeout(timer);
      if (connection !== undefined) connection.subscriptions--;
    });
    const expiry = () => stream.fail(expiredCredentials());
    const deliver = (service: string, item: () => T) => {
      if (serviceName != null && service !== serviceName) return;
      if (expired()) return expiry();
      if (ctx.security.policy().decide(principal, 'discover', service).allowed) stream.push(item());
    };
    if (connection !== undefined) connection.subscriptions++;
    const listener = listen(deliver, stream);
    const { credential } = context;
    unsubscribe = catalog.subscribe({
      ...listener,
      event(event) {
        // A revoked token, a deleted user or a changed password ends the stream at once, not at expiry.
        if (event.type === 'config_changed' && isSecurityKvKey(event.key) && credential !== undefined) {
          ctx.security.authenticator.authenticate(credential, null).catch(() => stream.fail(expiredCredentials()));
        }
        listener.event(event);
      },
    });
    const left = principal.expiresAt === null ? null : principal.expiresAt - Date.now();
    if (left !== null && left <= MAX_TIMER_MS) {
      timer = setTimeout(expiry, left);
      timer.unref();
    }
    return stream;
  }

  const resync = (stream: { fail(error: Error): void }) => () =>
    stream.fail(
      new CodedError('The registry was reloaded from the store and events may have been missed; read the current state and subscribe again.', 'RESYNC_REQUIRED', 409),
    );

  const common = (event: InstanceEvent | LocalEvent) => ({
    revision: event.revision,
    timestamp: new Date(event.timestamp).toISOString(),
    serviceName: event.service,
    nodeName: event.id,
    instance: instanceOut(catalog, event.instance),
  });

  return {
    serviceEvents: {
      subscribe(_root: unknown, args: { serviceName?: string | null; types?: readonly InstanceEvent['type'][] | null }, context: SubscriptionContext) {
        const types = new Set<EventType>(args.types ?? SERVICE_EVENT_TYPES);
        return open<ServiceEventOut>(context, args.serviceName, (deliver, stream) => ({
          event(event) {
            // Configuration events are not service events (and security/ keys are never anyone's to watch here).
            if (event.type === 'config_changed' || !types.has(event.type)) return;
            deliver(event.service, () => ({ type: event.type, ...common(event) }));
          },
          reset: resync(stream),
        }));
      },
      resolve: (event: ServiceEventOut) => event,
    },

    healthEvents: {
      subscribe(_root: unknown, args: { serviceName?: string | null }, context: SubscriptionContext) {
        return open<HealthEventOut>(context, args.serviceName, (deliver, stream) => ({
          event(event) {
            if (event.type !== 'health_changed') return;
            deliver(event.service, () => ({ type: 'health_changed', ...common(event), health: event.instance.health, reason: event.instance.healthReason }));
          },
          local(event) {
            deliver(event.service, () => ({ type: event.type, ...common(event), health: event.instance.health, reason: event.reason }));
          },
          reset: resync(stream),
        }));
      },
      resolve: (event: HealthEventOut) => event,
    },
  };
}

/** What mercurius' SubscriptionConnection exposes to onConnect as `this` (mercurius calls it as a method). */
interface MercuriusConnection {
  readonly context?: { readonly request?: FastifyRequest };
  readonly socket?: { close(code: number, reason: string): void };
}

/** The credential in a connection_init payload: undefined when none is given, null when one is given but is not a string. */
function credentialIn(payload: unknown): string | null | undefined {
  if (typeof payload !== 'object' || payload === null) return undefined;
  const fields = payload as Record<string, unknown>;
  const authorization = fields.authorization ?? fields.Authorization;
  if (authorization === undefined && fields.token === undefined) return undefined;
  if (typeof authorization === 'string') return authorization;
  if (typeof fields.token === 'string') return `Bearer ${fields.token}`;
  return null;
}

/**
 * mercurius' onConnect and onDisconnect. A connection's principal comes from
 * the connection_init payload ({authorization: "Bearer ..."} or {token}),
 * else from the upgrade request (its Authorization header, verified at the
 * door, or anonymous). Credentials that do not verify refuse the connection,
 * audited like a refusal at the door. Each connection counts against its
 * principal's cap on event streams (MAXINE_EVENTS_MAX_CONNECTIONS_PER_PRINCIPAL)
 * until it closes.
 */
export function subscriptionConnections(ctx: AppContext, gate: Gate, logger: FastifyBaseLogger) {
  // By upgrade request, one per socket: mercurius also calls onConnect for a connectionInit extension of each subscribe.
  const connections = new WeakMap<FastifyRequest, Connection>();

  async function principalOf(request: FastifyRequest, credential: string | null | undefined): Promise<{ principal: Principal; credential: string | undefined }> {
    if (credential === undefined) {
      const { principal } = request;
      const fromHeader = principal.kind === 'anonymous' || principal.kind === 'cert' ? undefined : request.headers.authorization;
      return { principal, credential: fromHeader };
    }
    if (credential === null) throw new AuthenticationError('Send credentials as {"authorization": "Bearer <token>"} or {"token": "<token>"}.');
    return { principal: await ctx.security.authenticator.authenticate(credential, null), credential };
  }

  return {
    async onConnect(
      this: MercuriusConnection | undefined,
      message: { payload?: unknown },
    ): Promise<false | { principal: Principal; connection: Connection; credential: string | undefined }> {
      const request = this?.context?.request;
      if (request === undefined) {
        logger.error('GraphQL subscriptions: mercurius no longer exposes the upgrade request to onConnect; refusing connections');
        return false;
      }
      const given = credentialIn(message.payload);
      // mercurius copies the init payload into the upgrade request's headers for every subscription: credentials belong nowhere else.
      message.payload = undefined;
      let identified: { principal: Principal; credential: string | undefined };
      try {
        identified = await principalOf(request, given);
      } catch (error) {
        if (error instanceof AuthenticationError) gate.record({ principal: ANONYMOUS, request }, 'per-item', null, 'denied', 401, error.message);
        else logger.error({ err: error }, 'verifying GraphQL connection credentials failed');
        this?.socket?.close(FORBIDDEN_CLOSE, 'Forbidden');
        return false;
      }
      let connection = connections.get(request);
      if (connection === undefined) {
        const release = ctx.events.reserve(streamOwner(identified.principal, request, ctx));
        if (release === null) {
          this?.socket?.close(TOO_MANY_CLOSE, 'too many event streams for this principal');
          return false;
        }
        connection = { subscriptions: 0, release };
        connections.set(request, connection);
      }
      return { ...identified, connection };
    },
    onDisconnect(context: { readonly request?: FastifyRequest }): void {
      if (context.request !== undefined) connections.get(context.request)?.release?.();
    },
  };
}

/**
 * mercurius runs subscriptions without validating them: the standard rules
 * and the limits run here, before execution, with the errors coded as over
 * HTTP.
 */
export function validateSubscription(schema: GraphQLSchema, document: DocumentNode): void {
  const [first] = validate(schema, document, [...specifiedRules, limitsRule(undefined)]);
  if (first === undefined) return;
  throw typeof first.extensions.code === 'string'
    ? first
    : new GraphQLError(first.message, { nodes: first.nodes ?? null, extensions: { code: 'VALIDATION_FAILED' } });
}
