import type { Catalog } from '../catalog.ts';
import { isEmptyFilter, matchesFilter, type SelectionFilter } from '../filter.ts';
import type { Instance } from '../instance.ts';
import type { PickContext, StrategyName } from './strategy.ts';
import { instanceKey } from '../keys.ts';

/** Rotating and random strategies may answer differently when asked again; this many tries before walking. */
const REPICKS = 2;

/**
 * The `pick` a forward needs: the strategy's choice, unless its key is in
 * `exclude`. Asking again helps the rotating and random strategies; the
 * hashing ones give the same answer every time, so then the next eligible
 * instance after their choice (in id order, wrapping) that is not excluded
 * is taken: the same fallback for the same key, and no instance is skipped.
 */
export function pickAvoiding(
  catalog: Catalog,
  service: string,
  filter: SelectionFilter,
  strategy: StrategyName,
  ctx: PickContext,
  exclude: ReadonlySet<string>,
): Instance | undefined {
  const first = catalog.pick(service, filter, strategy, ctx);
  if (first === undefined || exclude.size === 0 || !exclude.has(instanceKey(first.service, first.id))) return first;
  for (let i = 0; i < REPICKS; i++) {
    const again = catalog.pick(service, filter, strategy, ctx);
    if (again !== undefined && !exclude.has(instanceKey(again.service, again.id))) return again;
  }
  const eligible = catalog.service(service)?.eligible() ?? [];
  const candidates = isEmptyFilter(filter) ? eligible : eligible.filter((instance) => matchesFilter(instance, filter));
  const start = candidates.indexOf(first);
  for (let i = 1; i <= candidates.length; i++) {
    const candidate = candidates[(start + i) % candidates.length]!;
    if (!exclude.has(instanceKey(candidate.service, candidate.id))) return candidate;
  }
  return undefined;
}
