import type { Catalog } from '../core/catalog.ts';
import type { RegistryEvent } from '../core/events.ts';
import { parseStrategy, STRATEGY_CODES, type StrategyCode } from '../core/selection/names.ts';
import type { StrategyName } from '../core/selection/strategy.ts';

/**
 * The original Maxine's runtime settings (GET/PUT /api/maxine/control/config).
 * They live in the store's KV under `config/<key>`, so every replica sees the
 * same values; this class keeps a parsed copy, refreshed from the change
 * feed, so the hot paths read plain fields and never parse.
 */
export const RUNTIME_KEYS = [
  'logAsync',
  'heartBeatTimeout',
  'logJsonPrettify',
  'serverSelectionStrategy',
  'logFormat',
  'discoveryMode',
] as const;
export type RuntimeKey = (typeof RUNTIME_KEYS)[number];

export const LOG_FORMATS = {
  JSON: { name: 'JSON', code: '0', message: 'Jsonified logging', ordinal: 0 },
  PLAIN: { name: 'PLAIN', code: '1', message: 'Plain logs', ordinal: 1 },
} as const;
export type LogFormat = keyof typeof LOG_FORMATS;

/** What a discover without `mode` does: redirect to the chosen instance, or forward the request to it. */
export const DISCOVERY_MODES = {
  REDIRECT: { name: 'REDIRECT', code: '0', message: 'Redirect', ordinal: 0 },
  PROXY: { name: 'PROXY', code: '1', message: 'Proxy', ordinal: 1 },
} as const;
export type DiscoveryMode = keyof typeof DISCOVERY_MODES;

export interface RuntimeSettings {
  readonly logAsync: boolean;
  readonly heartBeatTimeout: number;
  readonly logJsonPrettify: boolean;
  readonly serverSelectionStrategy: StrategyName;
  readonly logFormat: LogFormat;
  readonly discoveryMode: DiscoveryMode;
}

/** The original's per-key answers to a PUT. */
export type PutOutcome = 'Success' | 'Type Error' | 'Wrong value Or Invalid value';

const KV_PREFIX = 'config/';

type Parsed = { ok: true; value: unknown } | { ok: false; outcome: Exclude<PutOutcome, 'Success'> };

const PARSERS: Record<RuntimeKey, (raw: unknown) => Parsed> = {
  logAsync: parseBoolean,
  logJsonPrettify: parseBoolean,
  heartBeatTimeout: (raw) => {
    if (typeof raw !== 'number' || !Number.isInteger(raw)) return { ok: false, outcome: 'Type Error' };
    if (raw < 1 || raw > 86_400) return { ok: false, outcome: 'Wrong value Or Invalid value' };
    return { ok: true, value: raw };
  },
  serverSelectionStrategy: (raw) => {
    const name = typeof raw === 'string' ? parseStrategy(raw) : undefined;
    return name ? { ok: true, value: name } : { ok: false, outcome: 'Wrong value Or Invalid value' };
  },
  logFormat: (raw) => enumValue(raw, LOG_FORMATS),
  discoveryMode: (raw) => enumValue(raw, DISCOVERY_MODES),
};

function parseBoolean(raw: unknown): Parsed {
  return typeof raw === 'boolean' ? { ok: true, value: raw } : { ok: false, outcome: 'Type Error' };
}

function enumValue(raw: unknown, members: object): Parsed {
  return typeof raw === 'string' && Object.hasOwn(members, raw)
    ? { ok: true, value: raw }
    : { ok: false, outcome: 'Wrong value Or Invalid value' };
}

export class RuntimeConfig {
  private current: RuntimeSettings;

  constructor(
    private readonly defaults: RuntimeSettings,
    private readonly catalog: Catalog,
  ) {
    this.current = defaults;
    catalog.subscribe({
      event: (event: RegistryEvent) => {
        if (event.type === 'config_changed' && event.key.startsWith(KV_PREFIX)) this.reload();
      },
      reset: () => this.reload(),
    });
    this.reload();
  }

  get settings(): RuntimeSettings {
    return this.current;
  }

  /**
   * Validate every supplied known key (unknown keys are ignored, as in the
   * original) and return the per-key outcome plus the values to store.
   */
  validate(body: Readonly<Record<string, unknown>>): {
    outcomes: Partial<Record<RuntimeKey, PutOutcome>>;
    writes: [string, string][];
  } {
    const outcomes: Partial<Record<RuntimeKey, PutOutcome>> = {};
    const writes: [string, string][] = [];
    for (const key of RUNTIME_KEYS) {
      if (!Object.hasOwn(body, key)) continue;
      const parsed = PARSERS[key](body[key]);
      if (parsed.ok) {
        outcomes[key] = 'Success';
        writes.push([KV_PREFIX + key, JSON.stringify(parsed.value)]);
      } else {
        outcomes[key] = parsed.outcome;
      }
    }
    return { outcomes, writes };
  }

  /** The original's enum objects for the strategy, log format and discovery mode. */
  describe(): {
    serverSelectionStrategy: StrategyCode;
    logFormat: StrategyCode;
    discoveryMode: StrategyCode;
  } {
    return {
      serverSelectionStrategy: STRATEGY_CODES.get(this.current.serverSelectionStrategy)!,
      logFormat: LOG_FORMATS[this.current.logFormat],
      discoveryMode: DISCOVERY_MODES[this.current.discoveryMode],
    };
  }

  private reload(): void {
    const next: Record<string, unknown> = { ...this.defaults };
    for (const key of RUNTIME_KEYS) {
      const stored = this.catalog.kvGet(KV_PREFIX + key);
      if (stored === undefined) continue;
      // A value another replica wrote is validated again: a bad value keeps the default.
      const parsed = PARSERS[key](safeJson(stored));
      if (parsed.ok) next[key] = parsed.value;
    }
    this.current = next as unknown as RuntimeSettings;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
