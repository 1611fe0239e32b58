/**
 * `events-10k`: 10,000 WebSocket subscribers on one Maxine while instances
 * register at a steady rate; the latency from each registration to its
 * arrival at the last subscriber, and Maxine's memory per connection.
 */
import { readFileSync } from 'node:fs';
import { Child, sleep } from './children.ts';
import type { LoadOptions } from './load.ts';
import { fmtNum, type Check } from './report.ts';
import type { Scenario } from './scenarios.ts';
import { startMaxine } from './servers.ts';

const SUBSCRIBERS = 10_000;
const REGISTRATIONS_PER_SEC = 2;
const SERVICE = 'fanout';
const PHASE_TIMEOUT_MS = 180_000;

/** Resident memory of a process (Linux /proc), bytes. */
function rssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(line?.split(/\s+/)[1] ?? NaN) * 1024;
}

async function phase(child: Child, name: string): Promise<Record<string, number>> {
  const deadline = Date.now() + PHASE_TIMEOUT_MS;
  for (;;) {
    const line = child.stdout.split('\n').find((l) => l.includes(`"phase":"${name}"`));
    if (line !== undefined) return JSON.parse(line) as Record<string, number>;
    if (!child.isRunning || Date.now() > deadline) throw new Error(`the subscribers never reached "${name}": ${child.describe()}`);
    await sleep(100);
  }
}

interface Delivery {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly events: number;
}

/** Connects the subscribers to `url`, registers at the steady rate, and returns the delivery latencies. */
async function deliver(url: string, seconds: number, onConnected: () => void = () => undefined): Promise<Delivery> {
  const plan = { url, subscribers: SUBSCRIBERS, ratePerSec: REGISTRATIONS_PER_SEC, seconds, service: SERVICE };
  const child = new Child('subscribers', ['--import', 'tsx', 'bench/event-subscribers.ts', JSON.stringify(plan)]);
  try {
    await phase(child, 'connected');
    onConnected();
    const done = await phase(child, 'done');
    if (done.complete !== done.events || done.unexpected !== 0) throw new Error(`events went missing or arrived unasked: ${JSON.stringify(done)}`);
    return { p50: done.p50!, p99: done.p99!, max: done.max!, events: done.events! };
  } finally {
    await child.stop();
  }
}

async function viaMaxine(seconds: number): Promise<{ delivery: Delivery; perConnection: number }> {
  // Every subscriber connects from 127.0.0.1 without credentials: one owner, so the cap must allow them all.
  const maxine = await startMaxine(['--events-max-connections-per-principal', String(SUBSCRIBERS * 2)]);
  try {
    await sleep(1000);
    const before = rssBytes(maxine.pid);
    let after = before;
    const delivery = await deliver(maxine.url, seconds, () => (after = rssBytes(maxine.pid)));
    return { delivery, perConnection: (after - before) / SUBSCRIBERS };
  } finally {
    await maxine.stop();
  }
}

async function viaBare(seconds: number): Promise<Delivery> {
  const bare = new Child('bare-ws', ['--import', 'tsx', 'bench/bare-ws-server.ts']);
  try {
    const deadline = Date.now() + 30_000;
    while (!bare.stdout.includes('\n')) {
      if (!bare.isRunning || Date.now() > deadline) throw new Error(`the bare ws server did not start: ${bare.describe()}`);
      await sleep(50);
    }
    const { port } = JSON.parse(bare.stdout.split('\n')[0]!) as { port: number };
    return await deliver(`http://127.0.0.1:${port}`, seconds);
  } finally {
    await bare.stop();
  }
}

const fmtDelivery = (d: Delivery) => `p50 ${fmtNum(d.p50, 1)} ms, p99 ${fmtNum(d.p99, 1)} ms, max ${fmtNum(d.max, 1)} ms`;

/**
 * The absolute p99 is the target; the ratio against a bare `ws`
 * broadcast of the same size on the same machine says how much of it is
 * Maxine's own (most of a fan-out is one write syscall per socket).
 */
const events10k: Scenario = {
  name: 'events-10k',
  title: `${fmtNum(SUBSCRIBERS)} WebSocket subscribers, ${REGISTRATIONS_PER_SEC} registrations/s: registration to receipt at the last subscriber, against a bare ws broadcast`,
  run: async (opts: LoadOptions): Promise<Check[]> => {
    const maxineRuns: Delivery[] = [];
    const bareRuns: Delivery[] = [];
    const memory: number[] = [];
    for (let round = 1; round <= opts.rounds; round++) {
      const { delivery, perConnection } = await viaMaxine(opts.duration);
      maxineRuns.push(delivery);
      memory.push(perConnection);
      console.log(`  round ${round}/${opts.rounds}  maxine  ${fmtDelivery(delivery)} | ${fmtNum(perConnection / 1024, 1)} KiB per connection`);
      const bare = await viaBare(opts.duration);
      bareRuns.push(bare);
      console.log(`  round ${round}/${opts.rounds}  bare    ${fmtDelivery(bare)}`);
    }
    const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const p99 = mean(maxineRuns.map((d) => d.p99));
    const bareP99 = mean(bareRuns.map((d) => d.p99));
    return [
      {
        scenario: 'events-10k',
        measure: 'delivery p99 ms, registration to last subscriber',
        value: p99,
        decimals: 1,
        target: { op: '<=', value: 100 },
        detail: `rounds ${maxineRuns.map((d) => fmtNum(d.p99, 1)).join(' ')} | p50 ${fmtNum(mean(maxineRuns.map((d) => d.p50)), 1)} ms | ${fmtNum(maxineRuns[0]!.events)} events x ${fmtNum(SUBSCRIBERS)} subscribers per round`,
      },
      {
        scenario: 'events-10k',
        measure: 'delivery p99 maxine/bare ws',
        value: p99 / bareP99,
        decimals: 2,
        detail: `bare ws p99 rounds ${bareRuns.map((d) => fmtNum(d.p99, 1)).join(' ')} | p50 ${fmtNum(mean(bareRuns.map((d) => d.p50)), 1)} ms`,
      },
      {
        scenario: 'events-10k',
        measure: 'Maxine memory per connection, KiB',
        value: mean(memory) / 1024,
        decimals: 1,
        detail: `RSS growth with ${fmtNum(SUBSCRIBERS)} idle subscribed WebSockets`,
      },
    ];
  },
};

export const EVENT_SCENARIOS: readonly Scenario[] = [events10k];
