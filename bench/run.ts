/**
 * Maxine's benchmarks: `npm run bench [-- <scenario>...] [--duration s]
 * [--warmup s] [--rounds n] [--connections n]`.
 *
 * Every HTTP result is a ratio against a reference measured on the same
 * machine in the same run: a bare node:http server answering the same bytes,
 * or for `proxy` the upstream loaded directly, or for `checks-10k` the same
 * Maxine with active health checks off. On a shared machine the absolute
 * numbers are noise, the ratio is the result.
 */
import { arch, cpus, loadavg, platform } from 'node:os';
import { parseArgs } from 'node:util';
import { cleanUpOnExit } from './children.ts';
import type { LoadOptions } from './load.ts';
import { fmtNum, fmtTarget, printSummary, verdict, type Check, type Failure } from './report.ts';
import { SCENARIOS, type Scenario } from './scenarios.ts';

const USAGE = `usage: npm run bench -- [${SCENARIOS.map((s) => s.name).join('|')} ...] [--duration s] [--warmup s] [--rounds n] [--connections n]`;

function parseCommandLine(argv: readonly string[]): { scenarios: Scenario[]; opts: LoadOptions } {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '3' },
      rounds: { type: 'string', default: '2' },
      connections: { type: 'string', default: '50' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const number = (name: string, raw: string, min: number): number => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be a whole number >= ${min}, got "${raw}"`);
    return n;
  };
  const opts: LoadOptions = {
    duration: number('duration', values.duration, 1),
    warmup: number('warmup', values.warmup, 0),
    rounds: number('rounds', values.rounds, 1),
    connections: number('connections', values.connections, 1),
  };
  const scenarios = positionals.map((name) => {
    const scenario = SCENARIOS.find((s) => s.name === name);
    if (scenario === undefined) throw new Error(`unknown scenario "${name}"\n${USAGE}`);
    return scenario;
  });
  return { scenarios: scenarios.length > 0 ? scenarios : SCENARIOS.filter((s) => s.onlyWhenNamed !== true), opts };
}

function commandLine(argv: readonly string[]): string {
  const args = argv.map((a) => (/^[\w./=:-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
  // npm sets npm_lifecycle_event when the bench runs as `npm run bench`.
  if (process.env.npm_lifecycle_event === 'bench') return `npm run bench${args ? ` -- ${args}` : ''}`;
  return `tsx bench/run.ts${args ? ` ${args}` : ''}`;
}

async function main(): Promise<number> {
  cleanUpOnExit();
  const argv = process.argv.slice(2);
  let parsed: ReturnType<typeof parseCommandLine>;
  try {
    parsed = parseCommandLine(argv);
  } catch (error) {
    console.error((error as Error).message);
    return 2;
  }
  const { scenarios, opts } = parsed;
  console.log(`machine  ${cpus()[0]?.model ?? 'unknown CPU'}, nproc ${cpus().length}, node ${process.version}, ${platform()}-${arch()}`);
  console.log(`command  ${commandLine(argv)}`);
  // Others' work on a shared machine is the main source of noise; say how busy it was.
  console.log(`busy     load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} (1, 5, 15 min) at start`);
  console.log(
    `load     ${opts.connections} connections, ${opts.rounds} round(s) per target of ${opts.warmup} s warm-up + ${opts.duration} s measured, targets alternating round by round`,
  );

  const checks: Check[] = [];
  const failures: Failure[] = [];
  for (const scenario of scenarios) {
    console.log(`\n== ${scenario.name}: ${scenario.title}`);
    try {
      for (const check of await scenario.run(opts)) {
        console.log(`  ${check.measure} ${fmtNum(check.value, check.decimals)}  (target ${fmtTarget(check)})  ${verdict(check)}`);
        checks.push(check);
      }
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      console.log(`  FAILED: ${message}`);
      failures.push({ scenario: scenario.name, error: message });
    }
  }

  console.log('\n== summary (the ratio is the result; absolute numbers on a shared machine are noise)');
  printSummary(checks, failures);
  console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} (1, 5, 15 min) at the end`);
  // A missed target is a result; only a scenario that could not be measured fails the run.
  return failures.length > 0 ? 1 : 0;
}

process.exitCode = await main();
