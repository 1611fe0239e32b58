import type { Catalog } from '../core/catalog.ts';
import type { ProxyPolicy } from './policy.ts';

export interface OutlierView {
  readonly consecutiveFailures: number;
  /** Ejections since the count last started over (it does after a long healthy spell). */
  readonly timesEjected: number;
  readonly ejected: boolean;
  /** Epoch ms when the current ejection ends; null when not ejected. */
  readonly ejectedUntil: number | null;
}

export interface OutlierStats {
  readonly ejectionsTotal: number;
  readonly restoresTotal: number;
  /** Ejections refused because too many of the service's instances were already out. */
  readonly cappedTotal: number;
  readonly ejectedNow: number;
}

class Track {
  failures = 0;
  timesEjected = 0;
  ejectedUntil = 0;
  restoredAt = 0;
  timer: NodeJS.Timeout | null = null;

  constructor(
    readonly service: string,
    readonly id: string,
  ) {}
}

function duration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 100) / 10} s`;
}

/**
 * Outlier detection from real traffic: an instance whose last N attempts all
 * failed to connect or answered 5xx is ejected from this replica's picks
 * (`Catalog.setEjected`, local state, never in the store) for
 * base x (times ejected + 1), capped, then restored by a timer. Ejections are
 * rare, so one unref'd timer per ejected instance is fine. The count of
 * ejections starts over once an instance has stayed in for the maximum
 * ejection time, so an old incident does not lengthen today's ejection.
 */
export class OutlierDetector {
  private readonly tracks = new Map<string, Track>();
  private ejections = 0;
  private restores = 0;
  private capped = 0;
  private ejectedCount = 0;

  constructor(
    private readonly catalog: Catalog,
    private readonly clock: () => number,
  ) {}

  /** A response below 500: the consecutive count starts over. */
  success(key: string): void {
    const track = this.tracks.get(key);
    if (track !== undefined) track.failures = 0;
  }

  /** A connection failure or a 5xx response from the instance. */
  failure(key: string, service: string, id: string, policy: ProxyPolicy): void {
    const threshold = policy.outlierConsecutiveFailures;
    if (threshold === 0) return;
    let track = this.tracks.get(key);
    if (track === undefined) {
      track = new Track(service, id);
      this.tracks.set(key, track);
    }
    if (++track.failures < threshold || track.timer !== null) return;
    track.failures = 0;
    this.eject(track, threshold, policy);
  }

  view(key: string): OutlierView | undefined {
    const track = this.tracks.get(key);
    if (track === undefined) return undefined;
    return {
      consecutiveFailures: track.failures,
      timesEjected: track.timesEjected,
      ejected: track.timer !== null,
      ejectedUntil: track.timer !== null ? track.ejectedUntil : null,
    };
  }

  stats(): OutlierStats {
    return {
      ejectionsTotal: this.ejections,
      restoresTotal: this.restores,
      cappedTotal: this.capped,
      ejectedNow: this.ejectedCount,
    };
  }

  /** The instance left the catalog (its ejected flag went with it). */
  forget(key: string): void {
    const track = this.tracks.get(key);
    if (track === undefined) return;
    this.clearTimer(track);
    this.tracks.delete(key);
  }

  /**
   * After a catalog reset: drop what left, and eject again what the reset
   * brought back in (a fresh catalog entry is never ejected).
   */
  resync(): void {
    for (const [key, track] of this.tracks) {
      const entry = this.catalog.entry(track);
      if (entry === undefined) this.forget(key);
      else if (track.timer !== null && !entry.ejected) {
        this.catalog.setEjected(track, true, `still ejected after a resync, until ${new Date(track.ejectedUntil).toISOString()}`);
      }
    }
  }

  /** Clear every timer and restore what this detector ejected. */
  stop(): void {
    for (const track of this.tracks.values()) {
      if (track.timer === null) continue;
      this.clearTimer(track);
      if (this.catalog.setEjected(track, false, 'outlier detection stopped')) this.restores++;
    }
  }

  private eject(track: Track, threshold: number, policy: ProxyPolicy): void {
    const entries = this.catalog.service(track.service)?.entries;
    if (entries === undefined) return;
    let ejected = 0;
    for (const entry of entries.values()) if (entry.ejected) ejected++;
    if ((ejected + 1) * 100 > policy.outlierMaxEjectionPercent * entries.size) {
      this.capped++;
      return;
    }
    const now = this.clock();
    if (track.restoredAt > 0 && now - track.restoredAt >= policy.outlierMaxEjectionMs) track.timesEjected = 0;
    const ms = Math.min(policy.outlierBaseEjectionMs * (track.timesEjected + 1), policy.outlierMaxEjectionMs);
    const reason = `${threshold} consecutive 5xx responses or connection failures; ejected for ${duration(ms)}`;
    if (!this.catalog.setEjected(track, true, reason)) return;
    track.timesEjected++;
    track.ejectedUntil = now + ms;
    track.timer = setTimeout(() => this.restore(track, ms), ms);
    track.timer.unref();
    this.ejections++;
    this.ejectedCount++;
  }

  private restore(track: Track, ms: number): void {
    this.clearTimer(track);
    track.restoredAt = this.clock();
    if (this.catalog.setEjected(track, false, `ejection of ${duration(ms)} ended`)) this.restores++;
  }

  private clearTimer(track: Track): void {
    if (track.timer === null) return;
    clearTimeout(track.timer);
    track.timer = null;
    this.ejectedCount--;
  }
}
