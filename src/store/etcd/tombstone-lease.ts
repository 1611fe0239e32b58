import type { Etcd3 } from 'etcd3';
import { until } from './client.ts';

/** How long a tombstone outlives its removal, at most; it only has to reach the watchers of that revision. */
const TOMBSTONE_TTL_S = 60;
/** A lease is used for new tombstones while it is younger than this, so every tombstone lives 30 to 60 s. */
const REUSE_MS = 30_000;

/**
 * The lease shared by the tombstones this replica writes. Tombstones are
 * read only from the watch event of their own revision, so they can vanish
 * soon after; one lease for many of them means one grant every 30 s instead
 * of one per removal, and no keep-alives.
 */
export class TombstoneLease {
  private current: { readonly id: string; readonly grantedAt: number } | null = null;
  private granting: Promise<string> | null = null;

  constructor(private readonly client: Etcd3) {}

  get(deadline: number): Promise<string> {
    const current = this.current;
    if (current !== null && Date.now() - current.grantedAt < REUSE_MS) return Promise.resolve(current.id);
    this.granting ??= this.client.leaseClient
      .leaseGrant({ TTL: TOMBSTONE_TTL_S }, until(deadline))
      .then((granted) => {
        this.current = { id: granted.ID, grantedAt: Date.now() };
        return granted.ID;
      })
      .finally(() => {
        this.granting = null;
      });
    return this.granting;
  }

  /** etcd no longer knows `lease` (revoked, or lapsed during an outage): grant a new one next time. */
  forget(lease: string): void {
    if (this.current?.id === lease) this.current = null;
  }
}
