import type { Etcd3, IKeyValue } from 'etcd3';
import type { LeadershipState } from '../store.ts';
import { CALL_TIMEOUT_MS } from './client.ts';
import type { KeepAlives } from './keep-alives.ts';
import type { KeyLayout } from './keys.ts';
import type { Reachability } from './reachability.ts';

export interface ElectionOptions {
  readonly instanceId: string;
  readonly leaderLeaseMs: number;
  readonly leaderRenewMs: number;
  readonly clock: () => number;
}

/** This replica's term as leader. */
interface Term {
  readonly lease: string;
  readonly token: number;
  /** Until when (clock ms) the lease is known to outlive any keep-alive etcd acknowledged. */
  confirmedUntil: number;
}

/**
 * Leader election on one key, `<prefix>leader`, holding the leader's
 * instance id and bound to a lease of its own (TTL ceil(leaderLeaseMs / 1000)
 * s). A replica becomes leader by creating the key in a transaction that
 * requires it to be absent; the fencing token is the key's create_revision,
 * which is larger for every new term, and leader-only writes compare it in
 * their own transactions.
 *
 * Every leaderRenewMs each replica reads the key (followers learn the leader
 * and token; a leader checks the key is still its own); the leader first
 * keeps its lease alive. When the key is absent a replica grants a lease and
 * tries to create it. A leader counts itself leader only until
 * leaderLeaseMs after it sent the last keep-alive etcd acknowledged, so it
 * stops before etcd can let its lease lapse and hand the key to another.
 */
export class Election {
  private term: Term | null = null;
  private leader: { readonly id: string; readonly token: number } | null = null;
  private observedAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly client: Etcd3,
    private readonly keys: KeyLayout,
    private readonly keepAlives: KeepAlives,
    private readonly reachability: Reachability,
    private readonly options: ElectionOptions,
  ) {}

  view(): LeadershipState {
    const term = this.term;
    const now = this.options.clock();
    const isLeader = term !== null && now < term.confirmedUntil;
    // Our own term counts while confirmed; another replica's for one lease after a round last saw it
    // (etcd unreachable: whoever held it may have lost it by now).
    const leader = this.leader;
    const known = leader !== null && (leader.id === this.options.instanceId ? isLeader : now < this.observedAt + this.options.leaderLeaseMs);
    return { isLeader, leaderId: known ? leader.id : null, fencingToken: known ? leader.token : 0, observedAt: this.observedAt };
  }

  /** Runs the first round (so a lone replica leads once open resolves), then one every leaderRenewMs. */
  async start(): Promise<void> {
    await this.round();
  }

  /** The leader key was deleted: try to take over now rather than at the next round. */
  poke(): void {
    if (this.stopped || this.running !== null) return;
    if (this.timer) clearTimeout(this.timer);
    void this.round();
  }

  /** Stops the rounds and gives up the term: revoking the lease deletes the key, so another replica takes over at once. */
  async resign(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    const term = this.term;
    this.term = null;
    if (term !== null) await this.revoke(term.lease);
  }

  private round(): Promise<void> {
    this.running = this.step()
      .then(
        () => {
          this.observedAt = this.options.clock();
          this.reachability.ok();
        },
        (err: unknown) => this.reachability.failed(err),
      )
      .finally(() => {
        this.running = null;
        if (this.stopped) return;
        this.timer = setTimeout(() => void this.round(), this.options.leaderRenewMs);
        this.timer.unref();
      });
    return this.running;
  }

  private async step(): Promise<void> {
    const startedAt = this.options.clock();
    if (this.term !== null) await this.renew(this.term, startedAt);
    const { kvs } = await this.client.kv.range({ key: this.keys.leader });
    const current = kvs[0];
    if (current !== undefined) {
      this.observe(current);
      return;
    }
    if (this.term !== null) {
      // Our key was deleted under a live lease (by hand): that term is over.
      void this.revoke(this.term.lease);
      this.term = null;
    }
    await this.campaign(startedAt);
  }

  private async renew(term: Term, startedAt: number): Promise<void> {
    const ttl = await this.keepAlives.once(term.lease, CALL_TIMEOUT_MS);
    if (ttl > 0) term.confirmedUntil = startedAt + this.options.leaderLeaseMs;
    // The lease lapsed, and the key went with it.
    else this.term = null;
  }

  private async campaign(startedAt: number): Promise<void> {
    const { ID: lease } = await this.client.leaseClient.leaseGrant({ TTL: Math.ceil(this.options.leaderLeaseMs / 1000) });
    const key = this.keys.leader;
    const result = await this.client.kv
      .txn({
        compare: [{ key, target: 'Create', result: 'Equal', create_revision: 0 }],
        success: [{ request_put: { key, value: Buffer.from(this.options.instanceId), lease } }],
        failure: [{ request_range: { key } }],
      })
      .catch(async (err: unknown) => {
        await this.revoke(lease);
        throw err;
      });
    const winner = result.succeeded ? undefined : result.responses[0]?.response_range.kvs[0];
    // A campaign retried after a lost answer finds its own key: the term is ours.
    if (result.succeeded || winner?.lease === lease) {
      const token = result.succeeded ? Number(result.header.revision) : Number(winner!.create_revision);
      this.term = { lease, token, confirmedUntil: startedAt + this.options.leaderLeaseMs };
      this.leader = { id: this.options.instanceId, token };
      return;
    }
    await this.revoke(lease);
    this.leader = winner === undefined ? null : leaderOf(winner);
  }

  private observe(current: IKeyValue): void {
    this.leader = leaderOf(current);
    const term = this.term;
    if (term !== null && term.token !== this.leader.token) {
      this.term = null;
      void this.revoke(term.lease);
    }
  }

  private async revoke(lease: string): Promise<void> {
    await this.client.leaseClient.leaseRevoke({ ID: lease }).catch(() => {
      // Best effort: a lease nobody keeps alive lapses on its own.
    });
  }
}

function leaderOf(kv: IKeyValue): { id: string; token: number } {
  return { id: kv.value.toString('utf8'), token: Number(kv.create_revision) };
}
