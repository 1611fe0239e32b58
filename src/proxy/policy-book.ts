import type { Catalog } from '../core/catalog.ts';
import { parsePolicy, type ProxyPolicy } from './policy.ts';

const KEY_PREFIX = 'policy/';

/** The KV key a service's policy is stored under (JSON of a possibly partial ProxyPolicy). */
export function policyKvKey(service: string): string {
  return KEY_PREFIX + service;
}

/**
 * The parsed proxy policy of every service that has one, kept in step with
 * the catalog's KV through its events (as RuntimeConfig does for the runtime
 * settings), so a proxied request reads a Map and never parses. A stored
 * value is validated again on every replica: one that does not parse (written
 * by another version, or by hand) means the defaults, and a warning.
 */
export class PolicyBook {
  private readonly policies = new Map<string, ProxyPolicy>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly catalog: Catalog,
    readonly defaults: ProxyPolicy,
    private readonly onWarning: (message: string) => void = () => undefined,
  ) {
    this.unsubscribe = catalog.subscribe({
      event: (event) => {
        if (event.type === 'config_changed' && event.key.startsWith(KEY_PREFIX)) {
          this.load(event.key.slice(KEY_PREFIX.length), event.value);
        }
      },
      reset: () => this.reloadAll(),
    });
    this.reloadAll();
  }

  /** The policy proxied requests to `service` follow. */
  get(service: string): ProxyPolicy {
    return this.policies.get(service) ?? this.defaults;
  }

  close(): void {
    this.unsubscribe();
  }

  /** After a reset the KV may differ in any key; rare (start-up, resync), so a snapshot is affordable. */
  private reloadAll(): void {
    this.policies.clear();
    for (const [key, value] of this.catalog.snapshot().kv) {
      if (key.startsWith(KEY_PREFIX)) this.load(key.slice(KEY_PREFIX.length), value);
    }
  }

  private load(service: string, stored: string | null): void {
    this.policies.delete(service);
    if (stored === null) return;
    let body: unknown;
    try {
      body = JSON.parse(stored);
    } catch {
      this.onWarning(`The stored proxy policy of service "${service}" is not JSON; using the defaults.`);
      return;
    }
    const parsed = parsePolicy(body, this.defaults);
    if ('problems' in parsed) {
      const detail = parsed.problems.map((p) => `${p.field} ${p.problem}`).join('; ');
      this.onWarning(`The stored proxy policy of service "${service}" is invalid (${detail}); using the defaults.`);
      return;
    }
    this.policies.set(service, parsed.policy);
  }
}
