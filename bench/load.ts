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
}

/**
 * Rounds alternate maxine, bare, maxine, bare, ... so that drift on the shared
 * machine (other load, thermal state) spreads over both; each measured run
 * has its own warm-up because the target sat idle during the other's run.
 */
export async function compare(urls: { maxine: string; bare: string }, requests: readonly RequestShape[], opts: LoadOptions): Promise<Comparison> {
  const samples = { maxine: [] as LoadStats[], bare: [] as LoadStats[] };
  for (let round = 1; round <= opts.rounds; round++) {
    for (const target of ['maxine', 'bare'] as const) {
      if (opts.warmup > 0) await hit(target, urls[target], requests, opts.connections, opts.warmup);
      const stats = await hit(target, urls[target], requests, opts.connections, opts.duration);
      samples[target].push(stats);
      console.log(`  ${`round ${round}/${opts.rounds}`.padEnd(11)}  ${target.padEnd(6)}  ${fmtLoad(stats)}`);
    }
  }
  const maxine = mean(samples.maxine);
  const bare = mean(samples.bare);
  console.log(`  ${'mean'.padEnd(11)}  maxine  ${fmtLoad(maxine)}`);
  console.log(`  ${'mean'.padEnd(11)}  bare    ${fmtLoad(bare)}`);
  const roundRatios = samples.maxine.map((m, i) => m.rps / samples.bare[i]!.rps);
  return { maxine, bare, ratio: maxine.rps / bare.rps, roundRatios };
}

/**
 * One autocannon run; a run with any error or non-2xx answer measured
 * something else, so it fails. Latency percentiles come from each response's
 * time rather than autocannon's histogram, which keeps whole milliseconds:
 * too coarse when a bare answer takes a fraction of one.
 */
async function hit(target: string, url: string, requests: readonly RequestShape[], connections: number, seconds: number): Promise<LoadStats> {
  const latencies = new Latencies();
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    requests: [...requests],
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

function mean(samples: readonly LoadStats[]): LoadStats {
  const avg = (pick: (s: LoadStats) => number) => samples.reduce((sum, s) => sum + pick(s), 0) / samples.length;
  return { rps: avg((s) => s.rps), p50: avg((s) => s.p50), p99: avg((s) => s.p99) };
}
