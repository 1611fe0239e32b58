/**
 * A circuit breaker per instance: closed, then open after `failures`
 * consecutive failures, then after `openMs` exactly one trial attempt
 * (half-open) that closes it on success or opens it again on failure.
 *
 * cockatiel's breaker wraps the call it guards (`execute(fn)`) and reads the
 * wall clock itself; the proxy needs a check before picking (to exclude the
 * instance) and a verdict after the response headers, per instance, with a
 * clock tests can drive, so this is a small explicit state machine instead.
 */
export type BreakerState = 'closed' | 'open' | 'half-open';

/** What an attempt may do: go normally, go as the one half-open trial, or not go. */
export type Admission = 'allowed' | 'trial' | 'refused';

/** 'neutral': the attempt ended without a verdict on the instance (client gone, body too large). */
export type Verdict = 'success' | 'failure' | 'neutral';

export interface BreakerView {
  readonly state: BreakerState;
  readonly consecutiveFailures: number;
  /** Epoch ms when it last opened; null while closed. */
  readonly openedAt: number | null;
  /** Epoch ms from which a trial is allowed; null while closed. */
  readonly nextTrialAt: number | null;
  /** Times it opened since the instance appeared. */
  readonly opens: number;
}

class Circuit {
  open = false;
  failures = 0;
  openedAt = 0;
  nextTrialAt = 0;
  trialInFlight = false;
  opens = 0;
}

export class Breakers {
  private readonly circuits = new Map<string, Circuit>();
  private openCount = 0;

  constructor(private readonly clock: () => number) {}

  /** Called before an attempt; a 'trial' must be followed by record(..., true, ...). */
  admit(key: string, failuresToOpen: number): Admission {
    if (failuresToOpen === 0) return 'allowed';
    const circuit = this.circuits.get(key);
    if (circuit === undefined || !circuit.open) return 'allowed';
    if (circuit.trialInFlight || this.clock() < circuit.nextTrialAt) return 'refused';
    circuit.trialInFlight = true;
    return 'trial';
  }

  /**
   * The verdict of an attempt. The trial's verdict always counts (even if
   * the policy changed meanwhile, so a trial never stays taken); while open,
   * attempts that were already running when it opened say nothing new.
   */
  record(key: string, trial: boolean, verdict: Verdict, failuresToOpen: number, openMs: number): void {
    let circuit = this.circuits.get(key);
    if (trial) {
      if (circuit === undefined || !circuit.open) return;
      circuit.trialInFlight = false;
      if (verdict === 'success') this.close(circuit);
      else if (verdict === 'failure') this.trip(circuit, openMs);
      return;
    }
    if (failuresToOpen === 0 || verdict === 'neutral') return;
    if (circuit === undefined) {
      if (verdict === 'success') return;
      circuit = new Circuit();
      this.circuits.set(key, circuit);
    }
    if (circuit.open) return;
    if (verdict === 'success') circuit.failures = 0;
    else if (++circuit.failures >= failuresToOpen) this.trip(circuit, openMs);
  }

  view(key: string): BreakerView {
    const circuit = this.circuits.get(key);
    if (circuit === undefined || !circuit.open) {
      return { state: 'closed', consecutiveFailures: circuit?.failures ?? 0, openedAt: null, nextTrialAt: null, opens: circuit?.opens ?? 0 };
    }
    return {
      state: circuit.trialInFlight || this.clock() >= circuit.nextTrialAt ? 'half-open' : 'open',
      consecutiveFailures: circuit.failures,
      openedAt: circuit.openedAt,
      nextTrialAt: circuit.nextTrialAt,
      opens: circuit.opens,
    };
  }

  /** Breakers open now (a trial pending or running counts as open). */
  get openNow(): number {
    return this.openCount;
  }

  forget(key: string): void {
    const circuit = this.circuits.get(key);
    if (circuit?.open) this.openCount--;
    this.circuits.delete(key);
  }

  /** Drop the breakers of instances `keep` rejects (after a catalog reset). */
  prune(keep: (key: string) => boolean): void {
    for (const key of [...this.circuits.keys()]) if (!keep(key)) this.forget(key);
  }

  private trip(circuit: Circuit, openMs: number): void {
    if (!circuit.open) this.openCount++;
    circuit.open = true;
    circuit.openedAt = this.clock();
    circuit.nextTrialAt = circuit.openedAt + openMs;
    circuit.opens++;
  }

  private close(circuit: Circuit): void {
    if (circuit.open) this.openCount--;
    circuit.open = false;
    circuit.failures = 0;
  }
}
