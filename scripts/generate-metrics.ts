/**
 * Writes synthetic CPU-load samples for tests, benchmarks and the bundled sample data: a daily load
 * shape (quiet at 03:00 UTC, busiest at 15:00), noise, and random bursts; with --sources, of N
 * sources at once, each with a pattern of its own. Output is streamed and depends only on the
 * options: the same --seed gives the same bytes.
 * Run `npx tsx scripts/generate-metrics.ts --help` for the options.
 */
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { createGzip } from 'node:zlib';
import type { SourceLabels } from '../src/domain/source.js';
import { parseTimestamp } from '../src/domain/time.js';
import { FORMATS, type Format } from '../src/ingest/inputs.js';

const HELP = `Usage: npx tsx scripts/generate-metrics.ts [options]

Options:
  --rows <n>        Number of samples (default 1440), over all sources.
  --start <ts>      First timestamp: epoch seconds or ISO-8601 with offset (default 2026-11-26T00:00:00Z).
  --step <s>        Seconds between samples of a source, may be fractional (default 60).
  --sources <n>     Samples of n sources, host-0001 to host-<n>, interleaved: one sample of each
                    source per step, in name order. Each has its own daily phase, amplitude, noise
                    and bursts (from a hash of its name and the seed), and labels region and tier,
                    given with its first sample. Without it: samples that name no source.
  --format <f>      json (an array, one record a line), ndjson or csv. Default: from --output's
                    extension, else ndjson.
  --seed <n>        Seed of the random generator (default 1). Same seed, same output.
  --output <path>   Write to this file (gzipped when it ends in .gz). Default: standard output.
  -h, --help        Show this help.

Examples:
  npx tsx scripts/generate-metrics.ts --rows 1000000 --format ndjson --seed 7 --output /tmp/1m.ndjson
  npx tsx scripts/generate-metrics.ts --sources 1000 --rows 8640000 --step 10 --output /tmp/fleet.ndjson.gz
`;

/** mulberry32: a tiny, fast 32-bit PRNG; plenty for synthetic data and fully reproducible. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a of `text`, from `seed`: a source's own numbers follow from its name and the seed. */
function hash32(text: string, seed: number): number {
  let hash = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return hash;
}

interface GeneratedSample {
  timestamp: number;
  cpu_load: number;
  concurrency: number;
  /** With --sources: the source, and its labels on its first sample. */
  source?: string;
  labels?: SourceLabels;
}

const DAY = 86_400;
const MEAN_SECONDS_BETWEEN_BURSTS = 2 * 3600;
const REGIONS = ['eu-west', 'us-east', 'ap-south'];
const TIERS = ['web', 'api', 'worker', 'db'];

/** How one source's load moves: the single series of old is the pattern with every factor neutral. */
interface SourcePattern {
  name: string | undefined;
  labels: SourceLabels | undefined;
  /** Hours the daily shape is shifted by. */
  phaseHours: number;
  /** Scales the daily swing. */
  amplitude: number;
  /** Scales the noise. */
  noise: number;
  /** Load at the quietest hour. */
  base: number;
  /** Per-step chance that a burst starts. */
  burstChance: number;
  /** Tasks per unit of load. */
  tasksPerLoad: number;
}

/** The pattern of source `name` (of `count`), drawn from a hash of its name and the seed. */
function sourcePattern(index: number, count: number, seed: number, stepSeconds: number): SourcePattern {
  const name = `host-${String(index + 1).padStart(Math.max(4, String(count).length), '0')}`;
  const random = mulberry32(hash32(name, seed));
  const meanSecondsBetweenBursts = MEAN_SECONDS_BETWEEN_BURSTS * (0.5 + 2.5 * random());
  return {
    name,
    labels: {
      region: REGIONS[Math.floor(random() * REGIONS.length)] as string,
      tier: TIERS[Math.floor(random() * TIERS.length)] as string,
    },
    phaseHours: -6 + 12 * random(),
    amplitude: 0.3 + 1.2 * random(),
    noise: 0.5 + 1.5 * random(),
    base: 0.1 + 0.6 * random(),
    burstChance: 1 - Math.exp(-stepSeconds / meanSecondsBetweenBursts),
    tasksPerLoad: 20 + 40 * random(),
  };
}

/** The samples, one at a time; nothing is held but each source's current burst and drift. */
function* generateSamples(options: {
  rows: number;
  startSeconds: number;
  stepSeconds: number;
  seed: number;
  /** Undefined: one series of samples naming no source. */
  sources: number | undefined;
}): Generator<GeneratedSample> {
  const random = mulberry32(options.seed);
  const gaussian = () => {
    const u = 1 - random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
  };
  const patterns: SourcePattern[] =
    options.sources === undefined
      ? [
          {
            name: undefined,
            labels: undefined,
            phaseHours: 0,
            amplitude: 1,
            noise: 1,
            base: 0.4,
            // Per-step chance that a burst starts, so bursts per day do not depend on the step.
            burstChance: 1 - Math.exp(-options.stepSeconds / MEAN_SECONDS_BETWEEN_BURSTS),
            tasksPerLoad: 40,
          },
        ]
      : Array.from({ length: options.sources }, (_, i) =>
          sourcePattern(i, options.sources as number, options.seed, options.stepSeconds),
        );
  const n = patterns.length;
  const burstStart = new Float64Array(n).fill(Number.NEGATIVE_INFINITY);
  const burstAmplitude = new Float64Array(n);
  const burstDecay = new Float64Array(n).fill(1);
  const drift = new Float64Array(n);
  for (let i = 0; i < options.rows; i++) {
    const s = i % n;
    const pattern = patterns[s] as SourcePattern;
    const t = options.startSeconds + Math.floor(i / n) * options.stepSeconds;
    const hour = (((t % DAY) + DAY) % DAY) / 3600;
    const daily = 0.5 - 0.5 * Math.cos((2 * Math.PI * (hour - 3 - pattern.phaseHours)) / 24);
    if (random() < pattern.burstChance) {
      burstStart[s] = t;
      burstAmplitude[s] = 1.5 + 3 * random();
      burstDecay[s] = 60 + 600 * random();
    }
    const burst =
      t >= (burstStart[s] as number)
        ? (burstAmplitude[s] as number) *
          Math.exp(-(t - (burstStart[s] as number)) / (burstDecay[s] as number))
        : 0;
    drift[s] = 0.95 * (drift[s] as number) + 0.05 * gaussian();
    // Written term by term so that the single series (every factor 1) is the same bytes as ever.
    const load = Math.max(
      0,
      pattern.base +
        2.6 * pattern.amplitude * daily ** 1.5 +
        burst +
        pattern.noise * 0.3 * (drift[s] as number) +
        pattern.noise * 0.08 * gaussian(),
    );
    const concurrency = Math.max(0, Math.round(load * pattern.tasksPerLoad + 6 * gaussian()));
    const sample: GeneratedSample = {
      timestamp: Math.round(t * 1000) / 1000,
      cpu_load: Math.round(load * 1000) / 1000,
      concurrency,
    };
    if (pattern.name !== undefined) {
      sample.source = pattern.name;
      if (i < n && pattern.labels) sample.labels = pattern.labels;
    }
    yield sample;
  }
}

function formatOf(output: string | undefined): Format {
  const base = (output ?? '').toLowerCase().replace(/\.gz$/, '');
  if (base.endsWith('.json')) return 'json';
  if (base.endsWith('.csv')) return 'csv';
  return 'ndjson';
}

const SOURCED_CSV_HEADER = 'timestamp,source,labels,cpu_load,concurrency';

/** One sample as a line of `format`; `sourced`: with its source (and labels, when it has them). */
function lineWriter(format: Format, sourced: boolean): (s: GeneratedSample) => string {
  if (!sourced) {
    // The JSON array is laid out as the project's formatter (Biome) would, one record a line, so a
    // committed file such as data/sample-metrics.json passes `npm run lint` and its line numbers
    // stay meaningful in error messages. NDJSON stays compact.
    if (format === 'csv') return (s) => `${s.timestamp},${s.cpu_load},${s.concurrency}`;
    if (format === 'json')
      return (s) =>
        `  { "timestamp": ${s.timestamp}, "cpu_load": ${s.cpu_load}, "concurrency": ${s.concurrency} }`;
    return (s) => `{"timestamp":${s.timestamp},"cpu_load":${s.cpu_load},"concurrency":${s.concurrency}}`;
  }
  if (format === 'csv') {
    const cell = (labels: GeneratedSample['labels']) =>
      labels
        ? Object.entries(labels)
            .map(([name, value]) => `${name}=${value}`)
            .join(';')
        : '';
    return (s) => `${s.timestamp},${s.source},${cell(s.labels)},${s.cpu_load},${s.concurrency}`;
  }
  const labelled = (s: GeneratedSample) => (s.labels ? `,"labels":${JSON.stringify(s.labels)}` : '');
  const indent = format === 'json' ? '  ' : '';
  return (s) =>
    `${indent}{"timestamp":${s.timestamp},"source":"${s.source}"${labelled(s)},"cpu_load":${s.cpu_load},"concurrency":${s.concurrency}}`;
}

async function write(stream: Writable, text: string): Promise<void> {
  if (!stream.write(text)) await new Promise<void>((resolve) => stream.once('drain', resolve));
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      rows: { type: 'string', default: '1440' },
      start: { type: 'string', default: '2026-11-26T00:00:00Z' },
      step: { type: 'string', default: '60' },
      format: { type: 'string' },
      seed: { type: 'string', default: '1' },
      sources: { type: 'string' },
      output: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const rows = Number(values.rows);
  const step = Number(values.step);
  const seed = Number(values.seed);
  const sources = values.sources === undefined ? undefined : Number(values.sources);
  const start = parseTimestamp(/^[\d.]+$/.test(values.start) ? Number(values.start) : values.start, false);
  const format = (values.format ?? formatOf(values.output)) as Format;
  const problems: string[] = [];
  if (!Number.isSafeInteger(rows) || rows < 0) problems.push('--rows must be a whole number >= 0');
  if (!Number.isFinite(step) || step <= 0) problems.push('--step must be a number of seconds > 0');
  if (!Number.isInteger(seed)) problems.push('--seed must be an integer');
  if (sources !== undefined && (!Number.isSafeInteger(sources) || sources < 1 || sources > 1_000_000))
    problems.push('--sources must be a whole number from 1 to 1000000');
  if ('error' in start) problems.push(`--start: ${start.error}`);
  if (!(FORMATS as readonly string[]).includes(format))
    problems.push(`--format must be one of ${FORMATS.join(', ')}`);
  if (problems.length > 0 || 'error' in start) {
    process.stderr.write(
      `${problems.map((p) => `generate-metrics: ${p}`).join('\n')}\nRun with --help for usage.\n`,
    );
    return 2;
  }

  let out: Writable = process.stdout;
  let file: Writable | undefined;
  if (values.output) {
    file = createWriteStream(values.output);
    if (values.output.endsWith('.gz')) {
      out = createGzip();
      out.pipe(file);
    } else {
      out = file;
    }
  }

  const toLine = lineWriter(format, sources !== undefined);
  const separator = format === 'json' ? ',\n' : '\n';
  if (format === 'csv')
    await write(out, sources === undefined ? 'timestamp,cpu_load,concurrency\n' : `${SOURCED_CSV_HEADER}\n`);
  if (format === 'json') await write(out, rows > 0 ? '[\n' : '[');
  let chunk: string[] = [];
  let first = true;
  for (const sample of generateSamples({
    rows,
    startSeconds: start.ms / 1000,
    stepSeconds: step,
    seed,
    sources,
  })) {
    chunk.push(toLine(sample));
    if (chunk.length === 2000) {
      await write(out, (first ? '' : separator) + chunk.join(separator));
      first = false;
      chunk = [];
    }
  }
  if (chunk.length > 0) await write(out, (first ? '' : separator) + chunk.join(separator));
  if (format === 'json') await write(out, rows > 0 ? '\n]\n' : ']\n');
  else if (rows > 0) await write(out, '\n');
  if (file) {
    out.end();
    await finished(file);
  }
  return 0;
}

process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`generate-metrics: ${(error as Error).message}\n`);
    process.exitCode = 2;
  },
);
