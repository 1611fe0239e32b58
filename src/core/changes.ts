import type { Instance, InstanceKey } from './instance.ts';

/**
 * The change feed's vocabulary. Every store turns its writes into these, in
 * revision order, and every replica's catalog applies them. Revisions are
 * assigned by the store (the memory store counts; etcd uses its own).
 */
export type RemoveReason = 'deregistered' | 'expired' | 'evicted';

export type Change =
  | { readonly kind: 'upsert'; readonly revision: number; readonly instance: Instance; readonly renewedAt: number }
  | { readonly kind: 'remove'; readonly revision: number; readonly key: InstanceKey; readonly reason: RemoveReason }
  | { readonly kind: 'kv'; readonly revision: number; readonly key: string; readonly value: string | null };

/** A whole, consistent view of a store at one revision. */
export interface Snapshot {
  readonly revision: number;
  readonly instances: ReadonlyArray<{ readonly instance: Instance; readonly renewedAt: number }>;
  readonly kv: ReadonlyArray<readonly [string, string]>;
}
