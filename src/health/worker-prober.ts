import { Worker } from 'node:worker_threads';
import type { HealthCheck } from '../core/instance.ts';
import type { ProberOptions, ProberStats, ProbeOutcome, ProbeTarget } from './probe.ts';
import type { FromProbeThread, ProbeRequest, ToProbeThread } from './probe-thread-protocol.ts';

/** Options as they cross to the thread: structured-clonable, so no clock (the thread times probes with its own). */
export type WorkerProberOptions = Omit<ProberOptions, 'clock'>;

/** How long close() waits for the thread to shut its connections before terminating it. */
const CLOSE_TIMEOUT_MS = 2_000;

/** After the thread dies, probes fail at once for this long instead of starting a thread per batch: no crash loop. */
const RESTART_DELAY_MS = 1_000;

/** What a probe still running when the prober closes resolves to, as Prober's own in-flight probes do. */
const STOPPED: ProbeOutcome = { result: 'fail', reason: 'probe stopped', durationMs: 0 };

interface Waiter {
  resolve(outcome: ProbeOutcome): void;
  reject(error: Error): void;
}

/**
 * A Prober in a worker thread, with the same contract. Probing thousands of
 * instances is many small allocations and callbacks (undici requests,
 * timers, sockets); in a thread of its own none of that, nor its garbage
 * collection, runs between the main thread's requests, which only see one
 * message per batch of results. Probes asked for in the same turn of the
 * event loop go over in one message (a postMessage measured about 17 µs of
 * the main thread under load).
 *
 * The thread starts with the first probe. If it dies (a bug), the probes it
 * had are rejected (the checker requeues them without judging anyone), so
 * are those asked for within a second after, and the next probe after that
 * starts a new thread. The thread keeps the process alive
 * only while probes are running, as the sockets of an in-thread Prober would.
 */
export class WorkerProber {
  private readonly options: WorkerProberOptions;
  private worker: Worker | undefined;
  private readonly waiting = new Map<number, Waiter>();
  private outbox: ProbeRequest[] = [];
  private flushScheduled = false;
  private nextId = 1;
  private stats_: ProberStats = { sockets: 0, connects: 0 };
  /** Connections opened by threads that have ended: the count never goes back. */
  private connectsBefore = 0;
  private closing: Promise<void> | undefined;
  /** Why the last thread died, and when a new one may start. */
  private lastFailure: Error | undefined;
  private restartAt = 0;

  constructor(options: WorkerProberOptions) {
    this.options = options;
  }

  probe(target: ProbeTarget, check: HealthCheck): Promise<ProbeOutcome> {
    if (this.closing !== undefined) return Promise.resolve(STOPPED);
    const id = this.nextId++;
    const outcome = new Promise<ProbeOutcome>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    this.outbox.push({ id, target, check });
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    return outcome;
  }

  stats(): ProberStats {
    return { sockets: this.stats_.sockets, connects: this.connectsBefore + this.stats_.connects };
  }

  /** Ends the thread and its connections; probes still running resolve as failed ("probe stopped"). Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.outbox.length === 0 || this.closing !== undefined) return;
    const probes = this.outbox;
    this.outbox = [];
    if (this.worker === undefined && this.lastFailure !== undefined && Date.now() < this.restartAt) {
      for (const { id } of probes) {
        this.waiting.get(id)?.reject(this.lastFailure);
        this.waiting.delete(id);
      }
      return;
    }
    const worker = this.thread();
    worker.ref();
    worker.postMessage({ kind: 'probe', probes } satisfies ToProbeThread);
  }

  private thread(): Worker {
    if (this.worker !== undefined) return this.worker;
    const worker = new Worker(new URL('./probe-worker.mjs', import.meta.url), { workerData: this.options });
    worker.on('message', (message: FromProbeThread) => {
      // Once closing, what the thread still sends is its probes being cut: they all resolve as stopped.
      if (message.kind === 'results' && this.closing === undefined) this.settle(message);
    });
    // An uncaught error in the thread is followed by its exit, which fails what the thread had.
    let failure: Error | undefined;
    worker.on('error', (error) => {
      failure = error;
    });
    worker.once('exit', (code) => this.ended(worker, failure ?? new Error(`the probe thread stopped (exit code ${code})`)));
    this.worker = worker;
    return worker;
  }

  private settle(message: Extract<FromProbeThread, { kind: 'results' }>): void {
    this.stats_ = message.stats;
    for (const entry of message.results) {
      const waiter = this.waiting.get(entry.id);
      if (waiter === undefined) continue;
      this.waiting.delete(entry.id);
      if ('outcome' in entry) waiter.resolve(entry.outcome);
      else waiter.reject(new Error(entry.error));
    }
    if (this.waiting.size === 0) this.worker?.unref();
  }

  private ended(worker: Worker, error: Error): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    this.lastFailure = error;
    this.restartAt = Date.now() + RESTART_DELAY_MS;
    this.connectsBefore += this.stats_.connects;
    this.stats_ = { sockets: 0, connects: 0 };
    const waiters = [...this.waiting.values()];
    this.waiting.clear();
    for (const waiter of waiters) waiter.reject(error);
  }

  private async shutDown(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker !== undefined) {
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      const closed = new Promise<void>((resolve) => {
        worker.on('message', (message: FromProbeThread) => {
          if (message.kind === 'closed') resolve();
        });
      });
      worker.ref();
      worker.postMessage({ kind: 'close' } satisfies ToProbeThread);
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, CLOSE_TIMEOUT_MS);
      });
      await Promise.race([closed, exited, late]);
      clearTimeout(timer);
      await worker.terminate();
      this.stats_ = { sockets: 0, connects: this.stats_.connects };
    }
    const waiters = [...this.waiting.values()];
    this.waiting.clear();
    for (const waiter of waiters) waiter.resolve(STOPPED);
  }
}
