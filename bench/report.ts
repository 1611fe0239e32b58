/** Formatting of results and the final summary table. */
import type { LoadStats } from './load.ts';

/** One measured value with its target, a row of the summary. */
export interface Check {
  readonly scenario: string;
  readonly measure: string;
  readonly value: number;
  /** Decimals to print the value and target with. */
  readonly decimals: number;
  /** Absent for a figure recorded without a target. */
  readonly target?: { readonly op: '>=' | '<='; readonly value: number };
  readonly detail: string;
}

/** A scenario that could not be measured (an error, not a missed target). */
export interface Failure {
  readonly scenario: string;
  readonly error: string;
}

export function passes(check: Check): boolean {
  const { target } = check;
  if (target === undefined) return true;
  return target.op === '>=' ? check.value >= target.value : check.value <= target.value;
}

export function fmtNum(value: number, decimals = 0): string {
  return value.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

export function fmtTarget(check: Check): string {
  return check.target === undefined ? 'none' : `${check.target.op} ${fmtNum(check.target.value, check.decimals)}`;
}

export function verdict(check: Check): string {
  if (check.target === undefined) return 'recorded';
  return passes(check) ? 'ok' : 'MISS';
}

export function fmtLoad(s: LoadStats): string {
  return `${fmtNum(s.rps).padStart(7)} req/s  p50 ${fmtNum(s.p50, 2).padStart(6)} ms  p99 ${fmtNum(s.p99, 2).padStart(6)} ms`;
}

/** Prints one line per check and failure, columns aligned. */
export function printSummary(checks: readonly Check[], failures: readonly Failure[]): void {
  const header = ['scenario', 'measure', 'value', 'target', '', 'detail'];
  const rows = checks.map((c) => [c.scenario, c.measure, fmtNum(c.value, c.decimals), fmtTarget(c), verdict(c), c.detail]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  // Numbers right-aligned, text left-aligned; the last column is not padded.
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : i === 2 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  console.log(line(header));
  for (const row of rows) console.log(line(row));
  for (const f of failures) console.log(`${f.scenario.padEnd(widths[0]!)}  FAILED: ${f.error.split('\n')[0]}`);
}
