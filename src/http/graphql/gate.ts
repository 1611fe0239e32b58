import type { FastifyRequest } from 'fastify';
import type { Action } from '../../auth/actions.ts';
import type { Principal } from '../../auth/principal.ts';
import type { AuditResult } from '../../observe/audit.ts';
import { auditEvent } from '../access.ts';
import type { AppContext } from '../context.ts';
import { CodedError, coded } from './errors.ts';

/** What every resolver is given: who asks, and the request they came in on (the POST, or the WebSocket's upgrade). */
export interface GraphQLContext {
  readonly principal: Principal;
  readonly request: FastifyRequest;
}

declare module 'mercurius' {
  // mercurius' way of typing what its context function adds.
  interface MercuriusContext extends GraphQLContext {}
}

/** A refused decision, already in the audit log. */
class Refusal extends CodedError {}

/**
 * The access decisions and the audit of GraphQL, made per item with the same
 * policy as REST: the route itself is `per-item`, so nothing was decided at
 * the door beyond checking presented credentials.
 */
export class Gate {
  constructor(private readonly ctx: AppContext) {}

  record(context: GraphQLContext, action: string, service: string | null, result: AuditResult, status: number, reason: string | null): void {
    const { principal, request } = context;
    this.ctx.audit.record(
      auditEvent(request, this.ctx.clientAddress, {
        actor: { kind: principal.kind, id: principal.id, role: principal.role },
        action,
        service,
        result,
        status,
        reason,
      }),
    );
  }

  /** An audited refusal: UNAUTHORIZED for anonymous callers (credentials would help), FORBIDDEN otherwise. */
  refuse(context: GraphQLContext, action: string, service: string | null, reason: string): CodedError {
    const anonymous = context.principal.kind === 'anonymous';
    const status = anonymous ? 401 : 403;
    this.record(context, action, service, 'denied', status, reason);
    return new Refusal(reason, anonymous ? 'UNAUTHORIZED' : 'FORBIDDEN', status);
  }

  /** Throws the refusal unless the policy allows `action` on `service` (null: on every service). */
  require(context: GraphQLContext, action: Action, service: string | null): void {
    const decision = this.ctx.security.policy().decide(context.principal, action, service);
    if (!decision.allowed) throw this.refuse(context, action, service, decision.reason);
  }

  /** REST's check before it reads a body: a caller that could not do `action` on any service is refused before its input is looked at. */
  requireEver(context: GraphQLContext, action: Action, service: string): void {
    const policy = this.ctx.security.policy();
    if (!policy.mayEver(context.principal, action)) throw this.refuse(context, action, service, policy.decide(context.principal, action, null).reason);
  }

  /**
   * For listings: which services the caller may see. Items it may not see
   * are left out rather than refused; a caller that may see none at all is
   * refused outright, so an empty list always means "nothing there".
   */
  visible(context: GraphQLContext, action: Action): (service: string) => boolean {
    const policy = this.ctx.security.policy();
    const { principal } = context;
    // Allowed with no service is the strictest case: allowed on every service, no deny rule in the way.
    const everywhere = policy.decide(principal, action, null);
    if (everywhere.allowed) return () => true;
    if (!policy.mayEver(principal, action)) throw this.refuse(context, action, null, everywhere.reason);
    return (service) => policy.decide(principal, action, service).allowed;
  }

  /**
   * A change, audited as REST audits its routes: a refusal once (as denied),
   * otherwise succeeded or failed with the status REST would have answered;
   * `routine` changes (a re-registration that only renewed) are not changes.
   */
  async change<T>(context: GraphQLContext, action: Action, service: string, run: () => Promise<{ value: T; routine: boolean }>): Promise<T> {
    let outcome: { value: T; routine: boolean };
    try {
      outcome = await run();
    } catch (error) {
      if (error instanceof Refusal) throw error;
      const failure = coded(error);
      this.record(context, action, service, 'failed', failure?.status ?? 500, failure?.message ?? null);
      throw failure ?? error;
    }
    if (!outcome.routine) this.record(context, action, service, 'succeeded', 200, null);
    return outcome.value;
  }
}
