// The configuration's public API; the other modules are its implementation.
export { ConfigError, loadConfig, type LoadConfigOptions } from './load.ts';
export { renderConfigTable, settingHelp } from './render.ts';
export { CONFIG_SETTINGS, flagAttribute, type AnySetting, type MaxineConfig, type Setting } from './schema.ts';
export type { Kind, TrustProxy } from './kinds.ts';
