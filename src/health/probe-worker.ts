/**
 * The probe thread (started by WorkerProber through probe-worker.mjs): a
 * real Prober whose results go back to the main thread in batches. Nothing
 * here judges a result; the checker does that on the main thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Prober, type ProberOptions } from './probe.ts';
import type { FromProbeThread, ProbeResultEntry, ToProbeThread } from './probe-thread-protocol.ts';

const port = parentPort;
if (port === null) throw new Error('probe-worker.ts runs only as a worker thread');

const prober = new Prober(workerData as ProberOptions);
let results: ProbeResultEntry[] = [];
let flushScheduled = false;

/**
 * Results that settle in the same turn go back in one message. Not held
 * longer: holding them for a few ms measured worse (bursts of results land
 * on the main thread at once, between its requests).
 */
function flush(): void {
  flushScheduled = false;
  const batch = results;
  results = [];
  port!.postMessage({ kind: 'results', results: batch, stats: prober.stats() } satisfies FromProbeThread);
}

function settled(entry: ProbeResultEntry): void {
  results.push(entry);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flush);
  }
}

port.on('message', (message: ToProbeThread) => {
  if (message.kind === 'close') {
    void prober.close().finally(() => port.postMessage({ kind: 'closed' } satisfies FromProbeThread));
    return;
  }
  for (const { id, target, check } of message.probes) {
    // Prober.probe reports every failure as an outcome; a throw is a bug, passed back as such.
    prober.probe(target, check).then(
      (outcome) => settled({ id, outcome }),
      (error: unknown) => settled({ id, error: error instanceof Error ? error.message : String(error) }),
    );
  }
});
