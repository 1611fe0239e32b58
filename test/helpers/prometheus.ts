/** One sample of a scrape: `name{labels} value`. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Scrape {
  readonly samples: readonly Sample[];
  /** Every metric family with its `# TYPE`, whether or not it has samples yet. */
  readonly types: ReadonlyMap<string, string>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(?:,|$)/y;

/** Special values ignore case, as in Prometheus's parser (Go's ParseFloat): prom-client writes NaN as `Nan`. */
function number(raw: string, line: string): number {
  const special = raw.toLowerCase();
  if (special === '+inf' || special === 'inf') return Infinity;
  if (special === '-inf') return -Infinity;
  if (special === 'nan') return NaN;
  const value = Number(raw);
  if (raw === '' || Number.isNaN(value)) throw new Error(`not a number in ${JSON.stringify(line)}`);
  return value;
}

function labelsOf(raw: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < raw.length) {
    const match = LABEL.exec(raw);
    if (match === null) throw new Error(`bad labels in ${JSON.stringify(line)}`);
    labels[match[1]!] = match[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
  }
  return labels;
}

/** Parses the Prometheus text format strictly: a line that is not blank, a comment or `name{labels} value` throws. */
export function parseScrape(text: string): Scrape {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const [, keyword, name, rest] = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line) ?? [];
      if (keyword === undefined || !NAME.test(name!)) throw new Error(`bad comment ${JSON.stringify(line)}`);
      if (keyword === 'TYPE') types.set(name!, rest!);
      continue;
    }
    const match = SAMPLE.exec(line);
    if (match === null) throw new Error(`not a sample: ${JSON.stringify(line)}`);
    samples.push({ name: match[1]!, labels: labelsOf(match[2] ?? '', line), value: number(match[3]!, line) });
  }
  return { samples, types };
}

/** The sum of the samples named `name` whose labels include `labels`; 0 when there are none. */
export function valueOf(scrape: Scrape, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const sample of scrape.samples) {
    if (sample.name === name && Object.entries(labels).every(([k, v]) => sample.labels[k] === v)) sum += sample.value;
  }
  return sum;
}

/** Whether the scrape describes `name`: a family (`# TYPE`), or a histogram's or counter's series of it. */
export function hasMetric(scrape: Scrape, name: string): boolean {
  return scrape.types.has(name) || scrape.samples.some((s) => s.name === name);
}
