import { EVENT_TYPES, type EventType, type RegistryEvent } from '../../core/events.ts';
import type { FieldProblem } from '../../core/validation.ts';
import { compilePattern, PATTERN_SOURCE, type NamePattern } from '../../auth/glob.ts';

/** What one subscription asks for; every part left out matches everything. */
export interface StreamFilter {
  readonly types: ReadonlySet<EventType> | null;
  /** Service-name pattern as given (`orders-*`), echoed back to the subscriber. */
  readonly serviceName: string | null;
  readonly nodeId: string | null;
  readonly matchesService: NamePattern | null;
}

export interface FilterSpec {
  /** One event type, or several comma-separated. */
  readonly event?: unknown;
  readonly serviceName?: unknown;
  /** `serviceName:instanceId`, the Lightning routes' node id. */
  readonly nodeId?: unknown;
}

const PATTERN = new RegExp(PATTERN_SOURCE);
const NODE_ID = /^[^\x00-\x1f\x7f]{1,400}$/;
const TYPES = new Set<string>(EVENT_TYPES);

export function parseFilter(spec: FilterSpec): { filter: StreamFilter } | { problems: FieldProblem[] } {
  const problems: FieldProblem[] = [];
  let types: Set<EventType> | null = null;
  if (spec.event !== undefined && spec.event !== null && spec.event !== '') {
    const names = typeof spec.event === 'string' ? spec.event.split(',').map((t) => t.trim()) : Array.isArray(spec.event) ? spec.event : [null];
    if (names.every((t): t is EventType => typeof t === 'string' && TYPES.has(t))) types = new Set(names);
    else problems.push({ field: 'event', problem: `must be one or more of ${EVENT_TYPES.join(', ')}` });
  }
  let serviceName: string | null = null;
  if (spec.serviceName !== undefined && spec.serviceName !== null && spec.serviceName !== '') {
    if (typeof spec.serviceName === 'string' && PATTERN.test(spec.serviceName)) serviceName = spec.serviceName;
    else problems.push({ field: 'serviceName', problem: 'must be a service name or a pattern with * wildcards' });
  }
  let nodeId: string | null = null;
  if (spec.nodeId !== undefined && spec.nodeId !== null && spec.nodeId !== '') {
    if (typeof spec.nodeId === 'string' && NODE_ID.test(spec.nodeId)) nodeId = spec.nodeId;
    else problems.push({ field: 'nodeId', problem: 'must be serviceName:instanceId' });
  }
  if (problems.length > 0) return { problems };
  return { filter: { types, serviceName, nodeId, matchesService: serviceName === null ? null : compilePattern(serviceName) } };
}

/** Everything: what an SSE stream or a fresh WebSocket subscription without parameters follows. */
export const EVERYTHING: StreamFilter = { types: null, serviceName: null, nodeId: null, matchesService: null };

export function matches(filter: StreamFilter, event: RegistryEvent): boolean {
  if (filter.types !== null && !filter.types.has(event.type)) return false;
  if (event.type === 'config_changed') return filter.matchesService === null && filter.nodeId === null;
  if (filter.matchesService !== null && !filter.matchesService(event.service)) return false;
  return filter.nodeId === null || filter.nodeId === `${event.service}:${event.id}`;
}

/** How a filter is echoed back (`subscribed`): what the subscriber asked for, in plain JSON. */
export function describeFilter(filter: StreamFilter): { event: string[] | null; serviceName: string | null; nodeId: string | null } {
  return { event: filter.types === null ? null : [...filter.types], serviceName: filter.serviceName, nodeId: filter.nodeId };
}
