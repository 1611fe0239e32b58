/**
 * Instructions per request, counted by valgrind's callgrind: Maxine's
 * discover and heartbeat against the bare server answering the same bytes.
 *
 * On a shared machine CPU time per request moves by a fifth between fresh
 * processes, which hides changes of a few per cent; Maxine's instruction
 * count, once warmed up, moved by under 1 % between runs (the bare
 * server's heartbeat count by a tenth once: compare runs). It counts
 * user-space instructions only (the kernel's share of the CPU time is left
 * out) and not what they cost (cache misses, branches): a change it shows
 * still has to be confirmed in time, but it tells where the work is.
 *
 * V8's optimizing compiler is counted apart: a process under steady load
 * still compiles a function now and then (in real time, about one per 2 s
 * once the first seconds are past), and under valgrind, many times slower,
 * those compilations land among few requests and swamp the count.
 *
 * Optional: needs valgrind (Debian's package), and runs only when named:
 * `npm run bench -- instructions-discover instructions-heartbeat`.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import autocannon from 'autocannon';
import { removeTempDir, tempDir } from './children.ts';
import { fmtNum, type Check } from './report.ts';
import { discoverPath, heartbeatRequest, instance } from './requests.ts';
import { captureReplies, registerAll, startBare, startMaxine, type RequestShape } from './servers.ts';
import type { Scenario } from './scenarios.ts';

/** Requests before counting: enough for V8 to have optimized the request path (instrumentation is off meanwhile). */
const WARM_UP_REQUESTS = 100_000;
const COUNTED_REQUESTS = 10_000;
const CONNECTIONS = 20;

interface Count {
  /** Instructions per request, the optimizing compiler's left out. */
  readonly perRequest: number;
  /** The optimizing compiler's, per request. */
  readonly compiler: number;
}

/** A process under callgrind with instrumentation off until counting starts. */
interface Counted {
  readonly url: string;
  readonly pid: number;
  readonly outFile: string;
  stop(): Promise<void>;
}

function callgrind(outFile: string): string[] {
  return ['valgrind', '--tool=callgrind', '--instr-atstart=no', '--smc-check=all-non-file', `--callgrind-out-file=${outFile}`];
}

/** Sends `amount` requests to `url`; fails on any error or non-2xx answer. Resolves with how many were answered. */
async function send(url: string, requests: readonly RequestShape[], amount: number): Promise<number> {
  const result = await autocannon({ url, connections: CONNECTIONS, amount, requests: [...requests], timeout: 60 });
  if (result.errors > 0 || result.timeouts > 0 || result.non2xx > 0) {
    throw new Error(`${url}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx answers under load`);
  }
  return result.requests.total;
}

/** Warms the process up, then counts the instructions of COUNTED_REQUESTS requests. */
async function count(target: Counted, requests: readonly RequestShape[]): Promise<Count> {
  await send(target.url, requests, WARM_UP_REQUESTS);
  execFileSync('callgrind_control', ['--instr=on', String(target.pid)], { stdio: 'ignore' });
  const served = await send(target.url, requests, COUNTED_REQUESTS);
  execFileSync('callgrind_control', ['--dump', String(target.pid)], { stdio: 'ignore' });
  execFileSync('callgrind_control', ['--instr=off', String(target.pid)], { stdio: 'ignore' });
  const dir = dirname(target.outFile);
  const dumps = readdirSync(dir).filter((f) => f.startsWith(`${basename(target.outFile)}.`));
  let total = 0;
  let compiler = 0;
  for (const dump of dumps) {
    const annotated = execFileSync('callgrind_annotate', ['--inclusive=no', '--threshold=100', join(dir, dump)], { encoding: 'utf8', maxBuffer: 64 << 20 });
    for (const line of annotated.split('\n')) {
      const match = /^\s*([\d,]+) \([ \d.]+%\)\s+(.*)$/.exec(line);
      if (match === null) continue;
      const instructions = Number(match[1]!.replaceAll(',', ''));
      if (match[2]!.includes('PROGRAM TOTALS')) total += instructions;
      else if (match[2]!.includes('v8::internal::compiler::')) compiler += instructions;
    }
  }
  if (total === 0) throw new Error(`callgrind wrote no count for pid ${target.pid}`);
  return { perRequest: (total - compiler) / served, compiler: compiler / served };
}

function hasValgrind(): boolean {
  try {
    execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function instructionsScenario(name: string, title: string, prepare: (url: string) => Promise<RequestShape>): Scenario {
  return {
    name: `instructions-${name}`,
    title,
    onlyWhenNamed: true,
    run: async () => {
      if (!hasValgrind()) throw new Error('valgrind is not installed (apt-get install valgrind)');
      const dir = tempDir('maxine-bench-callgrind-');
      const servers: Counted[] = [];
      try {
        const maxineOut = join(dir, 'maxine.out');
        const maxine = await startMaxine([], callgrind(maxineOut));
        servers.push({ ...maxine, outFile: maxineOut });
        const request = await prepare(maxine.url);
        const bareOut = join(dir, 'bare.out');
        const bare = await startBare(await captureReplies(maxine.url, [request], 10), callgrind(bareOut));
        servers.push({ ...bare, outFile: bareOut });
        const counts = [];
        for (const target of servers) counts.push(await count(target, [request]));
        const [ofMaxine, ofBare] = counts as [Count, Count];
        console.log(
          `  instructions per request: Maxine ${fmtNum(ofMaxine.perRequest)}, bare ${fmtNum(ofBare.perRequest)} ` +
            `(optimizing compiler, left out: ${fmtNum(ofMaxine.compiler)} and ${fmtNum(ofBare.compiler)})`,
        );
        const check: Check = {
          scenario: `instructions-${name}`,
          measure: 'instructions/request bare/maxine',
          value: ofBare.perRequest / ofMaxine.perRequest,
          decimals: 2,
          detail: `Maxine ${fmtNum(ofMaxine.perRequest)}, bare ${fmtNum(ofBare.perRequest)} per request, ${fmtNum(COUNTED_REQUESTS)} counted after ${fmtNum(WARM_UP_REQUESTS)}`,
        };
        return [check];
      } finally {
        for (const server of servers.reverse()) await server.stop();
        removeTempDir(dir);
      }
    },
  };
}

export const INSTRUCTION_SCENARIOS: readonly Scenario[] = [
  instructionsScenario('discover', 'instructions per discover (format=json, one service of 10 instances), callgrind', async (url) => {
    await registerAll(url, 10, (i) => instance('bench-svc', i));
    return { method: 'GET', path: discoverPath('bench-svc') };
  }),
  instructionsScenario('heartbeat', 'instructions per heartbeat, callgrind', async (url) => {
    await registerAll(url, 1, (i) => instance('bench-heartbeat', i));
    return heartbeatRequest('bench-heartbeat', 0);
  }),
];
