import type { LeadershipState } from '../store.ts';

/**
 * This replica's view of the election, from the replies of the `lead`
 * script (the leader key's value `<token>:<instanceId>`). Pure bookkeeping:
 * the store runs the rounds.
 *
 * A term is trusted for leaderLeaseMs from the moment the round that took or
 * extended it was *sent* (monotonic clock): redis starts the key's expiry
 * later than that, so this replica stops calling itself leader no later
 * than redis lets the term lapse, even when renewals stop arriving.
 */
export class LeadershipView {
  private holderId: string | null = null;
  private token = 0;
  private trustedUntil = 0;
  /** Until when the holder seen in the last reply is believed (another replica's term: one lease after the round was sent). */
  private holderSeenUntil = 0;
  private observedAt = 0;

  constructor(
    private readonly instanceId: string,
    private readonly leaseMs: number,
    private readonly clock: () => number,
  ) {}

  /** Records a round's reply; `sentAt` is performance.now() when the round was sent. Returns whether the holder is this replica. */
  observe(holder: string, sentAt: number): boolean {
    const colon = holder.indexOf(':');
    const token = Number(holder.slice(0, colon));
    if (colon < 1 || !Number.isSafeInteger(token)) throw new Error(`redis store: the leader key holds ${JSON.stringify(holder)}, not <token>:<instanceId>`);
    this.holderId = holder.slice(colon + 1);
    this.token = token;
    this.trustedUntil = this.holderId === this.instanceId ? sentAt + this.leaseMs : 0;
    this.holderSeenUntil = sentAt + this.leaseMs;
    this.observedAt = this.clock();
    return this.holderId === this.instanceId;
  }

  /**
   * The leader key's value while this replica holds (or last held) the term,
   * for resigning; resigning deletes the key only if it still holds exactly
   * this, so a lapsed term is safe to resign too.
   */
  ownTerm(): string | null {
    return this.holderId === this.instanceId ? `${this.token}:${this.instanceId}` : null;
  }

  /** After resigning: no longer the leader, and nobody is known to be. */
  forget(): void {
    this.holderId = null;
    this.token = 0;
    this.trustedUntil = 0;
    this.holderSeenUntil = 0;
  }

  state(): LeadershipState {
    const lapsed = this.holderId === this.instanceId ? !this.isLeader() : performance.now() >= this.holderSeenUntil;
    if (lapsed) {
      // No round has confirmed the term for a whole lease (redis unreachable, or our own term not renewed):
      // whoever held it may have lost it, and someone else may lead by now.
      return { isLeader: false, leaderId: null, fencingToken: 0, observedAt: this.observedAt };
    }
    return { isLeader: this.isLeader(), leaderId: this.holderId, fencingToken: this.token, observedAt: this.observedAt };
  }

  private isLeader(): boolean {
    return this.holderId === this.instanceId && performance.now() < this.trustedUntil;
  }
}
