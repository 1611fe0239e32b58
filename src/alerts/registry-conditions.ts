import type { Catalog, ServiceView } from '../core/catalog.ts';
import { isEligible, type Instance } from '../core/instance.ts';
import type { Condition } from './rules.ts';
import type { InstanceThresholds } from './thresholds.ts';

function instanceKey(service: string, id: string): string {
  return `${service}\u0000${id}`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * The cluster rules' conditions, kept in step with the catalog's events:
 * a service is counted again only after one of its instances changed, and
 * an instance's eviction is set or cleared by its own event, so an
 * evaluation never walks the whole catalog (except after a reset).
 */
export class RegistryConditions {
  /** Services whose eligible count must be taken again. */
  private readonly dirty = new Set<string>();
  private readonly low = new Map<string, Condition>();
  private readonly evicted = new Map<string, Condition>();
  private rebuild = true;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly catalog: Catalog,
    private readonly thresholds: InstanceThresholds,
  ) {
    this.unsubscribe = catalog.subscribe({
      event: (event) => {
        if (event.type === 'config_changed') return;
        this.dirty.add(event.service);
        const key = instanceKey(event.service, event.id);
        const removed = event.type === 'service_deregistered' || event.type === 'service_expired' || event.type === 'service_evicted';
        if (removed || event.instance.health !== 'critical') this.evicted.delete(key);
        else this.evicted.set(key, evictedCondition(event.instance));
      },
      reset: () => {
        this.rebuild = true;
      },
    });
  }

  /** Appends every condition that holds now. */
  collect(into: Condition[]): void {
    if (this.rebuild) this.rebuildAll();
    for (const service of this.dirty) this.count(service);
    this.dirty.clear();
    for (const condition of this.low.values()) into.push(condition);
    for (const condition of this.evicted.values()) into.push(condition);
  }

  close(): void {
    this.unsubscribe();
  }

  /** At start and after a resync, when events no longer say what changed. */
  private rebuildAll(): void {
    this.rebuild = false;
    this.low.clear();
    this.evicted.clear();
    for (const service of this.catalog.allServices()) {
      this.dirty.add(service.name);
      for (const { instance } of service.entries.values()) {
        if (instance.health === 'critical') this.evicted.set(instanceKey(instance.service, instance.id), evictedCondition(instance));
      }
    }
    for (const name of this.thresholds.namedServices()) this.dirty.add(name);
  }

  private count(name: string): void {
    this.low.delete(name);
    const min = this.thresholds.of(name);
    if (min === 0) return;
    const service = this.catalog.service(name);
    // Absent services are watched only when named with a threshold of their own.
    if (service === undefined && !this.thresholds.isNamed(name)) return;
    const eligible = service === undefined ? 0 : eligibleCount(service);
    if (eligible >= min) return;
    const registered = service === undefined ? 0 : service.entries.size;
    this.low.set(name, {
      rule: 'service_instances_low',
      service: name,
      instanceId: null,
      replica: null,
      summary: `${name} has ${plural(eligible, 'eligible instance')} (threshold ${min}; ${registered} registered)`,
      details: { eligible, threshold: min, registered },
    });
  }
}

/** Registry eligibility (status up, not critical): the same on every replica, unlike this replica's outlier ejections. */
function eligibleCount(service: ServiceView): number {
  let n = 0;
  for (const { instance } of service.entries.values()) if (isEligible(instance)) n++;
  return n;
}

/** Only the leader's health checks write `critical`: a critical instance is one its checks evicted from the picks. */
function evictedCondition(instance: Instance): Condition {
  return {
    rule: 'instance_evicted',
    service: instance.service,
    instanceId: instance.id,
    replica: null,
    summary: `${instance.service} instance ${instance.id} failed its health checks (${instance.healthReason}) and gets no traffic`,
    details: { reason: instance.healthReason, address: instance.address, since: new Date(instance.healthChangedAt).toISOString() },
  };
}
