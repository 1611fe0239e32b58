/** The benchmark scenarios; each prints its progress and returns its checks. */
import { etcdRawWriteRate, redisRawWriteRate, startEtcdBackend, startRedisBackend, type Backend } from './backends.ts';
import { Child, removeTempDir, tempDir } from './children.ts';
import { compareTargets, type LoadOptions } from './load.ts';
import type { MemoryResult } from './memory.ts';
import { fmtLoad, fmtNum, type Check } from './report.ts';
import { discoverPath, heartbeatRequest, instance } from './requests.ts';
import {
  captureReplies,
  cpuSeconds,
  registerAll,
  startBare,
  startMaxine,
  startMinimalFastify,
  waitForSnapshot,
  type RequestShape,
} from './servers.ts';
import { UPSTREAM_SCENARIOS } from './upstream-scenarios.ts';
import { EVENT_SCENARIOS } from './event-scenarios.ts';
import { TRACING_SCENARIOS } from './tracing-scenarios.ts';
import { INSTRUCTION_SCENARIOS } from './instructions.ts';

export interface Scenario {
  readonly name: string;
  readonly title: string;
  /** Left out of a run that names no scenario (it needs a tool the machine may lack). */
  readonly onlyWhenNamed?: boolean;
  run(opts: LoadOptions): Promise<Check[]>;
}

const INSTANCES_PER_SERVICE = 10;
/** One round-robin cycle over a service's instances: the bare server replays all ten bodies. */
const REPLIES_PER_REQUEST = INSTANCES_PER_SERVICE;

/**
 * Starts Maxine, lets `prepare` register what the scenario needs and name the
 * requests to load, captures Maxine's answers, then loads Maxine, the bare
 * server replaying them, and the minimal fastify app replaying them (the
 * framework's floor, bench/minimal-fastify.mjs) in the same alternating
 * rounds. Every server is stopped whatever happens.
 */
async function loadScenario(
  scenario: string,
  target: number,
  opts: LoadOptions,
  prepare: (maxine: { url: string; dataDir: string }) => Promise<{ requests: RequestShape[]; repliesPerRequest: number }>,
  startBackend?: () => Promise<Backend>,
): Promise<Check[]> {
  const servers: Array<{ stop(): Promise<void> }> = [];
  try {
    const backend = await startBackend?.();
    if (backend) servers.push(backend);
    const maxine = await startMaxine(backend?.storeArgs);
    servers.push(maxine);
    const { requests, repliesPerRequest } = await prepare(maxine);
    const replies = await captureReplies(maxine.url, requests, repliesPerRequest);
    const bare = await startBare(replies);
    servers.push(bare);
    const floor = await startMinimalFastify(replies);
    servers.push(floor);
    const pids = [maxine.pid, bare.pid, floor.pid] as const;
    const cpuBefore = pids.map(cpuSeconds);
    const result = await compareTargets(
      { label: 'maxine', url: maxine.url, requests },
      { label: 'bare', url: bare.url, requests },
      opts,
      [{ label: 'fastify', url: floor.url, requests }],
    );
    const floorResult = result.references[0]!;
    // Warm-ups included on both sides of the division: each target idles through the others' rounds.
    const requestsServed = [result.maxine, result.bare, floorResult.mean].map((s) => s.rps * (opts.warmup + opts.duration) * opts.rounds);
    const [maxineUs, bareUs, floorUs] = pids.map((pid, i) => ((cpuSeconds(pid) - cpuBefore[i]!) * 1e6) / requestsServed[i]!) as [number, number, number];
    const floorRatio = floorResult.mean.rps / result.bare.rps;
    console.log(
      `  CPU per request (about): Maxine ${fmtNum(maxineUs, 1)} µs, bare ${fmtNum(bareUs, 1)} µs, minimal fastify ${fmtNum(floorUs, 1)} µs; ` +
        `minimal fastify reaches ${fmtNum(floorRatio, 2)} of bare, Maxine ${fmtNum(result.maxine.rps / floorResult.mean.rps, 2)} of minimal fastify`,
    );
    return [
      {
        scenario,
        measure: 'req/s maxine/bare',
        value: result.ratio,
        decimals: 2,
        target: { op: '>=', value: target },
        detail: `rounds ${result.roundRatios.map((r) => fmtNum(r, 2)).join(' ')} | maxine ${fmtLoad(result.maxine)} | bare ${fmtLoad(result.bare)} | CPU/request Maxine ${fmtNum(maxineUs, 1)} µs, bare ${fmtNum(bareUs, 1)} µs`,
      },
      {
        scenario,
        measure: 'req/s fastify floor/bare',
        value: floorRatio,
        decimals: 2,
        detail:
          `the floor: a fastify app replaying the same bytes, schema-checked, nothing else | rounds ${floorResult.rounds.map((r, i) => fmtNum(r.rps / result.rounds.bare[i]!.rps, 2)).join(' ')} | ` +
          `${fmtLoad(floorResult.mean)} | CPU/request ${fmtNum(floorUs, 1)} µs`,
      },
      {
        scenario,
        measure: 'req/s maxine/fastify floor',
        value: result.maxine.rps / floorResult.mean.rps,
        decimals: 2,
        detail: `rounds ${result.rounds.maxine.map((r, i) => fmtNum(r.rps / floorResult.rounds[i]!.rps, 2)).join(' ')}`,
      },
    ];
  } finally {
    for (const server of servers.reverse()) await server.stop();
  }
}

const discover: Scenario = {
  name: 'discover',
  title: `GET discover?format=json, one service of ${INSTANCES_PER_SERVICE} instances`,
  run: (opts) =>
    loadScenario('discover', 0.9, opts, async ({ url }) => {
      await registerAll(url, INSTANCES_PER_SERVICE, (i) => instance('bench-discover', i));
      return { requests: [{ method: 'GET', path: discoverPath('bench-discover') }], repliesPerRequest: REPLIES_PER_REQUEST };
    }),
};

/** The read path is local on every replica: discover on a shared store should cost what it costs on the local one. */
function discoverOnSharedStore(name: string, startBackend: () => Promise<Backend>): Scenario {
  return {
    name: `discover-${name}`,
    title: `GET discover?format=json, one service of ${INSTANCES_PER_SERVICE} instances, ${name} store`,
    run: (opts) =>
      loadScenario(
        `discover-${name}`,
        0.85,
        opts,
        async ({ url }) => {
          await registerAll(url, INSTANCES_PER_SERVICE, (i) => instance('bench-discover', i));
          return { requests: [{ method: 'GET', path: discoverPath('bench-discover') }], repliesPerRequest: REPLIES_PER_REQUEST };
        },
        startBackend,
      ),
  };
}

const REGISTRATIONS = 20_000;
const WRITERS = 50;

/**
 * Registrations per second through Maxine's HTTP API (each a new instance,
 * so each a store write), beside the backend's own raw write rate measured in
 * the same run with the same concurrency. The ratio says what Maxine's
 * conditional, fed, revisioned write costs over a bare key write.
 */
function registerOnSharedStore<B extends Backend>(name: string, startBackend: () => Promise<B>, rawRate: (backend: B) => Promise<number>): Scenario {
  return {
    name: `register-${name}`,
    title: `POST register of ${fmtNum(REGISTRATIONS)} new instances by ${WRITERS} writers, ${name} store, against the backend's raw write rate`,
    run: async () => {
      const servers: Array<{ stop(): Promise<void> }> = [];
      try {
        const backend = await startBackend();
        servers.push(backend);
        const raw = await rawRate(backend);
        console.log(`  ${name} raw writes: ${fmtNum(raw)}/s`);
        const maxine = await startMaxine(backend.storeArgs);
        servers.push(maxine);
        const ms = await registerAll(maxine.url, REGISTRATIONS, (i) => instance(`bench-register-${i % 100}`, i), WRITERS);
        const rate = REGISTRATIONS / (ms / 1000);
        console.log(`  maxine registrations: ${fmtNum(rate)}/s`);
        return [
          {
            scenario: `register-${name}`,
            measure: `registrations/s over raw ${name} writes/s`,
            value: rate / raw,
            decimals: 2,
            detail: `maxine ${fmtNum(rate)}/s | raw ${fmtNum(raw)}/s`,
          },
        ];
      } finally {
        for (const server of servers.reverse()) await server.stop();
      }
    },
  };
}

const LARGE_SERVICES = 10_000;
/** Services the load rotates over, spread across the catalog rather than one hot entry. */
const ROTATING_SERVICES = 16;

const serviceName = (index: number) => `bench-svc-${String(index).padStart(5, '0')}`;

const discover10k: Scenario = {
  name: 'discover-10k',
  title: `GET discover?format=json rotating over ${ROTATING_SERVICES} of ${fmtNum(LARGE_SERVICES)} services x ${INSTANCES_PER_SERVICE} instances`,
  run: (opts) =>
    loadScenario('discover-10k', 0.85, opts, async ({ url, dataDir }) => {
      const total = LARGE_SERVICES * INSTANCES_PER_SERVICE;
      const ms = await registerAll(url, total, (i) =>
        instance(serviceName(Math.floor(i / INSTANCES_PER_SERVICE)), i % INSTANCES_PER_SERVICE),
      );
      console.log(`  registered ${fmtNum(total)} instances in ${fmtNum(ms / 1000, 1)} s (${fmtNum(total / (ms / 1000))}/s)`);
      const since = Date.now();
      const snapshotted = await waitForSnapshot(dataDir, since, 45_000);
      console.log(
        snapshotted
          ? `  Maxine's post-registration snapshot done after ${fmtNum((Date.now() - since) / 1000, 1)} s`
          : `  no post-registration snapshot within 45 s; it may land in a measured round`,
      );
      const stride = LARGE_SERVICES / ROTATING_SERVICES;
      const requests = Array.from({ length: ROTATING_SERVICES }, (_, k): RequestShape => ({
        method: 'GET',
        path: discoverPath(serviceName(Math.floor(k * stride + stride / 2))),
      }));
      return { requests, repliesPerRequest: REPLIES_PER_REQUEST };
    }),
};

const heartbeat: Scenario = {
  name: 'heartbeat',
  title: 'POST heartbeat for one registered instance',
  run: (opts) =>
    loadScenario('heartbeat', 0.8, opts, async ({ url }) => {
      await registerAll(url, 1, (i) => instance('bench-heartbeat', i));
      return { requests: [heartbeatRequest('bench-heartbeat', 0)], repliesPerRequest: 1 };
    }),
};

const MEMORY_TIMEOUT_MS = 10 * 60_000;

const memory: Scenario = {
  name: 'memory',
  title: 'heap per instance and restore time, 10,000 services x 10 instances in-process',
  run: async () => {
    const dir = tempDir('maxine-bench-memory-');
    const child = new Child('memory', ['--expose-gc', '--import', 'tsx', 'bench/memory.ts', dir]);
    try {
      const timer = setTimeout(() => void child.stop(), MEMORY_TIMEOUT_MS);
      const how = await child.exited;
      clearTimeout(timer);
      if (how !== 'exit code 0') throw new Error(`bench/memory.ts ended with ${how}: ${child.describe()}`);
      const r = JSON.parse(child.stdout.trim().split('\n').at(-1)!) as MemoryResult;
      console.log(`  heap ${fmtNum(r.heapBytesPerInstance)} bytes per instance over ${fmtNum(r.instances)} instances`);
      console.log(`  restored ${fmtNum(r.restoredInstances)} instances in ${fmtNum(r.restoreMs)} ms`);
      if (r.restoredInstances !== r.instances) {
        throw new Error(`restored ${r.restoredInstances} instances, expected ${r.instances}`);
      }
      return [
        {
          scenario: 'memory',
          measure: 'heap bytes/instance',
          value: r.heapBytesPerInstance,
          decimals: 0,
          target: { op: '<=', value: 1024 },
          detail: `(heapUsed after - before) / ${fmtNum(r.instances)}, after forced GC`,
        },
        {
          scenario: 'memory',
          measure: 'restore ms',
          value: r.restoreMs,
          decimals: 0,
          target: { op: '<=', value: 1000 },
          detail: `registry.start() on the data dir, ${fmtNum(r.restoredInstances)} instances back`,
        },
      ];
    } finally {
      await child.stop();
      removeTempDir(dir);
    }
  },
};

export const SCENARIOS: readonly Scenario[] = [
  discover,
  discover10k,
  heartbeat,
  memory,
  ...UPSTREAM_SCENARIOS,
  ...EVENT_SCENARIOS,
  ...TRACING_SCENARIOS,
  discoverOnSharedStore('redis', startRedisBackend),
  discoverOnSharedStore('etcd', startEtcdBackend),
  registerOnSharedStore('redis', startRedisBackend, async (b) => redisRawWriteRate(b.port, WRITERS, 100_000)),
  registerOnSharedStore('etcd', startEtcdBackend, (b) => etcdRawWriteRate(b.endpoint, WRITERS, REGISTRATIONS)),
  ...INSTRUCTION_SCENARIOS,
];
