import type { Instance } from '../../core/instance.ts';
import { memberOf } from './records.ts';

/**
 * Lease renewals waiting to be sent. A heartbeat only sets a Map entry
 * (keyed by the instance object: no string is built per heartbeat); every
 * renewFlushMs the whole batch goes to redis as one
 * `ZADD leases XX GT deadline member ...`: XX so a renewal never brings
 * back an instance removed meanwhile, GT so a late batch never moves a
 * deadline backwards.
 */
export class RenewalBatch {
  private pending = new Map<Instance, number>();

  get size(): number {
    return this.pending.size;
  }

  note(instance: Instance, renewedAt: number): void {
    this.pending.set(instance, renewedAt);
  }

  /** Takes the batch: the ZADD arguments after the key, and the renewals to put back if sending fails. */
  take(): { args: string[]; renewals: Map<Instance, number> } {
    const renewals = this.pending;
    this.pending = new Map();
    const args = ['XX', 'GT'];
    for (const [instance, renewedAt] of renewals) args.push(String(renewedAt + instance.ttlMs), memberOf(instance));
    return { args, renewals };
  }

  /** A batch that was not sent: its renewals count again unless newer ones arrived meanwhile. */
  restore(renewals: ReadonlyMap<Instance, number>): void {
    for (const [instance, renewedAt] of renewals) {
      const newer = this.pending.get(instance);
      if (newer === undefined || newer < renewedAt) this.pending.set(instance, renewedAt);
    }
  }
}
