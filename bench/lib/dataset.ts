/**
 * The benchmark's data: 1,000,000 samples one second apart from the project's own generator,
 * written once to bench/.cache and loaded once into a dedicated database through `npm run ingest`.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { migrateDeploy } from '../../src/database/migrations.js';
import { mustRun } from './processes.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CACHE_DIR = join(ROOT, 'bench/.cache');
const TSX = join(ROOT, 'node_modules/.bin/tsx');
const GENERATOR = join(ROOT, 'scripts/generate-metrics.ts');

export const DATASET = {
  rows: 1_000_000,
  /** Epoch seconds of the first sample: 2026-01-01T00:00:00Z. */
  startSeconds: Date.UTC(2026, 0, 1) / 1000,
  stepSeconds: 1,
  seed: 1,
} as const;

/** The instant of the n-th sample (1-based), as the table stores it. */
export function sampleTime(n: number): Date {
  return new Date((DATASET.startSeconds + (n - 1) * DATASET.stepSeconds) * 1000);
}

/**
 * Makes the partitions of [from, to) with `npm run partitions` (built), as an operator back-filling
 * does (the README: partitions before a back-fill), so the rows load into their own partitions and
 * not into the default one, which maintenance would then move them out of while the bench runs.
 */
export async function makePartitions(url: string, from: Date, to: Date): Promise<void> {
  // The bench builds first; without a build (it failed, or --tsx) the script runs from source.
  const compiled = join(ROOT, 'dist/scripts/partitions.js');
  const script = existsSync(compiled) ? [compiled] : ['--import', 'tsx', join(ROOT, 'scripts/partitions.ts')];
  await mustRun(process.execPath, [...script, '--from', from.toISOString(), '--to', to.toISOString()], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'warn' },
  });
}

export interface DataFiles {
  /** Generator output, NDJSON: what `npm run ingest` loads. */
  ndjson: string;
  /** The same rows as CSV with ISO-8601 timestamps, which `\copy` into timestamptz accepts. */
  copyCsv: string;
  /** Identifies the dataset in the database marker: generator options plus a hash of the NDJSON. */
  key: string;
}

async function generatorKey(): Promise<string> {
  const source = await readFile(GENERATOR);
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 12);
  const { rows, startSeconds, stepSeconds, seed } = DATASET;
  return `rows=${rows},start=${startSeconds},step=${stepSeconds},seed=${seed},generator=${hash}`;
}

async function generate(format: 'ndjson' | 'csv', output: string): Promise<void> {
  const { rows, startSeconds, stepSeconds, seed } = DATASET;
  const partial = `${output}.partial`;
  await mustRun(TSX, [
    GENERATOR,
    ...['--rows', String(rows), '--start', String(startSeconds), '--step', String(stepSeconds)],
    ...['--seed', String(seed), '--format', format, '--output', partial],
  ]);
  await rename(partial, output);
}

/** Rewrites the generator's CSV (epoch seconds) with ISO-8601 timestamps for `\copy`. */
async function toCopyCsv(csv: string, output: string): Promise<void> {
  const partial = `${output}.partial`;
  const out = createWriteStream(partial);
  const lines = createInterface({ input: createReadStream(csv), crlfDelay: Number.POSITIVE_INFINITY });
  let header = true;
  let buffer: string[] = [];
  const flush = async () => {
    if (!out.write(`${buffer.join('\n')}\n`))
      await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    buffer = [];
  };
  for await (const line of lines) {
    if (header) {
      header = false;
      buffer.push(line);
      continue;
    }
    if (line === '') continue;
    const comma = line.indexOf(',');
    const iso = new Date(Number(line.slice(0, comma)) * 1000).toISOString();
    buffer.push(`${iso}${line.slice(comma)}`);
    if (buffer.length === 10_000) await flush();
  }
  if (buffer.length > 0) await flush();
  await new Promise<void>((resolve, reject) =>
    out.end((error?: Error | null) => (error ? reject(error) : resolve())),
  );
  await rename(partial, output);
}

async function fileHash(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex').slice(0, 16);
}

/**
 * Generates the data files unless bench/.cache already holds them for this generator source and
 * these options; files of other versions are deleted.
 */
export async function ensureDataFiles(log: (line: string) => void): Promise<DataFiles> {
  await mkdir(CACHE_DIR, { recursive: true });
  const name = createHash('sha256')
    .update(await generatorKey())
    .digest('hex')
    .slice(0, 12);
  const ndjson = join(CACHE_DIR, `metrics-${name}.ndjson`);
  const csv = join(CACHE_DIR, `metrics-${name}.csv`);
  const copyCsv = join(CACHE_DIR, `metrics-${name}.copy.csv`);
  for (const file of await readdir(CACHE_DIR)) {
    if (/^metrics-[0-9a-f]+\./.test(file) && !file.startsWith(`metrics-${name}.`))
      await rm(join(CACHE_DIR, file));
  }
  if (!existsSync(ndjson)) {
    log(`generating ${DATASET.rows} samples (NDJSON) -> ${ndjson}`);
    await generate('ndjson', ndjson);
  }
  if (!existsSync(copyCsv)) {
    log(`generating the same samples as CSV for \\copy -> ${copyCsv}`);
    await generate('csv', csv);
    await toCopyCsv(csv, copyCsv);
    await rm(csv);
  }
  // The database marker is the data itself, so editing the generator without changing its output
  // does not force a reload.
  const { rows, startSeconds, stepSeconds, seed } = DATASET;
  const key = `rows=${rows},start=${startSeconds},step=${stepSeconds},seed=${seed},ndjson-sha256=${await fileHash(ndjson)}`;
  return { ndjson, copyCsv, key };
}

/** The same server, another database. */
export function databaseUrl(base: string, database: string): string {
  const url = new URL(base);
  url.pathname = `/${database}`;
  return url.toString();
}

export function databaseName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.slice(1));
}

export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Runs `fn` connected to the server's `postgres` database (to create and drop others). */
function withAdmin<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  return withClient(databaseUrl(url, 'postgres'), fn);
}

export async function ensureDatabase(url: string): Promise<void> {
  const name = databaseName(url);
  await withAdmin(url, async (client) => {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount === 0) await client.query(`CREATE DATABASE ${quoteIdentifier(name)}`);
  });
}

export async function recreateDatabase(url: string): Promise<void> {
  const name = databaseName(url);
  await withAdmin(url, async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${quoteIdentifier(name)}`);
  });
}

export async function dropDatabase(url: string): Promise<void> {
  await withAdmin(url, (client) =>
    client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(databaseName(url))} WITH (FORCE)`),
  );
}

/** Creates (when missing) and migrates a database with the project's own `prisma migrate deploy`. */
export async function prepareDatabase(url: string, fresh: boolean): Promise<void> {
  if (fresh) await recreateDatabase(url);
  else await ensureDatabase(url);
  await migrateDeploy(url);
}

/** Runs `npm run ingest` on one file; returns the script's JSON summary. */
export async function ingestWithScript(
  url: string,
  file: string,
): Promise<{ inserted: number; rejected: number; elapsedMs: number }> {
  const result = await mustRun(
    'npm',
    ['run', '--silent', 'ingest', '--', '--format', 'ndjson', '--json', file],
    {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'warn' },
    },
  );
  return JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '{}');
}

const MARKER_TABLE = 'bench_dataset';

/**
 * Makes the benchmark database hold exactly the dataset: reused when the row count, the first and
 * last timestamps and the marker (generator options and source hash) all match, else reloaded
 * from scratch through `npm run ingest`. Ends with ANALYZE either way.
 */
export async function ensureBenchData(
  url: string,
  files: DataFiles,
  log: (line: string) => void,
): Promise<'reused' | 'loaded'> {
  await prepareDatabase(url, false);
  const state = await withClient(url, async (client) => {
    await client.query(`CREATE TABLE IF NOT EXISTS ${MARKER_TABLE} (key text NOT NULL)`);
    const marker = await client.query<{ key: string }>(`SELECT key FROM ${MARKER_TABLE}`);
    const stats = await client.query<{ count: string; first: Date | null; last: Date | null }>(
      'SELECT count(*) AS count, min("timestamp") AS first, max("timestamp") AS last FROM metrics',
    );
    return { marker: marker.rows.map((row) => row.key), ...stats.rows[0] };
  });
  const matches =
    state.marker.length === 1 &&
    state.marker[0] === files.key &&
    Number(state.count) === DATASET.rows &&
    state.first?.getTime() === sampleTime(1).getTime() &&
    state.last?.getTime() === sampleTime(DATASET.rows).getTime();
  if (matches) {
    // VACUUM too: a maintenance pass of an earlier run may have moved rows out of the default partition.
    await withClient(url, (client) => client.query('VACUUM (ANALYZE) metrics'));
    return 'reused';
  }
  log(
    `loading ${DATASET.rows} samples into ${databaseName(url)} with npm run ingest (found ${state.count} rows)`,
  );
  await withClient(url, async (client) => {
    await client.query(`TRUNCATE metrics RESTART IDENTITY; DELETE FROM ${MARKER_TABLE}`);
  });
  await makePartitions(url, sampleTime(1), new Date(sampleTime(DATASET.rows).getTime() + 1));
  const summary = await ingestWithScript(url, files.ndjson);
  if (summary.inserted !== DATASET.rows || summary.rejected !== 0) {
    throw new Error(
      `ingest loaded ${summary.inserted} rows with ${summary.rejected} rejected; expected ${DATASET.rows}`,
    );
  }
  await withClient(url, async (client) => {
    await client.query(`INSERT INTO ${MARKER_TABLE} (key) VALUES ($1)`, [files.key]);
    // VACUUM sets hint bits and the visibility map, so the first benchmark does not pay for them.
    await client.query('VACUUM (ANALYZE) metrics');
  });
  return 'loaded';
}

/**
 * Waits until no query runs in the database for three polls in a row. A load generator that stops
 * leaves requests queued in the servers' pools, and Postgres finishes them whether or not anyone
 * waits for the answer: without this, a slow workload (the whole-table summary) would steal CPU
 * from the next one.
 */
export async function waitForIdleDatabase(client: pg.Client, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let quiet = 0;
  while (quiet < 3) {
    if (Date.now() > deadline) throw new Error(`the benchmark database is still busy after ${timeoutMs} ms`);
    const result = await client.query<{ busy: number }>(
      `SELECT count(*)::int AS busy FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid()
          AND backend_type = 'client backend' AND state <> 'idle'`,
    );
    quiet = result.rows[0]?.busy === 0 ? quiet + 1 : 0;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Process ids of the backends connected to the database (the servers' pools), but this one. */
export function backendPids(client: pg.Client): Promise<number[]> {
  return client
    .query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
    )
    .then((result) => result.rows.map((row) => row.pid));
}
