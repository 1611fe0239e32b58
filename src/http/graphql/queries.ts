import type { ServiceView } from '../../core/catalog.ts';
import { matchesFilter } from '../../core/filter.ts';
import type { AdminStatus, Health } from '../../core/instance.ts';
import { LIMITS, checkServiceName, checkTags, checkVersion, checkZone, type FieldProblem } from '../../core/validation.ts';
import type { AppContext } from '../context.ts';
import { discoverInstance, MAX_HASH_KEY_LENGTH } from '../discovery.ts';
import { leasedInstanceView } from '../views.ts';
import { validationError } from './errors.ts';
import type { Gate, GraphQLContext } from './gate.ts';
import { pageSize } from './inputs.ts';
import { clusterView } from '../actuator/routes.ts';
import { instanceOut, type InstanceOut } from './views.ts';

/** As the REST discover's `key` query parameter. */

interface ServicesArgs {
  readonly filter?: { readonly namePrefix?: string | null; readonly eligibleOnly?: boolean | null } | null;
  readonly sort?: { readonly by: 'NAME' | 'REVISION' | 'INSTANCES'; readonly descending: boolean } | null;
  readonly first?: number | null;
}

interface InstancesArgs {
  readonly filters?: {
    readonly serviceName?: string | null;
    readonly serviceNamePrefix?: string | null;
    readonly tags?: readonly string[] | null;
    readonly version?: string | null;
    readonly zone?: string | null;
    readonly status?: readonly AdminStatus[] | null;
    readonly health?: readonly Health[] | null;
    readonly eligibleOnly?: boolean | null;
  } | null;
  readonly first?: number | null;
}

interface DiscoverArgs {
  readonly serviceName: string;
  readonly strategy?: string | null;
  readonly tags?: readonly string[] | null;
  readonly version?: string | null;
  readonly zone?: string | null;
  readonly key?: string | null;
}

function refuseProblems(problems: readonly (FieldProblem | undefined)[]): void {
  const found = problems.filter((p): p is FieldProblem => p !== undefined);
  if (found.length > 0) throw validationError(found);
}

function prefixProblem(prefix: string | null | undefined, field: string): FieldProblem | undefined {
  return prefix != null && prefix.length > LIMITS.nameLength ? { field, problem: `must be at most ${LIMITS.nameLength} characters` } : undefined;
}

const byName = (a: ServiceView, b: ServiceView) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

const SORT_KEYS: Record<NonNullable<ServicesArgs['sort']>['by'], (service: ServiceView) => number> = {
  NAME: () => 0,
  REVISION: (service) => service.revision,
  INSTANCES: (service) => service.entries.size,
};

export function queryResolvers(ctx: AppContext, gate: Gate) {
  const { catalog } = ctx.registry;

  return {
    Query: {
      services(_root: unknown, args: ServicesArgs, context: GraphQLContext): ServiceView[] {
        const limit = pageSize(args.first);
        const { namePrefix, eligibleOnly } = args.filter ?? {};
        refuseProblems([prefixProblem(namePrefix, 'filter.namePrefix')]);
        const visible = gate.visible(context, 'registry:read');
        const services = [...catalog.allServices()].filter(
          (s) => (namePrefix == null || s.name.startsWith(namePrefix)) && (eligibleOnly !== true || s.eligible().length > 0) && visible(s.name),
        );
        const { by = 'NAME', descending = false } = args.sort ?? {};
        const key = SORT_KEYS[by];
        const direction = descending ? -1 : 1;
        services.sort((a, b) => direction * (key(a) - key(b) || byName(a, b)));
        return services.slice(0, limit);
      },

      service(_root: unknown, { name }: { name: string }, context: GraphQLContext): ServiceView | null {
        refuseProblems([checkServiceName(name, 'name')]);
        gate.require(context, 'registry:read', name);
        return catalog.service(name) ?? null;
      },

      instances(_root: unknown, args: InstancesArgs, context: GraphQLContext): InstanceOut[] {
        const limit = pageSize(args.first);
        const f = args.filters ?? {};
        const tags = f.tags ?? [];
        refuseProblems([
          f.serviceName == null ? undefined : checkServiceName(f.serviceName, 'filters.serviceName'),
          prefixProblem(f.serviceNamePrefix, 'filters.serviceNamePrefix'),
          checkTags(tags, 'filters.tags'),
          checkVersion(f.version ?? '', 'filters.version'),
          checkZone(f.zone ?? '', 'filters.zone'),
        ]);
        const visible = gate.visible(context, 'registry:read');
        const selection = { tags, version: f.version ?? '', zone: f.zone ?? '', metadata: [] };
        const statuses = f.status == null ? null : new Set(f.status);
        const healths = f.health == null ? null : new Set(f.health);
        const out: InstanceOut[] = [];
        for (const service of [...catalog.allServices()].sort(byName)) {
          if (f.serviceName != null && service.name !== f.serviceName) continue;
          if (f.serviceNamePrefix != null && !service.name.startsWith(f.serviceNamePrefix)) continue;
          if (!visible(service.name)) continue;
          const eligible = f.eligibleOnly === true ? new Set(service.eligible()) : null;
          for (const entry of service.entries.values()) {
            if (out.length >= limit) return out;
            const { instance } = entry;
            if (!matchesFilter(instance, selection)) continue;
            if (statuses !== null && !statuses.has(instance.status)) continue;
            if (healths !== null && !healths.has(instance.health)) continue;
            if (eligible !== null && !eligible.has(instance)) continue;
            out.push(leasedInstanceView(entry));
          }
        }
        return out;
      },

      discover(_root: unknown, args: DiscoverArgs, context: GraphQLContext): InstanceOut | null {
        gate.require(context, 'discover', args.serviceName);
        if (args.key != null && args.key.length > MAX_HASH_KEY_LENGTH) {
          throw validationError([{ field: 'key', problem: `must be at most ${MAX_HASH_KEY_LENGTH} characters` }]);
        }
        const instance = discoverInstance(ctx, context.request.raw, {
          serviceName: args.serviceName,
          strategy: args.strategy ?? undefined,
          strategyField: 'strategy',
          // Tags cannot contain commas, so the REST form of the list loses nothing.
          tags: args.tags == null ? undefined : args.tags.join(','),
          version: args.version ?? undefined,
          zone: args.zone ?? undefined,
          key: args.key ?? undefined,
        });
        return instance === undefined ? null : instanceOut(catalog, instance);
      },

      cluster(_root: unknown, _args: unknown, context: GraphQLContext) {
        gate.require(context, 'ops:read', null);
        return clusterView(ctx);
      },

      revision(_root: unknown, _args: unknown, context: GraphQLContext): number {
        // A counter over every service that names none: anyone who may read some service may read it.
        gate.visible(context, 'registry:read');
        return catalog.revision;
      },
    },

    Service: {
      eligible: (service: ServiceView): number => service.eligible().length,
      instances: (service: ServiceView): InstanceOut[] => [...service.entries.values()].map(leasedInstanceView),
    },

    Instance: {
      service(instance: InstanceOut, _args: unknown, context: GraphQLContext): ServiceView | null {
        gate.require(context, 'registry:read', instance.serviceName);
        return catalog.service(instance.serviceName) ?? null;
      },
    },
  };
}
