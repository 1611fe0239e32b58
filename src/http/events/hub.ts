import type { Catalog } from '../../core/catalog.ts';
import type { EventType, RegistryEvent } from '../../core/events.ts';
import type { Instance } from '../../core/instance.ts';
import type { AccessPolicy } from '../../auth/access-policy.ts';
import { isSecurityKvKey } from '../../auth/security-kv.ts';
import type { Principal } from '../../auth/principal.ts';
import { EventFrames } from './frames.ts';
import { matches, type StreamFilter } from './filter.ts';

/** One live subscriber (a WebSocket or an SSE response); it owns its buffer and its wire format. */
export interface EventSink {
  /** Read per event: a WebSocket may sign in or refresh its token mid-stream. */
  readonly principal: Principal;
  readonly filters: readonly StreamFilter[];
  deliver(frames: EventFrames): void;
  /** The catalog was replaced (a store resync): what the subscriber holds may be stale. */
  reset(revision: number): void;
  /** Called on every ping tick: detect a dead peer, keep proxies from closing an idle stream. */
  ping(): void;
  /** Users, tokens, keys or ACL rules changed: verify the subscriber's credential again. */
  recheck(): void;
}

export interface EventLimits {
  /** Open streams one principal (or one anonymous address) may hold. */
  readonly maxConnectionsPerPrincipal: number;
  /** Bytes waiting to be written to one subscriber before it counts as slow. */
  readonly bufferBytes: number;
  readonly pingIntervalMs: number;
}

export interface EventStats {
  readonly connections: number;
  readonly sent: Readonly<Partial<Record<EventType, number>>>;
  readonly dropped: number;
  readonly resyncs: number;
}

export type Replay = { readonly kind: 'events'; readonly frames: EventFrames[] } | { readonly kind: 'resync'; readonly revision: number };

/**
 * Fans the catalog's events out to every subscriber whose filters match and
 * whose principal may see the event (discover on its service; config:read for
 * configuration events; keys under security/ never). Each event is serialised
 * once (EventFrames) whatever the number of subscribers.
 */
export class EventHub {
  private readonly sinks = new Set<EventSink>();
  private readonly perPrincipal = new Map<string, number>();
  private readonly sent = new Map<EventType, number>();
  private dropped = 0;
  private resyncs = 0;
  private readonly unsubscribe: () => void;
  private readonly pinger: NodeJS.Timeout;

  constructor(
    private readonly catalog: Catalog,
    private readonly policy: () => AccessPolicy,
    readonly limits: EventLimits,
  ) {
    this.unsubscribe = catalog.subscribe({
      event: (event) => this.fanOut(event),
      reset: (revision) => {
        for (const sink of this.sinks) sink.reset(revision);
      },
    });
    this.pinger = setInterval(() => {
      for (const sink of this.sinks) sink.ping();
    }, limits.pingIntervalMs);
    this.pinger.unref();
  }

  get revision(): number {
    return this.catalog.revision;
  }

  /** Adds a subscriber; null when `owner` already holds as many streams as it may. */
  open(sink: EventSink, owner: string): (() => void) | null {
    const release = this.reserve(owner);
    if (release === null) return null;
    this.sinks.add(sink);
    return () => {
      this.sinks.delete(sink);
      release();
    };
  }

  /**
   * Counts one stream against `owner`'s cap; null when it holds as many as
   * it may. For streams that follow the catalog without a sink here (GraphQL
   * subscription connections), so every kind of live stream shares one cap.
   * The release is idempotent.
   */
  reserve(owner: string): (() => void) | null {
    const held = this.perPrincipal.get(owner) ?? 0;
    if (held >= this.limits.maxConnectionsPerPrincipal) return null;
    this.perPrincipal.set(owner, held + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.perPrincipal.get(owner) ?? 1) - 1;
      if (left === 0) this.perPrincipal.delete(owner);
      else this.perPrincipal.set(owner, left);
    };
  }

  visible(principal: Principal, event: RegistryEvent, policy: AccessPolicy = this.policy()): boolean {
    if (event.type === 'config_changed') return !isSecurityKvKey(event.key) && policy.decide(principal, 'config:read', null).allowed;
    return policy.decide(principal, 'discover', event.service).allowed;
  }

  /** The events after `revision` that `filter` matches and `principal` may see, or a resync when the ring no longer reaches back. */
  replay(principal: Principal, filter: StreamFilter, revision: number): Replay {
    const since = this.catalog.eventsSince(revision);
    if (since.kind === 'resync') return { kind: 'resync', revision: this.catalog.revision };
    const policy = this.policy();
    const frames = since.events.filter((e) => matches(filter, e) && this.visible(principal, e, policy)).map((e) => new EventFrames(e));
    return { kind: 'events', frames };
  }

  /** What a subscriber that must resync starts again from: the instances it may see that `filter` matches. */
  snapshot(principal: Principal, filter: StreamFilter): Instance[] {
    const policy = this.policy();
    const out: Instance[] = [];
    for (const service of this.catalog.allServices()) {
      if (filter.matchesService !== null && !filter.matchesService(service.name)) continue;
      if (!policy.decide(principal, 'discover', service.name).allowed) continue;
      for (const { instance } of service.entries.values()) {
        if (filter.nodeId === null || filter.nodeId === `${instance.service}:${instance.id}`) out.push(instance);
      }
    }
    return out;
  }

  countSent(type: EventType): void {
    this.sent.set(type, (this.sent.get(type) ?? 0) + 1);
  }

  countDropped(): void {
    this.dropped++;
  }

  countResync(): void {
    this.resyncs++;
  }

  stats(): EventStats {
    return { connections: this.sinks.size, sent: Object.fromEntries(this.sent), dropped: this.dropped, resyncs: this.resyncs };
  }

  close(): void {
    clearInterval(this.pinger);
    this.unsubscribe();
  }

  private fanOut(event: RegistryEvent): void {
    if (this.sinks.size === 0) return;
    if (event.type === 'config_changed' && isSecurityKvKey(event.key)) {
      // Rare (an admin's change), so every credential is checked again rather than tracked by user.
      for (const sink of this.sinks) sink.recheck();
      return;
    }
    const frames = new EventFrames(event);
    const policy = this.policy();
    for (const sink of this.sinks) {
      if (sink.filters.some((f) => matches(f, event)) && this.visible(sink.principal, event, policy)) sink.deliver(frames);
    }
  }
}
