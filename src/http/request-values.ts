import { NO_FILTER, type SelectionFilter } from '../core/filter.ts';
import { parseStrategy } from '../core/selection/names.ts';
import type { StrategyName } from '../core/selection/strategy.ts';
import { checkTags, checkVersion, checkZone, checkMetadata, type FieldProblem } from '../core/validation.ts';
import { ApiError } from './errors.ts';

/** Comma-separated list from a query value; empty items are dropped. */
export function splitList(value: string | undefined): string[] {
  if (value === undefined || value === '') return [];
  return value.split(',').filter((item) => item !== '');
}

/** The strategy a query names, if it names one (refused when unknown); none means the runtime setting at the time of the pick. */
export function strategyParam(value: string | undefined, field: string): StrategyName | undefined {
  if (value === undefined || value === '') return undefined;
  const name = parseStrategy(value);
  if (name === undefined) {
    throw ApiError.validation([{ field, problem: `"${value}" is not a known strategy` }]);
  }
  return name;
}

/** Builds a selection filter from query values, refusing anything the registry would refuse to store. */
export function filterParams(query: { tags?: string; version?: string; zone?: string; meta?: string }): SelectionFilter {
  // Most discovers filter nothing: answer those without building anything.
  if (query.tags === undefined && query.version === undefined && query.zone === undefined && query.meta === undefined) {
    return NO_FILTER;
  }
  const tags = splitList(query.tags);
  const version = query.version ?? '';
  const zone = query.zone ?? '';
  const metadata: [string, string][] = [];
  const problems: FieldProblem[] = [];
  for (const pair of splitList(query.meta)) {
    const colon = pair.indexOf(':');
    if (colon <= 0) problems.push({ field: 'meta', problem: 'each entry must be key:value' });
    else metadata.push([pair.slice(0, colon), pair.slice(colon + 1)]);
  }
  const problem =
    problems[0] ??
    checkTags(tags) ??
    checkVersion(version) ??
    checkZone(zone) ??
    checkMetadata(Object.fromEntries(metadata), 'meta');
  if (problem) throw ApiError.validation([problem]);
  if (tags.length === 0 && version === '' && zone === '' && metadata.length === 0) return NO_FILTER;
  return { tags, version, zone, metadata };
}
