import type { AdminStatus } from '../../core/instance.ts';
import type { AppContext } from '../context.ts';
import { instanceKey, unknownInstanceMessage } from '../maxine/instance-key.ts';
import { registrationSpec } from '../maxine/registration.ts';
import { instanceView } from '../views.ts';
import { CodedError } from './errors.ts';
import type { Gate, GraphQLContext } from './gate.ts';
import { instanceRefOf, registerBodyOf, statusChangeOf } from './inputs.ts';
import { instanceOut, type InstanceOut } from './views.ts';

interface InstanceArgs {
  readonly serviceName: string;
  readonly nodeName: string;
}

function unknownInstance(serviceName: string, nodeName: string): CodedError {
  return new CodedError(unknownInstanceMessage(serviceName, nodeName), 'NOT_FOUND', 404);
}

/**
 * The REST order throughout: whether the caller could ever do this, the
 * input's shape, the decision on its service, the registry's own rules,
 * then the change.
 */
export function mutationResolvers(ctx: AppContext, gate: Gate) {
  const { registry, runtime } = ctx;
  const { catalog } = registry;

  return {
    register: (_root: unknown, { input }: { input: Record<string, unknown> }, context: GraphQLContext) =>
      gate.change(context, 'register', String(input.serviceName), async () => {
        gate.requireEver(context, 'register', String(input.serviceName));
        const body = registerBodyOf(input);
        gate.require(context, 'register', body.serviceName);
        const spec = registrationSpec(body, {
          defaultTtlSec: runtime.settings.heartBeatTimeout,
          checkDefaults: ctx.checkDefaults,
          allowLinkLocal: ctx.config.allowLinkLocal,
        });
        const { instance, changed } = await registry.register(spec);
        return { value: { instance: instanceOut(catalog, instance), changed }, routine: !changed };
      }),

    // Renewals are not changes: like REST, only their refusals are audited.
    heartbeat(_root: unknown, args: InstanceArgs, context: GraphQLContext): InstanceOut {
      gate.requireEver(context, 'register', args.serviceName);
      const { serviceName, nodeName } = instanceRefOf(args);
      gate.require(context, 'register', serviceName);
      const instance = registry.heartbeat(instanceKey(serviceName, nodeName));
      if (instance === undefined) throw unknownInstance(serviceName, nodeName);
      return instanceOut(catalog, instance);
    },

    deregister: (_root: unknown, args: InstanceArgs, context: GraphQLContext) =>
      gate.change(context, 'deregister', args.serviceName, async () => {
        gate.requireEver(context, 'deregister', args.serviceName);
        const { serviceName, nodeName } = instanceRefOf(args);
        gate.require(context, 'deregister', serviceName);
        const removed = await registry.deregister(instanceKey(serviceName, nodeName));
        if (removed === undefined) throw unknownInstance(serviceName, nodeName);
        return { value: instanceView(removed), routine: false };
      }),

    setStatus: (_root: unknown, args: InstanceArgs & { status: AdminStatus; reason?: string | null }, context: GraphQLContext) =>
      gate.change(context, 'ops:write', args.serviceName, async () => {
        gate.requireEver(context, 'ops:write', args.serviceName);
        const { serviceName, nodeName, reason } = statusChangeOf(args);
        gate.require(context, 'ops:write', serviceName);
        const instance = await registry.setStatus(instanceKey(serviceName, nodeName), args.status, reason ?? '');
        return { value: instanceOut(catalog, instance), routine: false };
      }),
  };
}
