import type { Instance } from './instance.ts';

/** Narrows a service's eligible instances before a strategy picks. */
export interface SelectionFilter {
  /** The instance must carry every one of these tags. */
  readonly tags: readonly string[];
  /** '' means any version. */
  readonly version: string;
  /** '' means any zone. */
  readonly zone: string;
  /** Each pair must be present with exactly this value. */
  readonly metadata: readonly (readonly [string, string])[];
}

export const NO_FILTER: SelectionFilter = Object.freeze({ tags: [], version: '', zone: '', metadata: [] });

export function isEmptyFilter(filter: SelectionFilter): boolean {
  return filter.tags.length === 0 && filter.version === '' && filter.zone === '' && filter.metadata.length === 0;
}

/**
 * A canonical string for a filter, so equal filters share one cached view
 * whatever the order their parts were given in. JSON keeps it unambiguous
 * for any characters the parts contain.
 */
export function filterKey(filter: SelectionFilter): string {
  return JSON.stringify([
    [...filter.tags].sort(),
    filter.version,
    filter.zone,
    [...filter.metadata].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)),
  ]);
}

export function matchesFilter(instance: Instance, filter: SelectionFilter): boolean {
  if (filter.version !== '' && instance.version !== filter.version) return false;
  if (filter.zone !== '' && instance.zone !== filter.zone) return false;
  for (const tag of filter.tags) if (!instance.tags.includes(tag)) return false;
  for (const [key, value] of filter.metadata) {
    if (!Object.hasOwn(instance.metadata, key) || instance.metadata[key] !== value) return false;
  }
  return true;
}
