/**
 * Child process of the `events-10k` benchmark: opens N WebSocket
 * subscribers to one Maxine, then registers instances at a steady rate and
 * times each event from the moment its registration was sent to its arrival
 * at the last subscriber. Registrations and receipts share this process's
 * clock, so no clock skew enters the figure.
 *
 * argv[2]: JSON {url, subscribers, ratePerSec, seconds, service}
 * stdout: one JSON line per phase: {"phase":"connected",...} then {"phase":"done",...}
 */
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

interface Plan {
  readonly url: string;
  readonly subscribers: number;
  readonly ratePerSec: number;
  readonly seconds: number;
  readonly service: string;
}

const plan = JSON.parse(process.argv[2] ?? '{}') as Plan;
// The parent holds our stdin open; when it goes, so do we.
process.stdin.on('end', () => process.exit(1)).resume();

const CONNECT_CONCURRENCY = 200;
const wsUrl = `${plan.url.replace(/^http/, 'ws')}/api/maxine/events/ws`;
/** nodeName -> [sent at, subscribers still to receive it, last arrival]. */
const pending = new Map<string, { sentAt: number; left: number; lastAt: number }>();
const latencies: number[] = [];
let unexpected = 0;

const NODE_NAME = '"nodeName":"';

/** Reads just the node name: parsing 10,000 copies of every event would make this process the bottleneck. */
function onPush(raw: WebSocket.RawData): void {
  const at = performance.now();
  const text = raw.toString();
  const start = text.indexOf(NODE_NAME) + NODE_NAME.length;
  const entry = pending.get(text.slice(start, text.indexOf('"', start)));
  if (entry === undefined) {
    unexpected++;
    return;
  }
  entry.lastAt = at;
  if (--entry.left === 0) latencies.push(entry.lastAt - entry.sentAt);
}

async function connect(): Promise<WebSocket> {
  const socket = new WebSocket(wsUrl, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  const subscribed = new Promise<void>((resolve) => {
    socket.once('message', () => resolve());
  });
  socket.send(JSON.stringify({ subscribe: { serviceName: plan.service, event: 'service_registered' } }));
  await subscribed;
  socket.on('message', onPush);
  return socket;
}

const agent = new Agent({ keepAlive: true, maxSockets: 8 });
function register(n: number): void {
  const nodeName = `n-${n}`;
  const body = JSON.stringify({ serviceName: plan.service, nodeName, hostName: `10.1.${Math.floor(n / 250)}.${(n % 250) + 1}`, port: 9000, timeOut: 3600 });
  pending.set(nodeName, { sentAt: performance.now(), left: plan.subscribers, lastAt: 0 });
  const req = request(`${plan.url}/api/maxine/serviceops/register`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => res.resume());
  req.on('error', () => undefined);
  req.end(body);
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const sockets: WebSocket[] = [];
const started = performance.now();
for (let i = 0; i < plan.subscribers; i += CONNECT_CONCURRENCY) {
  const batch = Math.min(CONNECT_CONCURRENCY, plan.subscribers - i);
  sockets.push(...(await Promise.all(Array.from({ length: batch }, connect))));
}
console.log(JSON.stringify({ phase: 'connected', subscribers: sockets.length, ms: Math.round(performance.now() - started) }));
// Let the server settle (GC after 10k handshakes) before timing events.
await new Promise((r) => setTimeout(r, 2000));

const total = plan.ratePerSec * plan.seconds;
const intervalMs = 1000 / plan.ratePerSec;
const t0 = performance.now();
for (let n = 0; n < total; n++) {
  const due = t0 + n * intervalMs;
  const wait = due - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  register(n);
}
const deadline = performance.now() + 10_000;
while (latencies.length < total && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
const sorted = [...latencies].sort((a, b) => a - b);
console.log(
  JSON.stringify({
    phase: 'done',
    events: total,
    complete: latencies.length,
    unexpected,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? NaN,
  }),
);
for (const socket of sockets) socket.terminate();
agent.destroy();
process.exit(0);
