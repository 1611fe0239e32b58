import assert from 'node:assert/strict';
import { Catalog } from '../../core/catalog.ts';
import type { Change, Snapshot } from '../../core/changes.ts';
import type { RegistryEvent } from '../../core/events.ts';
import type { Instance } from '../../core/instance.ts';

/** A real catalog that also checks and records what the store delivers. */
export class CheckedCatalog extends Catalog {
  readonly applied: number[] = [];
  readonly removals: Array<{ key: string; reason: string; at: number }> = [];
  resets = 0;

  constructor() {
    super(10_000);
    this.subscribe({
      event: (event: RegistryEvent) => {
        if (event.type === 'service_expired' || event.type === 'service_deregistered' || event.type === 'service_evicted') {
          this.removals.push({ key: `${event.service}/${event.id}`, reason: event.type, at: Date.now() });
        }
      },
      reset: () => {},
    });
  }

  override apply(change: Change): void {
    const last = this.applied.at(-1) ?? this.revision;
    assert.ok(change.revision > last, `revision ${change.revision} delivered after ${last}`);
    this.applied.push(change.revision);
    super.apply(change);
  }

  override reset(snapshot: Snapshot): void {
    this.resets++;
    this.applied.length = 0;
    super.reset(snapshot);
  }

  /** How the instance `service/id` was removed (the event type), if it was. */
  removalOf(key: string): string | undefined {
    return this.removals.find((r) => r.key === key)?.reason;
  }

  /** A comparable picture of the whole state, lease timing aside (renewals are not visible changes). */
  picture(): { revision: number; instances: Instance[]; kv: Array<readonly [string, string]> } {
    const snapshot = this.snapshot();
    const order = (a: Instance, b: Instance) => (`${a.service}/${a.id}` < `${b.service}/${b.id}` ? -1 : 1);
    return {
      revision: snapshot.revision,
      instances: snapshot.instances.map((entry) => entry.instance).sort(order),
      kv: [...snapshot.kv].sort((a, b) => (a[0] < b[0] ? -1 : 1)),
    };
  }
}
