/** The messages between WorkerProber (main thread) and probe-worker.ts (the probe thread). */
import type { HealthCheck } from '../core/instance.ts';
import type { ProberStats, ProbeOutcome, ProbeTarget } from './probe.ts';

export interface ProbeRequest {
  readonly id: number;
  readonly target: ProbeTarget;
  readonly check: HealthCheck;
}

export type ToProbeThread = { readonly kind: 'probe'; readonly probes: readonly ProbeRequest[] } | { readonly kind: 'close' };

/** A probe's outcome, or the message of what it threw (a bug: Prober reports failures as outcomes). */
export type ProbeResultEntry = { readonly id: number; readonly outcome: ProbeOutcome } | { readonly id: number; readonly error: string };

export type FromProbeThread =
  | { readonly kind: 'results'; readonly results: readonly ProbeResultEntry[]; readonly stats: ProberStats }
  | { readonly kind: 'closed' };
