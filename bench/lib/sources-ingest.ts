/**
 * Ingest of a fleet: `--ingest-rows` samples interleaved across 1,000 sources (one sample of each
 * source per 10 s step, in name order), made once by the project's generator
 * (`scripts/generate-metrics.ts --sources`) as NDJSON with a `source` field (and each source's
 * labels on its first sample). Round by round, into fresh databases with the same partitions (made
 * first) and the same triggers:
 *
 * - `psql \copy` of the same rows as CSV with each source's id resolved, its sources made first
 *   with their labels (COPY cannot resolve a name);
 * - the ingest script (compiled) on the NDJSON, which makes the sources itself, as a user's load does.
 *
 * Round 1 checks that both databases hold the same rows.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  CACHE_DIR,
  databaseUrl,
  dropDatabase,
  makePartitions,
  prepareDatabase,
  ROOT,
  withClient,
} from './dataset.js';
import { checkpoint, type IngestResult, runCopy, runIngest } from './ingest.js';
import { mustRun } from './processes.js';

export interface FleetIngestOptions {
  rows: number;
  sources: number;
  stepSeconds: number;
  rounds: number;
}

export interface FleetIngest {
  options: FleetIngestOptions;
  results: IngestResult[];
}

/** 2026-03-01T00:00:00Z: days of their own. */
const START_MS = Date.UTC(2026, 2, 1);
const SEED = 3;
const DAY_MS = 86_400_000;
const GENERATOR = join(ROOT, 'scripts/generate-metrics.ts');
const COPY_COLUMNS = '"timestamp", source_id, cpu_load, concurrency';

export interface FleetFiles {
  ndjson: string;
  /** The same rows as CSV: ISO-8601 timestamp, source id, values. */
  copyCsv: string;
  /** Each source's name and labels, in the order of their ids from 2 on (source 1 is default). */
  sourcesJson: string;
}

export async function fleetFiles(
  options: Pick<FleetIngestOptions, 'rows' | 'sources' | 'stepSeconds'>,
  log: (line: string) => void,
): Promise<FleetFiles> {
  const generator = createHash('sha256')
    .update(await readFile(GENERATOR))
    .digest('hex')
    .slice(0, 12);
  const key = createHash('sha256')
    .update(
      `rows=${options.rows},sources=${options.sources},step=${options.stepSeconds},start=${START_MS},seed=${SEED},generator=${generator}`,
    )
    .digest('hex')
    .slice(0, 12);
  const base = join(CACHE_DIR, `sources-ingest-${key}`);
  const files = {
    ndjson: `${base}.ndjson`,
    copyCsv: `${base}.copy.csv`,
    sourcesJson: `${base}.sources.json`,
  };
  await mkdir(CACHE_DIR, { recursive: true });
  if (!existsSync(files.ndjson)) {
    log(
      `generating ${options.rows.toLocaleString('en')} samples of ${options.sources.toLocaleString('en')} sources (NDJSON) -> ${files.ndjson}`,
    );
    await mustRun(join(ROOT, 'node_modules/.bin/tsx'), [
      GENERATOR,
      ...['--sources', String(options.sources), '--rows', String(options.rows)],
      ...['--start', String(START_MS / 1000), '--step', String(options.stepSeconds)],
      ...['--seed', String(SEED), '--format', 'ndjson', '--output', `${files.ndjson}.partial`],
    ]);
    await rename(`${files.ndjson}.partial`, files.ndjson);
  }
  if (!existsSync(files.copyCsv) || !existsSync(files.sourcesJson)) {
    log(`writing the same samples as CSV with source ids for \\copy -> ${files.copyCsv}`);
    await toCopyCsv(files);
  }
  return files;
}

/** A record as scripts/generate-metrics.ts writes it. */
export interface GeneratedRecord {
  timestamp: number;
  source: string;
  labels?: Record<string, string>;
  cpu_load: number;
  concurrency: number;
}

/** The NDJSON as `\copy` takes it: ids in the order sources first appear, 2 on. */
async function toCopyCsv(files: FleetFiles): Promise<void> {
  const out = createWriteStream(`${files.copyCsv}.partial`);
  const ids = new Map<string, number>();
  const sources: { name: string; labels: Record<string, string> }[] = [];
  let buffer: string[] = ['timestamp,source_id,cpu_load,concurrency'];
  const flush = async () => {
    if (!out.write(`${buffer.join('\n')}\n`))
      await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    buffer = [];
  };
  const lines = createInterface({
    input: createReadStream(files.ndjson),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  for await (const line of lines) {
    if (line === '') continue;
    const record = JSON.parse(line) as GeneratedRecord;
    let id = ids.get(record.source);
    if (id === undefined) {
      id = ids.size + 2;
      ids.set(record.source, id);
      sources.push({ name: record.source, labels: record.labels ?? {} });
    }
    const timestamp = new Date(record.timestamp * 1000).toISOString();
    buffer.push(`${timestamp},${id},${record.cpu_load},${record.concurrency}`);
    if (buffer.length >= 10_000) await flush();
  }
  if (buffer.length > 0) await flush();
  await new Promise<void>((resolve, reject) =>
    out.end((error?: Error | null) => (error ? reject(error) : resolve())),
  );
  await writeFile(files.sourcesJson, JSON.stringify(sources));
  await rename(`${files.copyCsv}.partial`, files.copyCsv);
}

/** A fresh, migrated database with the partitions of the fleet's span. */
export async function prepareFleetDatabase(
  url: string,
  options: Pick<FleetIngestOptions, 'rows' | 'sources' | 'stepSeconds'>,
): Promise<void> {
  await prepareDatabase(url, true);
  const seconds = Math.ceil(options.rows / options.sources) * options.stepSeconds;
  const days = Math.ceil((seconds * 1000) / DAY_MS);
  await makePartitions(url, new Date(START_MS), new Date(START_MS + days * DAY_MS));
}

/** What two loads of the same rows must agree on. */
async function fingerprint(url: string): Promise<string> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<Record<string, string>>(
      `SELECT count(*) AS samples, count(DISTINCT source_id) AS sources, sum(concurrency) AS concurrency,
              round(sum(cpu_load::numeric), 3) AS cpu_load, min("timestamp") AS first, max("timestamp") AS last,
              (SELECT sum(row_count) FROM metric_rollups_hour) AS hour_rollups,
              (SELECT md5(string_agg(concat_ws(' ', name, labels, first_seen, last_seen), ',' ORDER BY name))
                 FROM sources) AS sources_seen
         FROM metrics`,
    );
    return JSON.stringify(rows[0]);
  });
}

export async function benchFleetIngest(
  benchUrl: string,
  options: FleetIngestOptions,
  log: (line: string) => void,
): Promise<FleetIngest> {
  const files = await fleetFiles(options, log);
  const sources = JSON.parse(await readFile(files.sourcesJson, 'utf8')) as {
    name: string;
    labels: Record<string, string>;
  }[];
  const copyUrl = databaseUrl(benchUrl, 'metrics_sources_copy');
  const ingestUrl = databaseUrl(benchUrl, 'metrics_sources_ingest');
  const results: IngestResult[] = [];
  const rows = options.rows.toLocaleString('en');
  try {
    for (let round = 1; round <= options.rounds; round++) {
      await prepareFleetDatabase(copyUrl, options);
      await withClient(copyUrl, (client) =>
        client.query(
          `INSERT INTO sources (name, labels)
           SELECT name, labels FROM unnest($1::text[], $2::jsonb[]) WITH ORDINALITY AS s(name, labels, i) ORDER BY i`,
          [sources.map((source) => source.name), sources.map((source) => JSON.stringify(source.labels))],
        ),
      );
      await checkpoint(copyUrl);
      log(`  round ${round}: psql \\copy of ${rows} CSV rows of ${sources.length} sources`);
      results.push(await runCopy(copyUrl, files.copyCsv, round, COPY_COLUMNS, options.rows));
      const copied = round === 1 ? await fingerprint(copyUrl) : undefined;
      await dropDatabase(copyUrl);

      await prepareFleetDatabase(ingestUrl, options);
      await checkpoint(ingestUrl);
      log(`  round ${round}: the ingest script on ${rows} NDJSON rows of ${sources.length} sources`);
      results.push(await runIngest(ingestUrl, files.ndjson, round, options.rows));
      if (copied !== undefined) {
        const ingested = await fingerprint(ingestUrl);
        if (ingested !== copied)
          throw new Error(`the two loads differ:\n  \\copy: ${copied}\n  script: ${ingested}`);
      }
      await dropDatabase(ingestUrl);
    }
    return { options, results };
  } finally {
    await dropDatabase(copyUrl);
    await dropDatabase(ingestUrl);
  }
}
