/**
 * Scenarios with real upstream services behind Maxine (bench/upstream-server.ts
 * in child processes on 127.0.0.1): the proxy's throughput against the same
 * upstream loaded directly, and what active health checks of 10,000
 * instances cost discover's latency.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from './children.ts';
import { compareTargets, mean, measure, type LoadOptions, type LoadStats, type LoadTarget } from './load.ts';
import { fmtLoad, fmtNum } from './report.ts';
import { discoverPath } from './requests.ts';
import type { Scenario } from './scenarios.ts';
import { cpuSeconds, getJson, mainThreadCpuSeconds, registerAll, startMaxine, startMinimalProxy, startUpstream, waitForSnapshot, type MaxineServer, type Registration, type Upstream } from './servers.ts';
import type { HealthCheckerStats } from '../src/health/checker.ts';

/** Long enough that nothing expires during a run. */
const TTL_SEC = 3600;

interface Stoppable {
  stop(): Promise<unknown>;
}

/** Stops every server (last started first), even when one of them fails to stop; the first failure is rethrown. */
async function stopAll(servers: Stoppable[]): Promise<void> {
  let failure: unknown;
  for (const server of servers.reverse()) {
    try {
      await server.stop();
    } catch (error) {
      failure ??= error;
    }
  }
  servers.length = 0;
  if (failure !== undefined) throw failure;
}

const meanOf = (values: readonly number[]) => values.reduce((sum, v) => sum + v, 0) / values.length;

async function getOnce(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text() };
}

// ---- proxy ---------------------------------------------------------------

const PROXY_SERVICE = 'bench-proxy';

/** The proxy's part of GET /api/actuator/upstreams (ProxyStats in src/proxy/proxy.ts). */
interface ProxyStats {
  readonly requests: number;
  readonly retries: number;
  readonly clientAborts: number;
  readonly upstreamResponses: Record<string, number>;
  readonly answered: Record<string, number>;
}

/**
 * GET /proxy/bench-proxy/hello through Maxine against GET /hello straight to
 * the upstream it forwards to, same autocannon settings, rounds alternating.
 * The service has ONE instance, the upstream's only port: every proxied
 * request takes the same path as a direct one, plus Maxine. The three
 * processes (load generator, Maxine, upstream) share the machine's cores;
 * in the direct rounds Maxine sits idle. A third target in the same rounds,
 * bench/minimal-proxy.ts in front of the same upstream, shows the floor: what
 * a proxy that only relays reaches on this machine.
 */
const proxy: Scenario = {
  name: 'proxy',
  title: `GET /proxy/${PROXY_SERVICE}/hello through Maxine (1 instance) against GET /hello straight to the same upstream`,
  run: async (opts) => {
    const servers: Stoppable[] = [];
    try {
      const upstream = await startUpstream(1);
      servers.push(upstream);
      const maxine = await startMaxine();
      servers.push(maxine);
      const port = upstream.ports[0]!;
      await registerAll(maxine.url, 1, () => ({
        hostName: '127.0.0.1',
        nodeName: 'node-0',
        serviceName: PROXY_SERVICE,
        port,
        timeOut: TTL_SEC,
        weight: 1,
      }));
      const minimal = await startMinimalProxy(`http://127.0.0.1:${port}`);
      servers.push(minimal);
      const direct: LoadTarget = { label: 'direct', url: `http://127.0.0.1:${port}`, requests: [{ method: 'GET', path: '/hello' }] };
      const proxied: LoadTarget = { label: 'proxy', url: maxine.url, requests: [{ method: 'GET', path: `/proxy/${PROXY_SERVICE}/hello` }] };
      const floor: LoadTarget = { label: 'minimal proxy', url: minimal.url, requests: [{ method: 'GET', path: '/hello' }] };
      // Every way must give the upstream's answer, byte for byte, before any is loaded.
      const straight = await getOnce(direct.url + direct.requests[0]!.path);
      for (const target of [proxied, floor]) {
        const through = await getOnce(target.url + target.requests[0]!.path);
        if (straight.status !== 200 || through.status !== 200 || straight.body !== through.body) {
          throw new Error(`the ${target.label} does not relay the upstream's answer: direct ${straight.status} ${straight.body} | ${target.label} ${through.status} ${through.body}`);
        }
      }
      console.log(`  upstream on 127.0.0.1:${port} answers ${Buffer.byteLength(straight.body)} bytes of JSON; one instance registered`);

      const pids = { maxine: maxine.pid, upstream: upstream.pid, minimal: minimal.pid };
      const cpuBefore = { maxine: cpuSeconds(pids.maxine), upstream: cpuSeconds(pids.upstream), minimal: cpuSeconds(pids.minimal) };
      const result = await compareTargets(proxied, direct, opts, [floor]);
      const cpu = {
        maxine: cpuSeconds(pids.maxine) - cpuBefore.maxine,
        upstream: cpuSeconds(pids.upstream) - cpuBefore.upstream,
        minimal: cpuSeconds(pids.minimal) - cpuBefore.minimal,
      };
      const floorResult = result.references[0]!;

      const { proxy: stats } = await getJson<{ proxy: ProxyStats }>(`${maxine.url}/api/actuator/upstreams?serviceName=${PROXY_SERVICE}`, maxine.token);
      const ownAnswers = Object.values(stats.answered).reduce((sum, n) => sum + n, 0);
      const upstreamErrors = (stats.upstreamResponses['4xx'] ?? 0) + (stats.upstreamResponses['5xx'] ?? 0);
      console.log(
        `  Maxine's proxy: ${fmtNum(stats.requests)} requests, ${stats.retries} retries, ${ownAnswers} answered by Maxine itself, ${upstreamErrors} upstream 4xx/5xx, ${stats.clientAborts} client aborts (requests in flight when a run ends)`,
      );
      // autocannon already fails a run with a non-2xx; a retry would hide an upstream failure behind a 2xx.
      if (stats.retries > 0 || ownAnswers > 0 || upstreamErrors > 0) {
        throw new Error(`the proxy retried or answered errors (${JSON.stringify(stats)}); the measurement is not valid`);
      }
      await stopAll(servers);
      const served = await upstream.stop();
      if ((served.other ?? 0) > 0) throw new Error(`the upstream answered ${served.other} requests for unknown paths with 404`);
      // Over every run, warm-ups included; each proxy idles through the others' rounds (a few ms of timers).
      const maxineUs = (cpu.maxine * 1e6) / stats.requests;
      const upstreamUs = (cpu.upstream * 1e6) / (served['/hello'] ?? 1);
      // The minimal proxy keeps no count of its own: its requests are the upstream's less Maxine's and the direct rounds'.
      const secondsPerRound = opts.warmup + opts.duration;
      const minimalRequests = floorResult.mean.rps * secondsPerRound * opts.rounds;
      const minimalUs = (cpu.minimal * 1e6) / minimalRequests;
      console.log(
        `  CPU per request: Maxine ${fmtNum(maxineUs, 1)} µs per proxied request; minimal proxy about ${fmtNum(minimalUs, 1)} µs; upstream ${fmtNum(upstreamUs, 1)} µs per request (all rounds)`,
      );

      const floorRatio = floorResult.mean.rps / result.bare.rps;
      console.log(`  the minimal proxy reaches ${fmtNum(floorRatio, 2)} of direct in the same rounds; Maxine ${fmtNum(result.maxine.rps / floorResult.mean.rps, 2)} of the minimal proxy`);
      const p99s = { proxy: result.rounds.maxine.map((s) => s.p99), direct: result.rounds.bare.map((s) => s.p99) };
      const added = result.maxine.p99 - result.bare.p99;
      console.log(`  p99 added by Maxine: ${fmtNum(added, 2)} ms (proxy ${fmtNum(result.maxine.p99, 2)} ms - direct ${fmtNum(result.bare.p99, 2)} ms)`);
      return [
        {
          scenario: 'proxy',
          measure: 'req/s proxy/direct',
          value: result.ratio,
          decimals: 2,
          target: { op: '>=', value: 0.5 },
          detail:
            `rounds ${result.roundRatios.map((r) => fmtNum(r, 2)).join(' ')} | proxy ${fmtLoad(result.maxine)} | direct ${fmtLoad(result.bare)} | ` +
            `CPU/request Maxine ${fmtNum(maxineUs, 1)} µs, upstream ${fmtNum(upstreamUs, 1)} µs`,
        },
        {
          scenario: 'proxy',
          measure: 'req/s minimal proxy/direct',
          value: floorRatio,
          decimals: 2,
          detail:
            `the floor: node:http + undici dispatch relaying status, headers and body, nothing else | rounds ${floorResult.rounds.map((r, i) => fmtNum(r.rps / result.rounds.bare[i]!.rps, 2)).join(' ')} | ` +
            `minimal ${fmtLoad(floorResult.mean)} | CPU/request about ${fmtNum(minimalUs, 1)} µs`,
        },
        {
          scenario: 'proxy',
          measure: 'p99 ms added by Maxine',
          value: added,
          decimals: 2,
          detail: `mean proxy p99 - mean direct p99; rounds ${p99s.proxy.map((p, i) => fmtNum(p - p99s.direct[i]!, 2)).join(' ')}`,
        },
      ];
    } finally {
      await stopAll(servers);
    }
  },
};

// ---- active health checks of 10,000 instances ------------------------------

const CHECKED_SERVICES = 1000;
const CHECKED_PER_SERVICE = 10;
const CHECKED_INSTANCES = CHECKED_SERVICES * CHECKED_PER_SERVICE;
const CHECK_INTERVAL_MS = 10_000;
/** Upstream processes and ports each: instances are spread over these 100 origins. */
const UPSTREAM_PROCESSES = 2;
const PORTS_PER_UPSTREAM = 50;
/** Few connections: with 50 the p99 is mostly the queue of a saturated server, not what the checker adds to a request. */
const CHECK_CONNECTIONS = 10;
/**
 * The second measurement of each variant: discover at a fixed offered load,
 * a quarter or so of what one Maxine answers here at saturation. At
 * saturation p99 is mostly queueing, so it moves with throughput; at a
 * fixed rate it is the latency a client sees with the checker running.
 */
const FIXED_RATE = 5000;
/**
 * Both variants wait this long after registering before their warm-up: a
 * full check interval plus its jitter (a tenth) plus a second. New instances'
 * first probes are spread over one interval, so by then every instance has
 * been probed at least once.
 */
const SETTLE_MS = CHECK_INTERVAL_MS + CHECK_INTERVAL_MS / 10 + 1000;
/** The checks variant waits at most this long (after SETTLE_MS) for the first full round. */
const FULL_ROUND_TIMEOUT_MS = 30_000;
/** Most lag of the checker's most overdue probe accepted before and after a measured run. */
const MAX_LAG_MS = 500;
const DISCOVERED = 'bench-discover';

const checkedService = (index: number) => (index === 0 ? DISCOVERED : `bench-chk-${String(index).padStart(4, '0')}`);

/** The leader's checker as GET /api/actuator/upstreams reports it. */
type CheckerStats = HealthCheckerStats & { readonly enabled: boolean };

function snapshotTime(maxine: MaxineServer): number {
  const file = join(maxine.dataDir, 'snapshot.json');
  return existsSync(file) ? statSync(file).mtimeMs : 0;
}

async function checkerStats(maxine: MaxineServer): Promise<{ at: number; checks: CheckerStats }> {
  // One service only: the full view lists all 10,000 instances, a request too heavy to send while measuring.
  const { checks } = await getJson<{ checks: CheckerStats }>(`${maxine.url}/api/actuator/upstreams?serviceName=${DISCOVERED}`, maxine.token);
  return { at: performance.now(), checks };
}

function fmtChecker(c: CheckerStats): string {
  return (
    `${fmtNum(c.targets)} targets, ${fmtNum(c.probes)} probes (${fmtNum(c.passes)} passed, ${c.warnings} warned, ${c.failures} failed, ${c.dropped} dropped), ` +
    `lag ${fmtNum(c.lagMs)} ms, max ${c.maxInFlight} in flight, ${c.sockets} sockets (${c.connects} connects), ${c.writes} health writes`
  );
}

interface VariantResult {
  /** As fast as Maxine answers. */
  readonly load: LoadStats;
  /** At FIXED_RATE requests per second. */
  readonly fixed: LoadStats;
  /** Probes per second during the measured run; 0 without checks. */
  readonly probesPerSec: number;
  /** Passed probes over the whole life of the Maxine process. */
  readonly passes: number;
  /** CPU Maxine used during the measured run, in cores (1.0 = one core all the time). */
  readonly maxineCores: number;
  /** The part of it on the main (JavaScript) thread, which answers discover; the probes run in a thread of their own. */
  readonly mainThreadCores: number;
}

/**
 * One round of one variant in a fresh Maxine: register the 10,000
 * instances, wait SETTLE_MS (and, with checks, until the first full round
 * is done and on time), warm up, then measure discover with the checker's
 * counters read just before and just after the measured run. Maxine is
 * stopped before this returns, so the next variant has the machine to itself.
 */
async function checksVariant(checksOn: boolean, upstreams: readonly Upstream[], opts: LoadOptions, tag: string): Promise<VariantResult> {
  const ports = upstreams.flatMap((u) => u.ports);
  const upstreamCpu = () => upstreams.reduce((sum, u) => sum + cpuSeconds(u.pid), 0);
  const maxine = await startMaxine([
    '--active-health-checks-enabled', String(checksOn),
    '--active-health-check-interval-ms', String(CHECK_INTERVAL_MS),
    '--active-health-check-path', '/health',
    // Both variants: the one snapshot after the bulk registration comes within a second instead of within 30 s.
    '--snapshot-interval-ms', '1000',
  ]);
  try {
    const registration = (i: number): Registration => ({
      hostName: '127.0.0.1',
      nodeName: `node-${i % CHECKED_PER_SERVICE}`,
      serviceName: checkedService(Math.floor(i / CHECKED_PER_SERVICE)),
      port: ports[i % ports.length]!,
      timeOut: TTL_SEC,
      weight: 1,
    });
    const ms = await registerAll(maxine.url, CHECKED_INSTANCES, registration);
    const registered = performance.now();
    const registeredEpoch = Date.now();

    let state = await checkerStats(maxine);
    const fullRound = (c: CheckerStats) => c.probes >= CHECKED_INSTANCES && c.lagMs <= MAX_LAG_MS;
    while (performance.now() - registered < SETTLE_MS || (checksOn && !fullRound(state.checks))) {
      if (performance.now() - registered > SETTLE_MS + FULL_ROUND_TIMEOUT_MS) {
        throw new Error(`the checker did not finish a full round of ${fmtNum(CHECKED_INSTANCES)} probes in time: ${fmtChecker(state.checks)}`);
      }
      await sleep(500);
      state = await checkerStats(maxine);
    }
    if (!(await waitForSnapshot(maxine.dataDir, registeredEpoch - 1000, 10_000))) {
      throw new Error('no snapshot after the registrations: it would land in the measured run');
    }
    const settled = state.checks;
    if (checksOn ? !settled.leading || settled.targets !== CHECKED_INSTANCES : settled.targets !== 0 || settled.probes !== 0) {
      throw new Error(`checks ${checksOn ? 'on' : 'off'}, but the checker shows ${fmtChecker(settled)}`);
    }
    if (settled.failures > 0 || settled.warnings > 0) throw new Error(`probes failed before the load: ${fmtChecker(settled)}; every probe must get a 200`);
    const target: LoadTarget = {
      label: checksOn ? 'checks on' : 'checks off',
      url: maxine.url,
      requests: [{ method: 'GET', path: discoverPath(DISCOVERED) }],
    };
    // The same answer in both variants (health stays passing), so both do the same work per request.
    const sample = await getOnce(target.url + target.requests[0]!.path);
    if (sample.status !== 200) throw new Error(`discover answered ${sample.status}: ${sample.body}`);
    console.log(
      `  ${tag}  registered ${fmtNum(CHECKED_INSTANCES)} in ${fmtNum(ms / 1000, 1)} s; after ${fmtNum((performance.now() - registered) / 1000, 1)} s: ` +
        `${checksOn ? fmtChecker(settled) : 'no checks'}; discover answers ${Buffer.byteLength(sample.body)} bytes`,
    );
    if (opts.warmup > 0) await measure(target, CHECK_CONNECTIONS, 0, opts.warmup);
    const snapshotBefore = snapshotTime(maxine);
    const before = await checkerStats(maxine);
    const cpuBefore = { maxine: cpuSeconds(maxine.pid), main: mainThreadCpuSeconds(maxine.pid), upstreams: upstreamCpu() };
    const load = await measure(target, CHECK_CONNECTIONS, 0, opts.duration);
    const cpuAfter = { maxine: cpuSeconds(maxine.pid), main: mainThreadCpuSeconds(maxine.pid), upstreams: upstreamCpu() };
    const after = await checkerStats(maxine);
    const seconds = (after.at - before.at) / 1000;
    const cores = {
      maxine: (cpuAfter.maxine - cpuBefore.maxine) / seconds,
      main: (cpuAfter.main - cpuBefore.main) / seconds,
      upstreams: (cpuAfter.upstreams - cpuBefore.upstreams) / seconds,
    };
    if (snapshotTime(maxine) !== snapshotBefore) console.log(`  ${tag}  note: Maxine wrote a snapshot during the measured run`);
    const probesPerSec = (after.checks.probes - before.checks.probes) / seconds;
    const c = after.checks;
    console.log(
      `  ${tag}  ${target.label.padEnd(10)}  ${fmtLoad(load)}  | CPU cores: Maxine ${fmtNum(cores.maxine, 2)} (main thread ${fmtNum(cores.main, 2)}), upstreams ${fmtNum(cores.upstreams, 2)}` +
        (checksOn ? ` | ${fmtNum(probesPerSec)} probes/s, ${c.failures} failed, lag ${fmtNum(c.lagMs)} ms` : ''),
    );
    if (checksOn) {
      if (c.failures > 0 || c.warnings > 0 || c.writeErrors > 0) {
        throw new Error(`probes failed: ${fmtChecker(c)}; every probe must get a 200, the measurement is not valid`);
      }
      if (c.lagMs > MAX_LAG_MS) throw new Error(`the checker fell behind during the measured run: ${fmtChecker(c)}`);
    } else if (c.probes !== 0) {
      throw new Error(`checks off, but the checker probed: ${fmtChecker(c)}`);
    }
    const fixed = await measure(target, CHECK_CONNECTIONS, 0, opts.duration, FIXED_RATE);
    const atRate = await checkerStats(maxine);
    console.log(`  ${tag}  ${target.label.padEnd(10)}  at ${fmtNum(FIXED_RATE)} req/s: ${fmtLoad(fixed)}`);
    if (checksOn && (atRate.checks.failures > 0 || atRate.checks.lagMs > MAX_LAG_MS)) {
      throw new Error(`the checker failed or fell behind during the fixed-rate run: ${fmtChecker(atRate.checks)}`);
    }
    return { load, fixed, probesPerSec, passes: c.passes, maxineCores: cores.maxine, mainThreadCores: cores.main };
  } finally {
    await maxine.stop();
  }
}

/**
 * Discover's p99 (10 connections) in a Maxine holding 10,000 instances
 * whose leader probes every one of them every 10 s (about 1,000 probes/s,
 * each a real HTTP GET answered 200 by an upstream process), against the
 * same Maxine with checks off. Variants can't share a process (the global
 * setting is fixed at start) and mustn't run side by side (the checking one
 * would load the machine during the other's rounds), so each round starts
 * a fresh Maxine per variant, one at a time, in ABBA order so that drift
 * over the run does not favour either.
 */
const checks10k: Scenario = {
  name: 'checks-10k',
  title:
    `GET discover?format=json (${CHECK_CONNECTIONS} connections), ${fmtNum(CHECKED_INSTANCES)} instances probed every ${CHECK_INTERVAL_MS / 1000} s ` +
    `against the same with checks off`,
  run: async (opts) => {
    const upstreams: Upstream[] = [];
    try {
      for (let i = 0; i < UPSTREAM_PROCESSES; i++) upstreams.push(await startUpstream(PORTS_PER_UPSTREAM));
      const ports = upstreams.flatMap((u) => u.ports);
      console.log(
        `  ${fmtNum(CHECKED_SERVICES)} services x ${CHECKED_PER_SERVICE} instances over ${ports.length} upstream ports in ${UPSTREAM_PROCESSES} processes; ` +
          `a fresh Maxine per variant and round, one at a time`,
      );
      const samples = { off: [] as VariantResult[], on: [] as VariantResult[] };
      for (let round = 1; round <= opts.rounds; round++) {
        const order = round % 2 === 1 ? (['off', 'on'] as const) : (['on', 'off'] as const);
        for (const variant of order) {
          samples[variant].push(await checksVariant(variant === 'on', upstreams, opts, `round ${round}/${opts.rounds}`.padEnd(11)));
        }
      }
      const off = mean(samples.off.map((s) => s.load));
      const on = mean(samples.on.map((s) => s.load));
      const probesPerSec = meanOf(samples.on.map((s) => s.probesPerSec));
      console.log(`  ${'mean'.padEnd(11)}  ${'checks off'.padEnd(10)}  ${fmtLoad(off)}`);
      console.log(`  ${'mean'.padEnd(11)}  ${'checks on'.padEnd(10)}  ${fmtLoad(on)}  | ${fmtNum(probesPerSec)} probes/s`);

      // Every probe the checker counted as passed got its 200 from an upstream, not from anything else.
      const served = await Promise.all(upstreams.splice(0).map((u) => u.stop()));
      const healthServed = served.reduce((sum, s) => sum + (s['/health'] ?? 0), 0);
      const other = served.reduce((sum, s) => sum + (s.other ?? 0), 0);
      const passes = samples.on.reduce((sum, s) => sum + s.passes, 0);
      console.log(`  upstreams answered ${fmtNum(healthServed)} health probes with 200 (the checkers counted ${fmtNum(passes)} passes), ${other} unknown requests`);
      if (other > 0 || healthServed < passes) throw new Error('the upstreams did not answer every probe the checkers counted as passed');

      const pairs = samples.on.map((s, i) => s.load.p99 / samples.off[i]!.load.p99);
      const fixedOn = mean(samples.on.map((s) => s.fixed));
      const fixedOff = mean(samples.off.map((s) => s.fixed));
      const fixedPairs = samples.on.map((s, i) => s.fixed.p99 / samples.off[i]!.fixed.p99);
      return [
        {
          scenario: 'checks-10k',
          measure: `discover p99 at ${fmtNum(FIXED_RATE)} req/s on/off`,
          value: fixedOn.p99 / fixedOff.p99,
          decimals: 2,
          target: { op: '<=', value: 1.1 },
          detail: `rounds ${fixedPairs.map((r) => fmtNum(r, 2)).join(' ')} | on ${fmtLoad(fixedOn)} | off ${fmtLoad(fixedOff)}`,
        },
        {
          scenario: 'checks-10k',
          measure: 'discover p99 saturated on/off',
          value: on.p99 / off.p99,
          decimals: 2,
          target: { op: '<=', value: 1.1 },
          detail: `rounds ${pairs.map((r) => fmtNum(r, 2)).join(' ')} | p99 on ${fmtNum(on.p99, 2)} ms, off ${fmtNum(off.p99, 2)} ms | ${fmtNum(probesPerSec)} probes/s, 0 failed`,
        },
        {
          scenario: 'checks-10k',
          measure: 'discover req/s saturated on/off',
          value: on.rps / off.rps,
          decimals: 2,
          detail:
            `rounds ${samples.on.map((s, i) => fmtNum(s.load.rps / samples.off[i]!.load.rps, 2)).join(' ')} | on ${fmtLoad(on)} | off ${fmtLoad(off)} | ` +
            `Maxine CPU cores on ${fmtNum(meanOf(samples.on.map((s) => s.maxineCores)), 2)}, off ${fmtNum(meanOf(samples.off.map((s) => s.maxineCores)), 2)} | ` +
            `main thread on ${fmtNum(meanOf(samples.on.map((s) => s.mainThreadCores)), 2)}, off ${fmtNum(meanOf(samples.off.map((s) => s.mainThreadCores)), 2)}`,
        },
      ];
    } finally {
      await stopAll(upstreams);
    }
  },
};

export const UPSTREAM_SCENARIOS: readonly Scenario[] = [proxy, checks10k];
