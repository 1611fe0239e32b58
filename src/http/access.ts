import type { IncomingMessage } from 'node:http';
import type {
  FastifyContextConfig,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  onRequestHookHandler,
  onResponseHookHandler,
} from 'fastify';
import type { AccessPolicy } from '../auth/access-policy.ts';
import { CLIENT_ACTIONS, type Action } from '../auth/actions.ts';
import { AuthenticationError, UnrecognizedCredentialError, type Authenticator } from '../auth/authenticator.ts';
import { ANONYMOUS, certificatePrincipal, type Principal } from '../auth/principal.ts';
import type { AuditEvent, AuditLog, AuditResult } from '../observe/audit.ts';
import type { ClientAddress } from './client-address.ts';
import { ApiError } from './errors.ts';
import { isAction } from './permissions.ts';

export interface AccessControl {
  readonly authenticator: Authenticator;
  /** The policy in force now: ACL rules change at run time. */
  policy(): AccessPolicy;
  readonly audit: AuditLog;
  readonly clientAddress: ClientAddress;
  /** The verified client certificate's subject (mTLS), or null; absent when mTLS is off. */
  readonly certificateSubject?: (request: IncomingMessage) => string | null;
  /** Presented credentials were refused (invalid, expired, revoked): an authentication failure for the metrics. */
  readonly onCredentialsRefused: () => void;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is asking; set on every route that is not public (public routes do not look at credentials). */
    principal: Principal;
    /** Allowed before the body was read: no service-specific decision left to make. */
    accessGranted: boolean;
    /** Set by handlers whose call turned out to change nothing (a re-registration that only renewed). */
    routine: boolean;
    /** The request was refused and that refusal is already audited. */
    auditDone: boolean;
  }
}

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

function traceIdOf(request: FastifyRequest): string | null {
  const header = request.headers.traceparent;
  const match = typeof header === 'string' ? TRACEPARENT.exec(header) : null;
  return match === null ? null : match[1]!;
}

/**
 * Authentication, the authorisation decision and the audit of every
 * decision refused and every change made, on every route, from the route's
 * declared permission. Decisions never look at the raw URL: a case variant
 * or an encoded spelling of a path either matches the same route (and gets
 * the same decision) or matches none (404).
 */
export function installAccessControl(app: FastifyInstance, access: AccessControl): void {
  // Fastify refuses object defaults (they would be shared); requests to protected routes get theirs in onRequest.
  app.decorateRequest('principal', null as unknown as Principal);
  app.decorateRequest('accessGranted', false);
  app.decorateRequest('routine', false);
  app.decorateRequest('auditDone', false);

  /** A route's config as declared, or read per request when a plugin's own onRoute hook sets it after ours ran. */
  type ConfigOf = (request: FastifyRequest) => FastifyContextConfig;

  const record = (request: FastifyRequest, config: FastifyContextConfig, result: AuditResult, status: number, reason: string | null): void => {
    const { principal } = request;
    access.audit.record(
      auditEvent(request, access.clientAddress, {
        actor: { kind: principal.kind, id: principal.id, role: principal.role },
        action: config.permission ?? 'public',
        service: config.service?.(request) ?? null,
        result,
        status,
        reason,
      }),
    );
  };

  const refuse = (request: FastifyRequest, reply: FastifyReply, config: FastifyContextConfig, reason: string, unauthenticated: boolean): ApiError => {
    const status = unauthenticated ? 401 : 403;
    if (unauthenticated) reply.header('www-authenticate', 'Bearer realm="maxine"');
    record(request, config, 'denied', status, reason);
    request.auditDone = true;
    return unauthenticated ? new ApiError(401, 'UNAUTHORIZED', reason) : new ApiError(403, 'FORBIDDEN', reason);
  };

  /** Everything that can be decided before the body is read; the service-specific rest waits for the handler. */
  const admit = (request: FastifyRequest, reply: FastifyReply, config: FastifyContextConfig, principal: Principal): ApiError | undefined => {
    request.principal = principal;
    const permission = config.permission ?? 'public';
    if (permission === 'public') return undefined;
    const anonymous = principal.kind === 'anonymous';
    if (permission === 'per-item') {
      request.accessGranted = true;
      return undefined;
    }
    if (!isAction(permission)) {
      if (anonymous) return refuse(request, reply, config, 'Sign in first.', true);
      request.accessGranted = true;
      return undefined;
    }
    const policy = access.policy();
    const needsService = config.service !== undefined;
    if (needsService && !policy.mayEver(principal, permission)) {
      return refuse(request, reply, config, policy.decide(principal, permission, null).reason, anonymous);
    }
    // Deciding with no service is the strictest case: allowed there means allowed on any service.
    const decision = policy.decide(principal, permission, null);
    if (decision.allowed) {
      request.accessGranted = true;
      return undefined;
    }
    return needsService ? undefined : refuse(request, reply, config, decision.reason, anonymous);
  };

  const authenticate =
    (configOf: ConfigOf): onRequestHookHandler =>
    (request, reply, done) => {
      const config = configOf(request);
      // Until credentials are verified the caller is nobody, which is also who a refusal is audited as.
      request.principal = ANONYMOUS;
      if ((config.permission ?? 'public') === 'public') return done();
      const authorization = request.headers.authorization;
      const subject = access.certificateSubject?.(request.raw) ?? null;
      if (authorization === undefined && subject === null) return done(admit(request, reply, config, ANONYMOUS));
      verifiedPrincipal(access, authorization, subject, config.forwardsCredentials === true).then(
        (principal) => done(admit(request, reply, config, principal)),
        (error: unknown) => {
          if (!(error instanceof AuthenticationError)) return done(error as Error);
          access.onCredentialsRefused();
          done(refuse(request, reply, config, error.message, true));
        },
      );
    };

  /** The service-specific decision, once the input is validated, for requests onRequest could not allow outright. */
  const refusalForService = (request: FastifyRequest, reply: FastifyReply, config: FastifyContextConfig): ApiError | undefined => {
    const permission = config.permission ?? 'public';
    if (!isAction(permission)) return undefined;
    const decision = access.policy().decide(request.principal, permission, config.service?.(request) ?? null);
    return decision.allowed ? undefined : refuse(request, reply, config, decision.reason, request.principal.kind === 'anonymous');
  };

  const auditChange =
    (configOf: ConfigOf): onResponseHookHandler =>
    (request, reply, done) => {
      if (!request.auditDone && !request.routine) {
        record(request, configOf(request), reply.statusCode < 400 ? 'succeeded' : 'failed', reply.statusCode, null);
      }
      done();
    };

  // Hooks are per route, bound to its config: public routes pay for none, and
  // no request rebuilds request.routeOptions (a fresh object per access).
  app.addHook('onRoute', (route) => {
    const config = route.config ?? {};
    if (config.permission === 'public') return;
    const configOf: ConfigOf = config.permission === undefined ? (request) => request.routeOptions.config : () => config;
    // The OpenAPI document says which routes take credentials; `{}` marks them optional, as the client routes are by default.
    if (config.permission !== undefined) {
      const optional = isAction(config.permission) && CLIENT_ACTIONS.has(config.permission);
      route.schema = { ...route.schema, security: optional ? [{ bearerAuth: [] }, {}] : [{ bearerAuth: [] }] };
    }
    route.onRequest = [...[route.onRequest ?? []].flat(), authenticate(configOf)];
    if (config.permission === undefined || config.service !== undefined) {
      // A wrapper, not a preHandler hook: a hook phase of its own cost discover and heartbeat
      // measurably (bench A/B), while most requests were already allowed in onRequest.
      const handler = route.handler;
      route.handler = function decidedForService(this: FastifyInstance, request, reply) {
        if (!request.accessGranted) {
          const refusal = refusalForService(request, reply, configOf(request));
          if (refusal !== undefined) throw refusal;
        }
        return handler.call(this, request, reply);
      };
    }
    const mutates = [route.method].flat().some((m) => !READ_METHODS.has(m));
    if (mutates && config.audit !== false) route.onResponse = [...[route.onResponse ?? []].flat(), auditChange(configOf)];
  });
}

/**
 * Who presents these credentials; rejects with the AuthenticationError that
 * refuses them. On a route that forwards credentials to the instance, a
 * credential the registry does not recognise is the instance's business: the
 * caller is then who its certificate says, or anonymous.
 */
function verifiedPrincipal(access: AccessControl, authorization: string | undefined, subject: string | null, forwardsCredentials: boolean): Promise<Principal> {
  return access.authenticator.authenticate(authorization, subject).catch((error: unknown) => {
    if (forwardsCredentials && error instanceof UnrecognizedCredentialError) return subject === null ? ANONYMOUS : certificatePrincipal(subject);
    throw error;
  });
}

/**
 * The access decision for an answer given outside fastify's hooks (the fast
 * lane): the same authentication and the same policy as the route's hooks.
 * True when the request is allowed `action` on `service`; false when the
 * route must answer instead, because the answer is a refusal, which the
 * route audits and counts, once. A promise only when credentials are
 * presented; anonymous requests are decided at once.
 */
export function isAllowed(
  access: AccessControl,
  request: IncomingMessage,
  action: Action,
  service: string,
  forwardsCredentials: boolean,
): boolean | Promise<boolean> {
  const authorization = request.headers.authorization;
  const subject = access.certificateSubject?.(request) ?? null;
  // Allowed on a service when the policy allows it there: the route's hooks decide in two steps (without the service,
  // then with it), and allowed without a service implies allowed on every one, so the outcome is the same.
  if (authorization === undefined && subject === null) return access.policy().decide(ANONYMOUS, action, service).allowed;
  return verifiedPrincipal(access, authorization, subject, forwardsCredentials).then(
    (principal) => access.policy().decide(principal, action, service).allowed,
    () => false,
  );
}

/** One audit event about this request; routes that audit themselves (sign-in) name the actor and action. */
export function auditEvent(
  request: FastifyRequest,
  clientAddress: ClientAddress,
  fields: Pick<AuditEvent, 'actor' | 'action' | 'service' | 'result' | 'status' | 'reason'>,
): AuditEvent {
  return {
    time: new Date().toISOString(),
    ...fields,
    method: request.method,
    route: request.routeOptions.url ?? '(no route)',
    address: clientAddress(request.raw),
    traceId: traceIdOf(request),
    requestId: String(request.id),
  };
}
