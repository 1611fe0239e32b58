import pino from 'pino';
import type { LogFormat } from '../registry/runtime-config.ts';
import type { RecentLines } from './recent-lines.ts';

/** The original Maxine's runtime log switches (PUT /api/maxine/control/config). */
export interface LogSwitches {
  readonly logAsync: boolean;
  readonly logFormat: LogFormat;
  readonly logJsonPrettify: boolean;
}

const LEVEL_NAMES: Readonly<Record<number, string>> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

type SonicBoom = ReturnType<typeof pino.destination>;

/**
 * Where pino writes. It reads the switches on every line, so a change made
 * through the API (on any replica) takes effect at once without rebuilding
 * the logger: JSON lines by default, prettified JSON or plain text on
 * request, written through a buffered (async) or a synchronous stream.
 */
export class SwitchableLogDestination {
  private readonly buffered: SonicBoom;
  private readonly direct: SonicBoom;
  private lastAsync = true;

  constructor(
    private readonly switches: () => LogSwitches,
    fd = 1,
    /** Also kept here, as written, for /api/logs/recent. */
    private readonly recent?: RecentLines,
  ) {
    this.buffered = pino.destination({ dest: fd, sync: false, minLength: 4096 });
    this.direct = pino.destination({ dest: fd, sync: true });
  }

  write(line: string): void {
    const { logAsync, logFormat, logJsonPrettify } = this.switches();
    const text = logFormat === 'PLAIN' ? plainLine(line) : logJsonPrettify ? prettyLine(line) : line;
    // Lines already buffered must come out before the first direct one.
    if (this.lastAsync && !logAsync) this.buffered.flushSync();
    this.lastAsync = logAsync;
    (logAsync ? this.buffered : this.direct).write(text);
    this.recent?.push(text);
  }

  flush(): void {
    this.buffered.flushSync();
  }
}

function parse(line: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function prettyLine(line: string): string {
  const record = parse(line);
  return record === undefined ? line : `${JSON.stringify(record, null, 2)}\n`;
}

/** `2026-01-01T00:00:00.000Z INFO message key=value ...`, values JSON-encoded when not plain words. */
function plainLine(line: string): string {
  const record = parse(line);
  if (record === undefined) return line;
  const { time, level, msg, ...rest } = record;
  const when = typeof time === 'number' ? new Date(time).toISOString() : String(time ?? '');
  const parts = [when, LEVEL_NAMES[level as number] ?? String(level), String(msg ?? '')];
  for (const [key, value] of Object.entries(rest)) {
    const text = typeof value === 'string' && /^[^\s"=]*$/.test(value) ? value : JSON.stringify(value);
    parts.push(`${key}=${text}`);
  }
  return `${parts.join(' ')}\n`;
}
