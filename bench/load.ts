/** HTTP load with autocannon, alternating Maxine and the bare server round by round. */
import autocannon from 'autocannon';
import { fmtLoad } from './report.ts';
import type { RequestShape } from './servers.ts';

export interface LoadOptions {
  /** Seconds per measured run. */
  readonly duration: number;
  /** Seconds of discarded load before each measured run. */
  readonly warmup: number;
  /** Measured runs per target. */
  readonly rounds: number;
  readonly connections: number;
}

export interface LoadStats {
  readonly rps: number;
  /** Milliseconds. */
  readonly p50: number;
  readonly p99: number;
}

export interface Comparison {
  readonly maxine: LoadStats;
  readonly bare: LoadStats;
  /** maxine req/s over bare req/s, of the means. */
  readonly ratio: number;
  /** The same per round: their spread shows how much the machine's noise moved the result. */
  readonly roundRatios: readonly number[];
  /** Every measured round of each target, in order. */
  readonly rounds: { readonly maxine: readonly LoadStats[]; readonly bare: readonly LoadStats[] };
  /** Further targets measured in the same rounds (compareTargets' `references`): the mean and the rounds of each. */
  readonly references: readonly { readonly mean: LoadStats; readonly rounds: readonly LoadStats[] }[];
}

/** One side of a comparison: where the load goes, what it sends, and the name printed for it. */
export interface LoadTarget {
  readonly label: string;
  readonly url: string;
  readonly requests: readonly RequestShape[];
}

/**
 * Rounds alternate maxine, bare, then each reference (a floor), maxine, bare,
 * ... so that drift on the shared machine (other load, thermal state) spreads
 * over all of them; each measured run has its own warm-up because the target
 * sat idle during the others' runs. `maxine` is the side measured, `bare` the
 * reference its ratio is taken against; the targets may take different
 * requests (the proxy's path against the upstream's own); the labels are
 * only what is printed.
 */
export async function compareTargets(maxine: LoadTarget, bare: LoadTarget, opts: LoadOptions, references: readonly LoadTarget[] = []): Promise<Comparison> {
  const targets = [maxine, bare, ...references];
  const samples = targets.map(() => [] as LoadStats[]);
  const width = Math.max(6, ...targets.map((t) => t.label.length));
  for (let round = 1; round <= opts.rounds; round++) {
    for (const [i, target] of targets.entries()) {
      const stats = await measure(target, opts.connections, opts.warmup, opts.duration);
      samples[i]!.push(stats);
      console.log(`  ${`round ${round}/${opts.rounds}`.padEnd(11)}  ${target.label.padEnd(width)}  ${fmtLoad(stats)}`);
    }
  }
  const means = samples.map(mean);
  for (const [i, target] of targets.entries()) console.log(`  ${'mean'.padEnd(11)}  ${target.label.padEnd(width)}  ${fmtLoad(means[i]!)}`);
  const [maxineSamples, bareSamples] = [samples[0]!, samples[1]!];
  const roundRatios = maxineSamples.map((m, i) => m.rps / bareSamples[i]!.rps);
  return {
    maxine: means[0]!,
    bare: means[1]!,
    ratio: means[0]!.rps / means[1]!.rps,
    roundRatios,
    rounds: { maxine: maxineSamples, bare: bareSamples },
    references: references.map((_, i) => ({ mean: means[i + 2]!, rounds: samples[i + 2]! })),
  };
}

/**
 * `warmup` seconds of discarded load (none for 0), then one measured run of
 * `duration` seconds; as fast as the target answers, or at `rate` requests
 * per second over all connections.
 */
export async function measure(target: LoadTarget, connections: number, warmup: number, duration: number, rate?: number): Promise<LoadStats> {
  if (warmup > 0) await hit(target.label, target.url, target.requests, connections, warmup, rate);
  return hit(target.label, target.url, target.requests, connections, duration, rate);
}

/**
 * One autocannon run; a run with any error or non-2xx answer measured
 * something else, so it fails. Latency percentiles come from each response's
 * time rather than autocannon's histogram, which keeps whole milliseconds:
 * too coarse when a bare answer takes a fraction of one.
 */
async function hit(
  target: string,
  url: string,
  requests: readonly RequestShape[],
  connections: number,
  seconds: number,
  rate?: number,
): Promise<LoadStats> {
  const latencies = new Latencies();
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    requests: [...requests],
    ...(rate === undefined ? {} : { overallRate: rate }),
  }).on('response', (_client, _status, _bytes, ms) => latencies.add(ms));
  const problems = [
    result.errors > 0 ? `${result.errors} errors` : '',
    result.timeouts > 0 ? `${result.timeouts} timeouts` : '',
    result.non2xx > 0 ? `${result.non2xx} non-2xx answers` : '',
  ].filter((p) => p !== '');
  if (problems.length > 0) throw new Error(`${target}: ${problems.join(', ')} under load; the measurement is not valid`);
  const sorted = latencies.sorted();
  return { rps: result.requests.average, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) };
}

/** Response times of one run in a growing typed array: no per-response allocation in the load generator. */
class Latencies {
  private values = new Float64Array(1 << 16);
  private count = 0;

  add(ms: number): void {
    if (this.count === this.values.length) {
      const bigger = new Float64Array(this.values.length * 2);
      bigger.set(this.values);
      this.values = bigger;
    }
    this.values[this.count++] = ms;
  }

  sorted(): Float64Array {
    return this.values.subarray(0, this.count).sort();
  }
}

/** Nearest-rank percentile of ascending values; 0 for an empty run (which fails above anyway). */
function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
}

export function mean(samples: readonly LoadStats[]): LoadStats {
  const avg = (pick: (s: LoadStats) => number) => samples.reduce((sum, s) => sum + pick(s), 0) / samples.length;
  return { rps: avg((s) => s.rps), p50: avg((s) => s.p50), p99: avg((s) => s.p99) };
}
