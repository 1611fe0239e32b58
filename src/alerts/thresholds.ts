import { compilePattern, type NamePattern } from '../auth/glob.ts';

/**
 * How many eligible instances each service needs before
 * `service_instances_low` fires: its own number (by exact name, else the
 * first pattern that matches, in the order written), else the default. 0
 * means the rule is off for that service.
 */
export class InstanceThresholds {
  private readonly exact = new Map<string, number>();
  private readonly patterns: { readonly matches: NamePattern; readonly min: number }[] = [];

  constructor(
    readonly defaultMin: number,
    byService: ReadonlyMap<string, number>,
  ) {
    for (const [name, min] of byService) {
      if (name.includes('*')) this.patterns.push({ matches: compilePattern(name), min });
      else this.exact.set(name, min);
    }
  }

  of(service: string): number {
    const own = this.exact.get(service);
    if (own !== undefined) return own;
    for (const { matches, min } of this.patterns) if (matches(service)) return min;
    return this.defaultMin;
  }

  /**
   * Services named exactly with a threshold above 0: watched even while they
   * have no instance at all, since a service that vanished is the worst
   * case of "too few". Services known only by a pattern or the default are
   * watched while they are registered (else every service ever scaled to
   * zero would alert for good).
   */
  *namedServices(): Generator<string> {
    for (const [name, min] of this.exact) if (min > 0) yield name;
  }

  isNamed(service: string): boolean {
    return (this.exact.get(service) ?? 0) > 0;
  }
}
