/**
 * Child processes and temporary directories of one benchmark run. Every one
 * is tracked so that any way out of the run (normal end, error, Ctrl-C)
 * stops the children by PID and removes the directories.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

const running = new Set<Child>();
const tempDirs = new Set<string>();

/** Bounded so a chatty child cannot grow the parent's memory during a long run. */
const OUTPUT_LIMIT = 64 * 1024;

export class Child {
  readonly pid: number;
  /** Resolves with how the process ended, e.g. "exit code 0" or "signal SIGKILL". */
  readonly exited: Promise<string>;
  private out = '';
  private err = '';
  private readonly proc: ChildProcess;

  /** Runs `node <args>` (or another `command`) in the repository root. */
  constructor(
    readonly name: string,
    args: readonly string[],
    command: string = process.execPath,
  ) {
    // stdin stays a pipe: a child that watches it notices when the parent dies, even by SIGKILL.
    this.proc = spawn(command, args, { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    if (this.proc.pid === undefined) throw new Error(`${name}: could not start ${command}`);
    this.pid = this.proc.pid;
    this.proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.out = (this.out + chunk).slice(-OUTPUT_LIMIT)));
    this.proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.err = (this.err + chunk).slice(-OUTPUT_LIMIT)));
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code, signal) => {
        running.delete(this);
        resolve(signal ? `signal ${signal}` : `exit code ${code}`);
      });
    });
    running.add(this);
  }

  get stdout(): string {
    return this.out;
  }

  get isRunning(): boolean {
    return running.has(this);
  }

  /** For error messages: the end of what the child wrote to stderr. */
  describe(): string {
    const tail = this.err.trim().split('\n').slice(-15).join('\n');
    return tail === '' ? `${this.name} (pid ${this.pid})` : `${this.name} (pid ${this.pid}), stderr:\n${tail}`;
  }

  /** SIGTERM so the child can shut down cleanly; SIGKILL if it has not exited after graceMs. */
  async stop(graceMs = 15_000): Promise<void> {
    if (!this.isRunning) return;
    process.kill(this.pid, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), graceMs)));
    if ((await Promise.race([this.exited, late])) === 'late' && this.isRunning) process.kill(this.pid, 'SIGKILL');
    clearTimeout(timer);
    await this.exited;
  }
}

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** Last-resort cleanup: synchronous, because it also runs from the 'exit' event. */
function cleanUpNow(): void {
  for (const child of running) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // Already gone between its exit and our 'exit' event.
    }
  }
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
}

/** Makes every way out of the process clean up after itself. Call once, first. */
export function cleanUpOnExit(): void {
  process.on('exit', cleanUpNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\n${signal}: stopping the benchmark and its child processes\n`);
      process.exit(128 + constants.signals[signal]);
    });
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
