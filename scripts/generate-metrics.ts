/**
 * Writes synthetic CPU-load samples for tests, benchmarks and the bundled sample data: a daily load
 * shape (quiet at 03:00 UTC, busiest at 15:00), noise, and random bursts. Output is streamed and
 * depends only on the options: the same --seed gives the same bytes.
 * Run `npx tsx scripts/generate-metrics.ts --help` for the options.
 */
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { createGzip } from 'node:zlib';
import { parseTimestamp } from '../src/domain/time.js';
import { FORMATS, type Format } from '../src/ingest/inputs.js';

const HELP = `Usage: npx tsx scripts/generate-metrics.ts [options]

Options:
  --rows <n>        Number of samples (default 1440).
  --start <ts>      First timestamp: epoch seconds or ISO-8601 with offset (default 2026-11-26T00:00:00Z).
  --step <s>        Seconds between samples, may be fractional (default 60).
  --format <f>      json (an array, one record a line), ndjson or csv. Default: from --output's
                    extension, else ndjson.
  --seed <n>        Seed of the random generator (default 1). Same seed, same output.
  --output <path>   Write to this file (gzipped when it ends in .gz). Default: standard output.
  -h, --help        Show this help.

Example:
  npx tsx scripts/generate-metrics.ts --rows 1000000 --format ndjson --seed 7 --output /tmp/1m.ndjson
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

interface GeneratedSample {
  timestamp: number;
  cpu_load: number;
  concurrency: number;
}

const DAY = 86_400;
const MEAN_SECONDS_BETWEEN_BURSTS = 2 * 3600;

/** The samples, one at a time; nothing is held but the current burst. */
function* generateSamples(options: {
  rows: number;
  startSeconds: number;
  stepSeconds: number;
  seed: number;
}): Generator<GeneratedSample> {
  const random = mulberry32(options.seed);
  const gaussian = () => {
    const u = 1 - random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
  };
  // Per-step chance that a burst starts, so bursts per day do not depend on the step.
  const burstChance = 1 - Math.exp(-options.stepSeconds / MEAN_SECONDS_BETWEEN_BURSTS);
  let burstStart = Number.NEGATIVE_INFINITY;
  let burstAmplitude = 0;
  let burstDecay = 1;
  let drift = 0;
  for (let i = 0; i < options.rows; i++) {
    const t = options.startSeconds + i * options.stepSeconds;
    const hour = (((t % DAY) + DAY) % DAY) / 3600;
    const daily = 0.5 - 0.5 * Math.cos((2 * Math.PI * (hour - 3)) / 24);
    if (random() < burstChance) {
      burstStart = t;
      burstAmplitude = 1.5 + 3 * random();
      burstDecay = 60 + 600 * random();
    }
    const burst = t >= burstStart ? burstAmplitude * Math.exp(-(t - burstStart) / burstDecay) : 0;
    drift = 0.95 * drift + 0.05 * gaussian();
    const load = Math.max(0, 0.4 + 2.6 * daily ** 1.5 + burst + 0.3 * drift + 0.08 * gaussian());
    const concurrency = Math.max(0, Math.round(load * 40 + 6 * gaussian()));
    yield {
      timestamp: Math.round(t * 1000) / 1000,
      cpu_load: Math.round(load * 1000) / 1000,
      concurrency,
    };
  }
}

function formatOf(output: string | undefined): Format {
  const base = (output ?? '').toLowerCase().replace(/\.gz$/, '');
  if (base.endsWith('.json')) return 'json';
  if (base.endsWith('.csv')) return 'csv';
  return 'ndjson';
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
  const start = parseTimestamp(/^[\d.]+$/.test(values.start) ? Number(values.start) : values.start, false);
  const format = (values.format ?? formatOf(values.output)) as Format;
  const problems: string[] = [];
  if (!Number.isSafeInteger(rows) || rows < 0) problems.push('--rows must be a whole number >= 0');
  if (!Number.isFinite(step) || step <= 0) problems.push('--step must be a number of seconds > 0');
  if (!Number.isInteger(seed)) problems.push('--seed must be an integer');
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

  // The JSON array is laid out as the project's formatter (Biome) would, one record a line, so a
  // committed file such as data/sample-metrics.json passes `npm run lint` and its line numbers
  // stay meaningful in error messages. NDJSON stays compact.
  const toLine: (s: GeneratedSample) => string =
    format === 'csv'
      ? (s) => `${s.timestamp},${s.cpu_load},${s.concurrency}`
      : format === 'json'
        ? (s) =>
            `  { "timestamp": ${s.timestamp}, "cpu_load": ${s.cpu_load}, "concurrency": ${s.concurrency} }`
        : (s) => `{"timestamp":${s.timestamp},"cpu_load":${s.cpu_load},"concurrency":${s.concurrency}}`;
  const separator = format === 'json' ? ',\n' : '\n';
  if (format === 'csv') await write(out, 'timestamp,cpu_load,concurrency\n');
  if (format === 'json') await write(out, rows > 0 ? '[\n' : '[');
  let chunk: string[] = [];
  let first = true;
  for (const sample of generateSamples({ rows, startSeconds: start.ms / 1000, stepSeconds: step, seed })) {
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
