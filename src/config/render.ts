import { CONFIG_FILE, CONFIG_SETTINGS, type AnySetting } from './schema.ts';

/**
 * The default as a user would type it. `s` is a union of settings, so the
 * compiler can't see that each default matches its own kind's `format`.
 */
function formatDefault(s: AnySetting): string {
  return (s.kind.format as (value: unknown) => string)(s.default);
}

/** Option description for `--help`: what it does, its other names, default and allowed values. */
export function settingHelp(s: AnySetting): string {
  const fileKey = s === CONFIG_FILE ? '' : ` [file: ${s.key}]`;
  return `${s.description} [env: ${s.env.join(', ')}]${fileKey} [default: ${formatDefault(s)}] [allowed: ${s.kind.expected}]`;
}

// A pipe would end a Markdown table cell early, even inside a code span.
const cell = (text: string): string => text.replaceAll('|', '\\|');
const code = (text: string): string => `\`${text}\``;

/** The README's configuration table, in Markdown, one row per setting. */
export function renderConfigTable(): string {
  const rows = CONFIG_SETTINGS.map((s) =>
    [
      code(s.key),
      code(`${s.flag} <${s.kind.metavar}>`),
      s.env.map(code).join(', '),
      code(formatDefault(s)),
      `${s.kind.expected}. ${s.description}`,
    ].map(cell),
  );
  return [
    '| Setting | Flag | Environment | Default | Allowed / description |',
    '| --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}
