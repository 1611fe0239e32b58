import type { LeadershipState } from '../store.ts';
import type { Lead } from './record.ts';

/**
 * Leadership rules, evaluated by a writer against the state after the
 * previous log position (so check and write are one atomic append) and by
 * every replica for its own view. A term is live while `until` is in the
 * future on the clock of whoever judges it: the replicas' clocks must agree
 * to well within the lease (NTP-synchronised hosts do, by orders of
 * magnitude).
 */

export function isLive(lead: Lead | null, at: number): lead is Lead {
  return lead !== null && lead.until > at;
}

/** True when `holder` leads with `token` at time `at`: leader-only writes need this. */
export function fenceHolds(lead: Lead | null, holder: string, token: number, at: number): boolean {
  return isLive(lead, at) && lead.holder === holder && lead.token === token;
}

/**
 * The term after `holder` claims leadership at `at`: a renewal of its own
 * live term, or a new term (next token) when the last one lapsed; null when
 * someone else holds a live term.
 */
export function claimed(lead: Lead | null, holder: string, at: number, leaseMs: number): Lead | null {
  if (lead === null) return { holder, token: 1, until: at + leaseMs };
  if (lead.until <= at) return { holder, token: lead.token + 1, until: at + leaseMs };
  return lead.holder === holder ? { holder, token: lead.token, until: at + leaseMs } : null;
}

/** The term after `holder` resigns (until 0: lapsed for every clock), or null when it does not lead. */
export function resigned(lead: Lead | null, holder: string, at: number): Lead | null {
  return isLive(lead, at) && lead.holder === holder ? { holder, token: lead.token, until: 0 } : null;
}

export function leadershipView(lead: Lead | null, self: string, now: number, observedAt: number): LeadershipState {
  if (!isLive(lead, now)) return { isLeader: false, leaderId: null, fencingToken: 0, observedAt };
  return { isLeader: lead.holder === self, leaderId: lead.holder, fencingToken: lead.token, observedAt };
}
