import type { CatalogEntry } from '../../core/catalog.ts';
import { withRevisions, type Instance, type InstanceKey } from '../../core/instance.ts';
import { FencedError, StoreUnavailableError, type StateSource } from '../store.ts';
import { newRid } from './append.ts';
import { claimed, fenceHolds, isLive, resigned } from './leadership.ts';
import type { Entry, Lead, LeaseRenewal, LogRecord } from './record.ts';

/**
 * Writes waiting for the next record (group commit: everything issued while
 * an append is in flight goes into the next one), and how a batch of them
 * becomes a record. A batch is composed against the state after the last
 * position read, and composed again from scratch if another replica takes
 * that position first; what each write does (its revision, whether there
 * was anything to remove, whether its fencing token holds) is decided here,
 * against exactly the state its record will follow.
 */

/** How a waiting write is answered; settled once (by its outcome, a failure or its deadline). */
export interface Settle<T> {
  readonly settled: boolean;
  resolve(value: T): void;
  reject(error: Error): void;
}

export type Op =
  | { readonly kind: 'upsert'; readonly instance: Instance; readonly renewedAt: number; readonly done: Settle<Instance> }
  /** Compare-and-set on `instance.modifyRevision`; `token` null when not leader-only. */
  | { readonly kind: 'update'; readonly instance: Instance; readonly renewedAt: number; readonly token: number | null; readonly done: Settle<Instance | null> }
  | { readonly kind: 'remove'; readonly key: InstanceKey; readonly done: Settle<number | null> }
  /** With `expected`, compare-and-set on the stored value (null: absent); answered null when it differs. */
  | { readonly kind: 'kv'; readonly key: string; readonly value: string | null; readonly expected?: string | null; readonly done: Settle<number | null> }
  | { readonly kind: 'expire'; readonly now: number; readonly token: number; readonly taken: readonly CatalogEntry[]; readonly done: Settle<number> }
  | { readonly kind: 'evict'; readonly key: InstanceKey; readonly token: number; readonly done: Settle<number | null> }
  | { readonly kind: 'renew'; readonly renewals: ReadonlyMap<Instance, number>; readonly done: Settle<void> }
  /** Take over (or renew) leadership; resolves to whether this replica leads after it. */
  | { readonly kind: 'claim'; readonly done: Settle<boolean> }
  | { readonly kind: 'resign'; readonly done: Settle<boolean> };

/**
 * A promise with a deadline: after `timeoutMs` it rejects with
 * StoreUnavailableError even if the filesystem never answers (a hung
 * network mount), and a batch composed later leaves it out.
 */
export function deferred<T>(timeoutMs: number, what: string): { promise: Promise<T>; done: Settle<T> } {
  let resolvePromise!: (value: T) => void;
  let rejectPromise!: (error: Error) => void;
  const promise = new Promise<T>((resolve, reject) => {
    resolvePromise = resolve;
    rejectPromise = reject;
  });
  let settled = false;
  const timer = setTimeout(() => {
    done.reject(
      new StoreUnavailableError(`shared-file store: the shared directory did not answer ${what} within ${timeoutMs} ms; it may or may not have been recorded`),
    );
  }, timeoutMs);
  timer.unref();
  const done: Settle<T> = {
    get settled() {
      return settled;
    },
    resolve(value) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolvePromise(value);
    },
    reject(error) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      rejectPromise(error);
    },
  };
  return { promise, done };
}

/** The state a batch is composed against: the last record read. */
export interface Head {
  readonly rid: string | null;
  readonly revision: number;
  readonly lead: Lead | null;
}

export interface ComposeContext {
  readonly head: Head;
  readonly source: StateSource;
  readonly self: string;
  /** The writer's clock now. */
  readonly at: number;
  readonly leaderLeaseMs: number;
}

export interface Composition {
  /** Null when nothing in the batch needs a record (every write was answered already). */
  readonly record: LogRecord | null;
  /** Answers the writes in the record; run once it has been appended and applied. */
  readonly commit: ReadonlyArray<() => void>;
}

/**
 * Turns the unsettled writes of a batch into one record. Writes that change
 * nothing (removing an absent instance, a stale fencing token, a claim while
 * another replica leads) are answered at once and take no revision.
 */
export function compose(batch: readonly Op[], ctx: ComposeContext): Composition {
  const { source, self, at } = ctx;
  let revision = ctx.head.revision;
  let lead = ctx.head.lead;
  const entries: Entry[] = [];
  const commit: Array<() => void> = [];
  // Instances written earlier in this batch (null: removed), ahead of the catalog.
  const written = new Map<string, Instance | null>();
  const current = (key: InstanceKey): Instance | undefined => {
    const pending = written.get(keyString(key));
    return pending === undefined ? source.get(key) : (pending ?? undefined);
  };
  // KV entries written earlier in this batch (null: deleted), ahead of the catalog.
  const writtenKv = new Map<string, string | null>();
  const kvValue = (key: string): string | null => {
    const pending = writtenKv.get(key);
    return pending === undefined ? (source.kvGet(key) ?? null) : pending;
  };
  const remove = (key: InstanceKey, reason: 'deregistered' | 'expired' | 'evicted', token?: number): number => {
    const rev = ++revision;
    const entry: Entry = { op: 'remove', rev, service: key.service, id: key.id, reason };
    entries.push(token === undefined ? entry : { ...entry, token });
    written.set(keyString(key), null);
    return rev;
  };
  const put = (instance: Instance, createRevision: number, renewedAt: number): Instance => {
    const rev = ++revision;
    const stored = withRevisions(instance, createRevision || rev, rev);
    entries.push({ op: 'upsert', rev, renewedAt, instance: stored });
    written.set(keyString(stored), stored);
    return stored;
  };

  for (const op of batch) {
    if (op.done.settled) continue;
    switch (op.kind) {
      case 'upsert': {
        const instance = put(op.instance, op.instance.createRevision, op.renewedAt);
        commit.push(() => op.done.resolve(instance));
        break;
      }
      case 'update': {
        const stored = current(op.instance);
        if (op.token !== null && !fenceHolds(lead, self, op.token, at)) {
          op.done.reject(fenced(op.token, lead, self, at, 'nothing was changed'));
        } else if (stored === undefined || stored.modifyRevision !== op.instance.modifyRevision) {
          op.done.resolve(null);
        } else {
          // A normal upsert entry: it carries the lease's renewal time as the caller last saw it, so the deadline stays put.
          const instance = put(op.instance, stored.createRevision, op.renewedAt);
          commit.push(() => op.done.resolve(instance));
        }
        break;
      }
      case 'remove': {
        if (current(op.key) === undefined) {
          op.done.resolve(null);
        } else {
          const rev = remove(op.key, 'deregistered');
          commit.push(() => op.done.resolve(rev));
        }
        break;
      }
      case 'kv': {
        if (op.expected !== undefined && kvValue(op.key) !== op.expected) {
          op.done.resolve(null);
          break;
        }
        const rev = ++revision;
        entries.push({ op: 'kv', rev, key: op.key, value: op.value });
        writtenKv.set(op.key, op.value);
        commit.push(() => op.done.resolve(rev));
        break;
      }
      case 'expire': {
        if (!fenceHolds(lead, self, op.token, at)) {
          op.done.reject(fenced(op.token, lead, self, at));
          break;
        }
        let removed = 0;
        for (const entry of op.taken) {
          // Still lapsed and still the version that lapsed (not renewed, re-registered or removed since).
          if (entry.live && entry.deadline <= op.now && current(entry.instance) === entry.instance) {
            remove(entry.instance, 'expired', op.token);
            removed++;
          }
        }
        if (removed === 0) op.done.resolve(0);
        else commit.push(() => op.done.resolve(removed));
        break;
      }
      case 'evict': {
        if (!fenceHolds(lead, self, op.token, at)) {
          op.done.reject(fenced(op.token, lead, self, at));
        } else if (current(op.key) === undefined) {
          op.done.resolve(null);
        } else {
          const rev = remove(op.key, 'evicted', op.token);
          commit.push(() => op.done.resolve(rev));
        }
        break;
      }
      case 'renew': {
        const leases = latestRenewals(op.renewals, (key) => current(key) !== undefined);
        if (leases.length === 0) {
          op.done.resolve();
        } else {
          entries.push({ op: 'renew', leases });
          commit.push(() => op.done.resolve());
        }
        break;
      }
      case 'claim':
      case 'resign': {
        const next = op.kind === 'claim' ? claimed(lead, self, at, ctx.leaderLeaseMs) : resigned(lead, self, at);
        if (next === null) {
          op.done.resolve(false);
        } else {
          entries.push({ op: 'lead', ...next });
          lead = next;
          commit.push(() => op.done.resolve(op.kind === 'claim'));
        }
        break;
      }
    }
  }
  if (entries.length === 0) return { record: null, commit };
  const { head } = ctx;
  return { record: { rid: newRid(), prev: head.rid, base: head.revision, lead: head.lead, writer: self, at, entries }, commit };
}

function keyString(key: InstanceKey): string {
  return `${key.service}\u0000${key.id}`;
}

/** One renewal per instance key (an instance replaced since its renewal keeps the newest time). */
function latestRenewals(renewals: ReadonlyMap<Instance, number>, present: (key: InstanceKey) => boolean): LeaseRenewal[] {
  const byKey = new Map<string, LeaseRenewal>();
  for (const [instance, renewedAt] of renewals) {
    const key = keyString(instance);
    const seen = byKey.get(key);
    if ((seen === undefined || seen[2] < renewedAt) && present(instance)) byKey.set(key, [instance.service, instance.id, renewedAt]);
  }
  return [...byKey.values()];
}

export function fenced(token: number, lead: Lead | null, self: string, at: number, outcome = 'nothing was removed'): FencedError {
  const holder = isLive(lead, at) ? `${lead.holder} leads with token ${lead.token}` : 'no replica leads';
  return new FencedError(`shared-file store: fencing token ${token} of ${self} is not the current leader's (${holder}); ${outcome}`);
}
