/**
 * What tracing costs while it is off. Off, OpenTelemetry is not loaded at
 * all; the only code a request runs that a build without tracing would not
 * is the onRequest lookup of the caller's traceparent, echoed as x-trace-id
 * (src/http/app.ts). The bound is that lookup's cost over the server CPU a
 * discover request takes, both measured in this run.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { traceIdOf } from '../src/proxy/headers.ts';
import { measure, type LoadOptions } from './load.ts';
import { fmtNum, type Check } from './report.ts';
import { discoverPath, instance } from './requests.ts';
import { cpuSeconds, registerAll, startMaxine } from './servers.ts';
import type { Scenario } from './scenarios.ts';

const INSTANCES = 10;
const LOOKUPS = 20_000_000;
/** Header objects of different shapes, so the lookup is as polymorphic as on real requests. */
const SHAPES = 64;

/** Nanoseconds per traceparent lookup as the onRequest hook makes it (loop overhead included: an upper bound). */
function lookupNs(): number {
  const headers: IncomingHttpHeaders[] = [];
  for (let i = 0; i < SHAPES; i++) {
    headers.push({ host: '127.0.0.1:8080', connection: 'keep-alive', ...Object.fromEntries(Array.from({ length: i % 8 }, (_, k) => [`x-header-${i}-${k}`, 'v'])) });
  }
  let echoed = 0;
  const started = process.hrtime.bigint();
  for (let i = 0; i < LOOKUPS; i++) if (traceIdOf(headers[i & (SHAPES - 1)]!.traceparent) !== null) echoed++;
  const ns = Number(process.hrtime.bigint() - started) / LOOKUPS;
  if (echoed !== 0) throw new Error('no request here has a traceparent');
  return ns;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const tracingOff: Scenario = {
  name: 'tracing-off',
  title: `tracing off: the per-request traceparent lookup against the server CPU of a discover (one service of ${INSTANCES} instances)`,
  run: async (opts: LoadOptions): Promise<Check[]> => {
    const maxine = await startMaxine();
    try {
      await registerAll(maxine.url, INSTANCES, (i) => instance('bench-tracing', i));
      const target = { label: 'maxine', url: maxine.url, requests: [{ method: 'GET' as const, path: discoverPath('bench-tracing') }] };
      const cpuPerRequestNs: number[] = [];
      for (let round = 0; round < opts.rounds; round++) {
        if (opts.warmup > 0) await measure(target, opts.connections, 0, opts.warmup);
        const before = cpuSeconds(maxine.pid);
        const stats = await measure(target, opts.connections, 0, opts.duration);
        const cpu = cpuSeconds(maxine.pid) - before;
        cpuPerRequestNs.push((cpu * 1e9) / (stats.rps * opts.duration));
        console.log(`  round ${round + 1}: ${fmtNum(stats.rps)} req/s, server CPU ${fmtNum(cpuPerRequestNs.at(-1)! / 1000, 1)} µs per discover`);
      }
      const perRequest = median(cpuPerRequestNs);
      const lookup = lookupNs();
      console.log(`  traceparent lookup: ${fmtNum(lookup, 2)} ns`);
      return [
        {
          scenario: 'tracing-off',
          measure: 'lookup ns / discover CPU ns',
          value: lookup / perRequest,
          decimals: 5,
          target: { op: '<=', value: 0.02 },
          detail: `lookup ${fmtNum(lookup, 2)} ns | server CPU per discover ${fmtNum(perRequest / 1000, 1)} µs (median of ${opts.rounds})`,
        },
      ];
    } finally {
      await maxine.stop();
    }
  },
};

export const TRACING_SCENARIOS: readonly Scenario[] = [tracingOff];
