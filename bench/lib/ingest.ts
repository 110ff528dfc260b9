/**
 * Ingest against the physical limit: the dataset's NDJSON through the ingest script (compiled, as
 * `npm run build` leaves it: what production runs) into an empty, migrated table, and the same
 * rows as CSV through `psql \copy` into another. Each load gets a fresh database, so both write
 * into an empty table with the same indexes, constraints and triggers. Three rounds, each \copy
 * then the script, so the machine's drift shows in every pair rather than between them; then the
 * script once more on 10,000 rows, whose peak RSS against the million's shows whether memory grows
 * with the input.
 */
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  CACHE_DIR,
  DATASET,
  type DataFiles,
  databaseUrl,
  dropDatabase,
  prepareDatabase,
  ROOT,
  withClient,
} from './dataset.js';
import { GNU_TIME, hasGnuTime, mustRun, runCommand, watchPeakRss } from './processes.js';
import { median } from './statistics.js';

export const INGEST_SYSTEM = 'ingest script';
export const COPY_SYSTEM = 'psql \\copy';
const ROUNDS = 3;
const SMALL_ROWS = 10_000;

export interface IngestResult {
  system: typeof INGEST_SYSTEM | typeof COPY_SYSTEM;
  /** 1-based; 0 for the small-input run. */
  round: number;
  /** How the system was run. */
  command: string;
  rows: number;
  /** Wall clock of the whole command, start-up included. */
  wallSeconds: number;
  /** The script's own elapsed time (loading only), when it reports one. */
  loadSeconds: number | undefined;
  /** rows / loadSeconds (ingest) or rows / wallSeconds (\copy). */
  rowsPerSecond: number;
  /** Largest single process of the command's tree, in MiB. */
  peakRssMiB: number | undefined;
  rssMethod: string;
}

export async function countRows(url: string): Promise<number> {
  return withClient(url, async (client) => {
    const result = await client.query<{ count: string }>('SELECT count(*) AS count FROM metrics');
    return Number(result.rows[0]?.count);
  });
}

/** Flushes dirty buffers first, so neither load pays for the other's writes. */
export function checkpoint(url: string): Promise<unknown> {
  return withClient(url, (client) => client.query('CHECKPOINT'));
}

let gnuTimeWorks: boolean | undefined;
async function canUseGnuTime(): Promise<boolean> {
  if (gnuTimeWorks === undefined) {
    gnuTimeWorks = hasGnuTime() && (await runCommand(GNU_TIME, ['-v', 'true'])).code === 0;
  }
  return gnuTimeWorks;
}

const COMPILED_SCRIPT = join(ROOT, 'dist/scripts/ingest.js');

/** The ingest script (compiled when built) on one NDJSON file into `url`, which must then hold `expected` rows. */
export async function runIngest(
  url: string,
  file: string,
  round: number,
  expected: number,
): Promise<IngestResult> {
  // The bench builds first; without a build (it failed) the script runs from source through tsx.
  const compiled = existsSync(COMPILED_SCRIPT);
  const script = compiled ? [COMPILED_SCRIPT] : ['--import', 'tsx', join(ROOT, 'scripts/ingest.ts')];
  const args = [...script, '--format', 'ndjson', '--json', file];
  const env = { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'warn' };
  const useTime = await canUseGnuTime();
  let watcher: ReturnType<typeof watchPeakRss> | undefined;
  const result = useTime
    ? await runCommand(GNU_TIME, ['-v', process.execPath, ...args], { cwd: ROOT, env })
    : await runCommand(process.execPath, args, {
        cwd: ROOT,
        env,
        onSpawn: (child) => {
          if (child.pid) watcher = watchPeakRss(child.pid);
        },
      });
  const polledKb = watcher ? await watcher.stop() : undefined;
  if (result.code !== 0)
    throw new Error(`the ingest script failed (${result.code}):\n${result.stderr.slice(-3000)}`);
  const summary = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '{}') as {
    inserted: number;
    rejected: number;
    elapsedMs: number;
  };
  const rows = await countRows(url);
  if (summary.inserted !== expected || rows !== expected) {
    throw new Error(
      `the ingest script stored ${rows} rows (inserted ${summary.inserted}); expected ${expected}`,
    );
  }
  const timeKb = /Maximum resident set size \(kbytes\): (\d+)/.exec(result.stderr)?.[1];
  const peakKb = useTime ? Number(timeKb) : polledKb;
  return {
    system: INGEST_SYSTEM,
    round,
    command: compiled
      ? '`node dist/scripts/ingest.js` (what `npm run ingest` runs, compiled)'
      : '`node --import tsx scripts/ingest.ts` (**the build failed**)',
    rows,
    wallSeconds: result.ms / 1000,
    loadSeconds: summary.elapsedMs / 1000,
    rowsPerSecond: rows / (summary.elapsedMs / 1000),
    peakRssMiB: peakKb ? peakKb / 1024 : undefined,
    rssMethod: useTime ? '/usr/bin/time -v' : 'VmHWM polled from /proc every 100 ms',
  };
}

/** The dataset's CSV columns, in the order `\\copy` reads them. */
const DATASET_COLUMNS = '"timestamp", cpu_load, concurrency';

/** `psql \\copy` of a CSV file with a header and `columns` into `url`, which must then hold `expected` rows. */
export async function runCopy(
  url: string,
  file: string,
  round: number,
  columns: string,
  expected: number,
): Promise<IngestResult> {
  const command = `\\copy metrics (${columns}) FROM '${file.replaceAll("'", "''")}' WITH (FORMAT csv, HEADER true)`;
  const result = await mustRun('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', command]);
  const rows = await countRows(url);
  if (rows !== expected) throw new Error(`\\copy stored ${rows} rows; expected ${expected}`);
  return {
    system: COPY_SYSTEM,
    round,
    command: `\`psql -c "\\copy metrics (${columns}) FROM '<csv>' WITH (FORMAT csv, HEADER true)"\``,
    rows,
    wallSeconds: result.ms / 1000,
    loadSeconds: undefined,
    rowsPerSecond: rows / (result.ms / 1000),
    peakRssMiB: undefined,
    rssMethod: '',
  };
}

/** The first `rows` records of the NDJSON file, for the small-input run. */
async function headOf(file: string, rows: number): Promise<string> {
  const output = join(CACHE_DIR, `head-${rows}.ndjson`);
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY });
  const out = createWriteStream(output);
  let n = 0;
  for await (const line of lines) {
    out.write(`${line}\n`);
    if (++n === rows) break;
  }
  lines.close();
  await new Promise<void>((resolve, reject) =>
    out.end((error?: Error | null) => (error ? reject(error) : resolve())),
  );
  return output;
}

/** Both loads, round by round, each into a fresh database next to the benchmark one; all dropped afterwards. */
export async function benchIngest(
  benchUrl: string,
  files: DataFiles,
  log: (line: string) => void,
): Promise<IngestResult[]> {
  const ingestUrl = databaseUrl(benchUrl, 'metrics_bench_ingest');
  const copyUrl = databaseUrl(benchUrl, 'metrics_bench_copy');
  const results: IngestResult[] = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      await prepareDatabase(copyUrl, true);
      await checkpoint(benchUrl);
      log(
        `  round ${round}: psql \\copy of ${DATASET.rows.toLocaleString('en')} CSV rows into an empty table`,
      );
      results.push(await runCopy(copyUrl, files.copyCsv, round, DATASET_COLUMNS, DATASET.rows));
      await dropDatabase(copyUrl);
      await prepareDatabase(ingestUrl, true);
      await checkpoint(benchUrl);
      log(
        `  round ${round}: the ingest script on ${DATASET.rows.toLocaleString('en')} NDJSON rows into an empty table`,
      );
      results.push(await runIngest(ingestUrl, files.ndjson, round, DATASET.rows));
      await dropDatabase(ingestUrl);
    }
    await prepareDatabase(ingestUrl, true);
    log(`  the ingest script on ${SMALL_ROWS.toLocaleString('en')} rows (memory against input size)`);
    results.push(await runIngest(ingestUrl, await headOf(files.ndjson, SMALL_ROWS), 0, SMALL_ROWS));
    return results;
  } finally {
    await dropDatabase(copyUrl);
    await dropDatabase(ingestUrl);
  }
}

export interface IngestComparison {
  /** Median over the rounds of the script's rows/s over \copy's in the same round. */
  ratio: number;
  roundRatios: number[];
  ingestRowsPerSecond: number;
  copyRowsPerSecond: number;
  /** Largest over the rounds of the million-row load. */
  peakRssMiB: number | undefined;
  smallPeakRssMiB: number | undefined;
  rssMethod: string;
  command: string;
}

export function compareIngest(results: IngestResult[]): IngestComparison | undefined {
  const rounds = [...new Set(results.filter((r) => r.round > 0).map((r) => r.round))];
  const pairs = rounds.flatMap((round) => {
    const ingest = results.find((r) => r.round === round && r.system === INGEST_SYSTEM);
    const copy = results.find((r) => r.round === round && r.system === COPY_SYSTEM);
    return ingest && copy ? [{ ingest, copy }] : [];
  });
  const first = pairs[0];
  if (!first) return undefined;
  const roundRatios = pairs.map(({ ingest, copy }) => ingest.rowsPerSecond / copy.rowsPerSecond);
  const rss = pairs.map(({ ingest }) => ingest.peakRssMiB).filter((v) => v !== undefined);
  const small = results.find((r) => r.round === 0 && r.system === INGEST_SYSTEM);
  return {
    ratio: median(roundRatios),
    roundRatios,
    ingestRowsPerSecond: median(pairs.map(({ ingest }) => ingest.rowsPerSecond)),
    copyRowsPerSecond: median(pairs.map(({ copy }) => copy.rowsPerSecond)),
    peakRssMiB: rss.length > 0 ? Math.max(...rss) : undefined,
    smallPeakRssMiB: small?.peakRssMiB,
    rssMethod: first.ingest.rssMethod,
    command: first.ingest.command,
  };
}
