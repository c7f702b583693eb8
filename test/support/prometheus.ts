// A strict parser of the Prometheus text exposition format (version 0.0.4), for tests: it
// throws on anything a Prometheus server would reject or that breaks the format's rules
// (bad names, bad label syntax, a TYPE after samples, samples of one family split up,
// duplicate series, histogram buckets that are not cumulative or miss +Inf), naming the line.

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  type: MetricType;
  help: string | undefined;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set<MetricType>(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/** As Prometheus reads values (Go's ParseFloat): NaN and Inf in any letter case. */
function parseValue(raw: string, where: string): number {
  const special = raw.toLowerCase();
  if (special === '+inf' || special === 'inf' || special === '+infinity' || special === 'infinity')
    return Infinity;
  if (special === '-inf' || special === '-infinity') return -Infinity;
  if (special === 'nan') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw)) throw new Error(`${where}: bad value "${raw}"`);
  return Number(raw);
}

/** Parses `name{a="b",...} value [timestamp]`. */
function parseSample(line: string, where: string): Sample {
  const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
  if (!nameMatch) throw new Error(`${where}: no metric name`);
  const name = nameMatch[0];
  let i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    for (;;) {
      if (line[i] === '}') {
        i++;
        break;
      }
      const labelMatch = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i));
      if (!labelMatch) throw new Error(`${where}: bad label name at column ${i}`);
      const label = labelMatch[0];
      if (!LABEL_NAME.test(label) || label.startsWith('__'))
        throw new Error(`${where}: reserved label ${label}`);
      i += label.length;
      if (line[i] !== '=' || line[i + 1] !== '"') throw new Error(`${where}: expected =" after ${label}`);
      i += 2;
      let value = '';
      for (;;) {
        const c = line[i];
        if (c === undefined) throw new Error(`${where}: unterminated label value`);
        if (c === '"') break;
        if (c === '\\') {
          const next = line[i + 1];
          if (next === 'n') value += '\n';
          else if (next === '\\' || next === '"') value += next;
          else throw new Error(`${where}: bad escape \\${next ?? ''}`);
          i += 2;
          continue;
        }
        value += c;
        i++;
      }
      i++;
      if (label in labels) throw new Error(`${where}: label ${label} twice`);
      labels[label] = value;
      if (line[i] === ',') i++;
      else if (line[i] !== '}') throw new Error(`${where}: expected , or } at column ${i}`);
    }
  }
  if (line[i] !== ' ') throw new Error(`${where}: expected a space before the value`);
  const rest = line
    .slice(i + 1)
    .trim()
    .split(/\s+/);
  if (rest.length < 1 || rest.length > 2) throw new Error(`${where}: expected value [timestamp]`);
  const value = parseValue(rest[0]!, where);
  if (rest[1] !== undefined && !/^-?\d+$/.test(rest[1])) throw new Error(`${where}: bad timestamp`);
  return { name, labels, value };
}

/** Which family a sample name belongs to, given the declared type of `family`. */
function belongs(sample: string, family: string, type: MetricType): boolean {
  if (sample === family) return type !== 'histogram';
  if (type === 'histogram') return [`${family}_bucket`, `${family}_sum`, `${family}_count`].includes(sample);
  if (type === 'summary') return [`${family}_sum`, `${family}_count`].includes(sample);
  return false;
}

const seriesKey = (s: Sample) =>
  `${s.name}{${Object.entries(s.labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(',')}}`;

function checkHistogram(family: MetricFamily): void {
  const groups = new Map<string, { buckets: [number, number][]; count?: number }>();
  for (const s of family.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const g = groups.get(key) ?? { buckets: [] };
    groups.set(key, g);
    if (s.name.endsWith('_bucket')) {
      if (le === undefined) throw new Error(`${family.name}: bucket without le`);
      g.buckets.push([parseValue(le, family.name), s.value]);
    } else if (s.name.endsWith('_count')) g.count = s.value;
  }
  for (const [key, g] of groups) {
    const sorted = [...g.buckets].sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i]![1] < sorted[i - 1]![1]) throw new Error(`${family.name} ${key}: buckets not cumulative`);
    }
    const inf = sorted.at(-1);
    if (!inf || inf[0] !== Infinity) throw new Error(`${family.name} ${key}: no le="+Inf" bucket`);
    if (g.count === undefined || g.count !== inf[1]) {
      throw new Error(`${family.name} ${key}: _count ${g.count} differs from the +Inf bucket ${inf[1]}`);
    }
  }
}

/** Parses an exposition; throws naming the first line (or family) that breaks the format. */
export function parsePrometheusText(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>();
  const seen = new Set<string>();
  let current: MetricFamily | undefined;
  const lines = text.split('\n');
  if (text.length && !text.endsWith('\n')) throw new Error('exposition does not end with a newline');
  lines.forEach((line, index) => {
    const where = `line ${index + 1} (${line.slice(0, 80)})`;
    if (line === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (!m) return; // other comments are allowed
      const [, kind, name, rest] = m;
      if (!METRIC_NAME.test(name!)) throw new Error(`${where}: bad metric name`);
      let family = families.get(name!);
      if (family && family !== current)
        throw new Error(`${where}: ${name} declared again after other metrics`);
      if (!family) {
        family = { name: name!, type: 'untyped', help: undefined, samples: [] };
        families.set(name!, family);
      }
      current = family;
      if (kind === 'TYPE') {
        if (!TYPES.has(rest as MetricType)) throw new Error(`${where}: unknown type ${rest}`);
        if (family.samples.length) throw new Error(`${where}: TYPE after samples`);
        family.type = rest as MetricType;
      } else {
        if (family.help !== undefined) throw new Error(`${where}: HELP twice`);
        family.help = rest ?? '';
      }
      return;
    }
    const sample = parseSample(line, where);
    if (!current || !belongs(sample.name, current.name, current.type)) {
      throw new Error(`${where}: sample does not belong to the family declared before it`);
    }
    const key = seriesKey(sample);
    if (seen.has(key)) throw new Error(`${where}: duplicate series ${key}`);
    seen.add(key);
    if (current.type === 'counter' && sample.value < 0) throw new Error(`${where}: negative counter`);
    current.samples.push(sample);
  });
  for (const family of families.values()) if (family.type === 'histogram') checkHistogram(family);
  return families;
}

/** The value of the one sample `name` whose labels include `labels`; undefined when none. */
export function sampleValue(
  families: Map<string, MetricFamily>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const family of families.values()) {
    for (const s of family.samples) {
      if (s.name !== name) continue;
      if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) return s.value;
    }
  }
  return undefined;
}
