import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  CONFIG_FILE,
  CONFIG_SETTINGS,
  flagAttribute,
  settingLabel,
  type AnySetting,
  type MaxineConfig,
} from './schema.ts';

/** Every problem found in the configuration, one line each. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    const noun = problems.length === 1 ? 'problem' : 'problems';
    super(`invalid configuration (${problems.length} ${noun}):\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export interface LoadConfigOptions {
  /** Option values as commander gives them, keyed by attribute name (`dataDir`). */
  readonly flags: Record<string, unknown>;
  readonly env: NodeJS.ProcessEnv;
}

/** The settings read from the config file, and how to name it in messages. */
interface FileValues {
  readonly values: Readonly<Record<string, unknown>>;
  readonly name: string;
}

const NO_FILE: FileValues = { values: {}, name: '' };

const FILE_KEYS: readonly string[] = CONFIG_SETTINGS.filter((s) => s !== CONFIG_FILE).map((s) => s.key);

function display(raw: unknown): string {
  return JSON.stringify(raw) ?? String(raw);
}

/** The highest-precedence raw value given for a setting, and where it came from. */
function given(s: AnySetting, { flags, env }: LoadConfigOptions, file: FileValues) {
  const flag = flags[flagAttribute(s.flag)];
  if (flag !== undefined) return { raw: flag, source: s.flag };
  for (const name of s.env) {
    const value = env[name];
    // Deployment templates often render unset variables as empty strings.
    if (value !== undefined && value.trim() !== '') return { raw: value, source: name };
  }
  // `key:` with no value in YAML is null: unset, like an empty variable.
  const raw = Object.hasOwn(file.values, s.key) ? file.values[s.key] : null;
  return raw === null ? undefined : { raw, source: `${file.name} key ${s.key}` };
}

/** The setting's parsed value, or its default; undefined after recording a problem. */
function resolve(s: AnySetting, opts: LoadConfigOptions, file: FileValues, problems: string[]): unknown {
  const value = given(s, opts, file);
  if (value === undefined) return s.default;
  const result = s.kind.parse(value.raw);
  if (result.ok) return result.value;
  const detail = result.detail === undefined ? '' : ` (${result.detail})`;
  const shown = s.kind.secret === true || s.kind.unquoted === true ? 'the given value (hidden)' : display(value.raw);
  const why = s.kind.secret === true ? '' : detail;
  problems.push(`${settingLabel(s)}: ${shown} is not ${s.kind.expected}${why} [from ${value.source}]`);
  return undefined;
}

function readConfigFile(path: string, problems: string[]): FileValues {
  // Problems with the file as a whole belong to the setting that named it.
  const label = `${settingLabel(CONFIG_FILE)}: ${display(path)}`;
  const ext = extname(path).toLowerCase();
  if (ext !== '.yaml' && ext !== '.yml' && ext !== '.json') {
    problems.push(`${label} does not end in .yaml, .yml or .json`);
    return NO_FILE;
  }
  let parsed: unknown;
  try {
    const text = readFileSync(path, 'utf8');
    parsed = ext === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    problems.push(`${label} cannot be read: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    return NO_FILE;
  }
  const name = `config file ${display(path)}`;
  // An empty YAML file parses to null and sets nothing.
  if (parsed === null || parsed === undefined) return NO_FILE;
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    problems.push(`${name}: expected a mapping of setting names to values`);
    return NO_FILE;
  }
  const values = parsed as Record<string, unknown>;
  const unknown = Object.keys(values).filter((key) => !FILE_KEYS.includes(key));
  if (unknown.length > 0) {
    const noun = unknown.length === 1 ? 'key' : 'keys';
    problems.push(`${name}: unknown ${noun} ${unknown.map(display).join(', ')}; valid keys are ${FILE_KEYS.join(', ')}`);
  }
  return { values, name };
}

/**
 * Resolves every setting from, highest precedence first: flags, environment
 * variables, the config file (named by --config or MAXINE_CONFIG_FILE), then
 * the defaults. Throws a ConfigError listing every bad value at once, so a
 * broken deployment is fixed in one round rather than one value per restart.
 */
export function loadConfig(opts: LoadConfigOptions): MaxineConfig {
  const problems: string[] = [];
  // The file's own path can only come from flags or environment, and must be
  // known before the other settings can be looked up in the file.
  const configFile = resolve(CONFIG_FILE, opts, NO_FILE, problems) as string | undefined;
  const file = configFile === undefined ? NO_FILE : readConfigFile(configFile, problems);
  const config = Object.fromEntries(
    CONFIG_SETTINGS.map((s) => [s.key, s === CONFIG_FILE ? configFile : resolve(s, opts, file, problems)]),
  );
  if (problems.length === 0) problems.push(...crossCheck(config as MaxineConfig));
  if (problems.length > 0) throw new ConfigError(problems);
  if (Array.isArray(config.trustProxy)) Object.freeze(config.trustProxy);
  return Object.freeze(config) as MaxineConfig;
}

/** Rules that involve more than one setting. */
function crossCheck(config: MaxineConfig): string[] {
  const problems: string[] = [];
  const label = (key: AnySetting['key']) => settingLabel(CONFIG_SETTINGS.find((s) => s.key === key)!);
  if (config.registryStateMode === 'redis' && config.redisUrl === undefined) {
    problems.push(`${label('redisUrl')}: required when the registry state mode is redis`);
  }
  // Three renewals per lease: one lost renewal must not cost the leadership.
  if (config.leaderRenewMs * 3 > config.leaderLeaseMs) {
    problems.push(
      `${label('leaderRenewMs')}: ${config.leaderRenewMs} must be at most a third of the leader lease (${config.leaderLeaseMs} ms)`,
    );
  }
  if (config.activeHealthCheckTimeoutMs > config.activeHealthCheckIntervalMs) {
    problems.push(
      `${label('activeHealthCheckTimeoutMs')}: ${config.activeHealthCheckTimeoutMs} must not exceed the check interval (${config.activeHealthCheckIntervalMs} ms)`,
    );
  }
  const webhookNames = new Set(config.alertWebhooks.map((w) => w.name));
  for (const name of config.alertWebhookSecrets.keys()) {
    if (!webhookNames.has(name)) problems.push(`${label('alertWebhookSecrets')}: names ${name}, which is not one of ${label('alertWebhooks')}`);
  }
  problems.push(...securityCrossCheck(config, label));
  return problems;
}

function securityCrossCheck(config: MaxineConfig, label: (key: AnySetting['key']) => string): string[] {
  const problems: string[] = [];
  for (const role of ['admin', 'operator', 'viewer'] as const) {
    if ((config[`${role}Username`] === undefined) !== (config[`${role}Password`] === undefined)) {
      problems.push(`${label(`${role}Username`)}: set together with ${label(`${role}Password`)}`);
    }
  }
  if (config.jwtSecret !== undefined && config.jwtPrivateKeyFile !== undefined) {
    problems.push(`${label('jwtPrivateKeyFile')}: set either it or ${label('jwtSecret')}, not both`);
  }
  if (config.jwtPreviousSecrets.length > 0 && config.jwtSecret === undefined) {
    problems.push(`${label('jwtPreviousSecrets')}: needs ${label('jwtSecret')} (the current secret)`);
  }
  if (config.jwtPreviousPublicKeyFiles.length > 0 && config.jwtPrivateKeyFile === undefined) {
    problems.push(`${label('jwtPreviousPublicKeyFiles')}: needs ${label('jwtPrivateKeyFile')} (the current key)`);
  }
  if (config.oidcIssuer !== undefined && config.oidcAudience === undefined) {
    problems.push(`${label('oidcAudience')}: required when an OIDC issuer is set`);
  }
  if ((config.tlsCertFile === undefined) !== (config.tlsKeyFile === undefined)) {
    problems.push(`${label('tlsCertFile')}: set together with ${label('tlsKeyFile')}`);
  }
  if (config.tlsClientAuth !== 'none' && (config.tlsClientCaFile === undefined || config.tlsCertFile === undefined)) {
    problems.push(`${label('tlsClientAuth')}: ${config.tlsClientAuth} needs ${label('tlsClientCaFile')} and a server certificate`);
  }
  return problems;
}
