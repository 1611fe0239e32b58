import type { Instance } from './instance.ts';

export const EVENT_TYPES = [
  'service_registered',
  'service_updated',
  'service_deregistered',
  'service_expired',
  'service_evicted',
  'health_changed',
  'config_changed',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface InstanceEvent {
  readonly type: Exclude<EventType, 'config_changed'>;
  readonly revision: number;
  /** Epoch ms when this replica applied the change. */
  readonly timestamp: number;
  readonly service: string;
  readonly id: string;
  /** The instance as it is after the change, or as it was before a removal. */
  readonly instance: Instance;
}

export interface ConfigEvent {
  readonly type: 'config_changed';
  readonly revision: number;
  readonly timestamp: number;
  readonly key: string;
  readonly value: string | null;
}

export type RegistryEvent = InstanceEvent | ConfigEvent;

/**
 * Events about this replica only, not the shared registry: the proxy's
 * outlier detection ejects an instance from this replica's picks for a
 * while (each replica judges the traffic it carries itself). They carry the
 * catalog's revision when they happened but take none of their own, are not
 * kept in the event ring and so are never replayed to a watcher resuming
 * from a revision.
 */
export const LOCAL_EVENT_TYPES = ['instance_ejected', 'instance_restored'] as const;
export type LocalEventType = (typeof LOCAL_EVENT_TYPES)[number];

export interface LocalEvent {
  readonly type: LocalEventType;
  /** The catalog's revision when it happened (not a revision of its own). */
  readonly revision: number;
  readonly timestamp: number;
  readonly service: string;
  readonly id: string;
  readonly instance: Instance;
  /** Why, for people: e.g. "5 consecutive 5xx responses; ejected for 30 s". */
  readonly reason: string;
}

export type EventsSince =
  | { readonly kind: 'events'; readonly events: readonly RegistryEvent[] }
  /** The ring no longer holds everything after the requested revision. */
  | { readonly kind: 'resync'; readonly oldest: number };

/**
 * A bounded ring of recent events. Watchers resume from a revision; one that
 * fell further behind than the ring reaches gets an explicit resync instead
 * of a silent gap.
 */
export class EventRing {
  private readonly slots: (RegistryEvent | undefined)[];
  private next = 0;
  private size = 0;
  /** Revision up to which the ring is complete (events after it are all held). */
  private floor: number;

  constructor(
    readonly capacity: number,
    startRevision = 0,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be a positive integer');
    this.slots = new Array<RegistryEvent | undefined>(capacity);
    this.floor = startRevision;
  }

  push(event: RegistryEvent): void {
    if (this.size === this.capacity) {
      const evicted = this.slots[this.next];
      if (evicted) this.floor = evicted.revision;
    } else {
      this.size++;
    }
    this.slots[this.next] = event;
    this.next = (this.next + 1) % this.capacity;
  }

  /** Forget everything (after a snapshot reset): complete only from `revision`. */
  clear(revision: number): void {
    this.slots.fill(undefined);
    this.next = 0;
    this.size = 0;
    this.floor = revision;
  }

  /** Events with a revision greater than `revision`, oldest first. */
  since(revision: number): EventsSince {
    if (revision < this.floor) return { kind: 'resync', oldest: this.floor };
    const events: RegistryEvent[] = [];
    const start = (this.next - this.size + this.capacity) % this.capacity;
    for (let i = 0; i < this.size; i++) {
      const event = this.slots[(start + i) % this.capacity]!;
      if (event.revision > revision) events.push(event);
    }
    return { kind: 'events', events };
  }
}
