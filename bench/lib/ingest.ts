/**
 * Ingest against the physical limit: the dataset's NDJSON through `npm run ingest` into an empty,
 * migrated table, and the same rows as CSV through `psql \copy` into another. Each gets a fresh
 * database, so both write into an empty table with the same indexes and constraints.
 */
import {
  DATASET,
  type DataFiles,
  databaseUrl,
  dropDatabase,
  prepareDatabase,
  ROOT,
  withClient,
} from './dataset.js';
import { GNU_TIME, hasGnuTime, mustRun, runCommand, watchPeakRss } from './processes.js';

export interface IngestResult {
  system: 'npm run ingest' | 'psql \\copy';
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

async function countRows(url: string): Promise<number> {
  return withClient(url, async (client) => {
    const result = await client.query<{ count: string }>('SELECT count(*) AS count FROM metrics');
    return Number(result.rows[0]?.count);
  });
}

/** Flushes dirty buffers first, so neither load pays for the other's writes. */
function checkpoint(url: string): Promise<unknown> {
  return withClient(url, (client) => client.query('CHECKPOINT'));
}

let gnuTimeWorks: boolean | undefined;
async function canUseGnuTime(): Promise<boolean> {
  if (gnuTimeWorks === undefined) {
    gnuTimeWorks = hasGnuTime() && (await runCommand(GNU_TIME, ['-v', 'true'])).code === 0;
  }
  return gnuTimeWorks;
}

async function runIngest(url: string, file: string): Promise<IngestResult> {
  const args = ['run', '--silent', 'ingest', '--', '--format', 'ndjson', '--json', file];
  const env = { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'warn' };
  const useTime = await canUseGnuTime();
  let watcher: ReturnType<typeof watchPeakRss> | undefined;
  const result = useTime
    ? await runCommand(GNU_TIME, ['-v', 'npm', ...args], { cwd: ROOT, env })
    : await runCommand('npm', args, {
        cwd: ROOT,
        env,
        onSpawn: (child) => {
          if (child.pid) watcher = watchPeakRss(child.pid);
        },
      });
  const polledKb = watcher ? await watcher.stop() : undefined;
  if (result.code !== 0)
    throw new Error(`npm run ingest failed (${result.code}):\n${result.stderr.slice(-3000)}`);
  const summary = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '{}') as {
    inserted: number;
    rejected: number;
    elapsedMs: number;
  };
  const rows = await countRows(url);
  if (summary.inserted !== DATASET.rows || rows !== DATASET.rows) {
    throw new Error(
      `npm run ingest stored ${rows} rows (inserted ${summary.inserted}); expected ${DATASET.rows}`,
    );
  }
  const timeKb = /Maximum resident set size \(kbytes\): (\d+)/.exec(result.stderr)?.[1];
  const peakKb = useTime ? Number(timeKb) : polledKb;
  return {
    system: 'npm run ingest',
    rows,
    wallSeconds: result.ms / 1000,
    loadSeconds: summary.elapsedMs / 1000,
    rowsPerSecond: rows / (summary.elapsedMs / 1000),
    peakRssMiB: peakKb ? peakKb / 1024 : undefined,
    rssMethod: useTime ? '/usr/bin/time -v' : 'VmHWM polled from /proc every 100 ms',
  };
}

async function runCopy(url: string, file: string): Promise<IngestResult> {
  const command = `\\copy metrics ("timestamp", cpu_load, concurrency) FROM '${file.replaceAll("'", "''")}' WITH (FORMAT csv, HEADER true)`;
  const result = await mustRun('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', command]);
  const rows = await countRows(url);
  if (rows !== DATASET.rows) throw new Error(`\\copy stored ${rows} rows; expected ${DATASET.rows}`);
  return {
    system: 'psql \\copy',
    rows,
    wallSeconds: result.ms / 1000,
    loadSeconds: undefined,
    rowsPerSecond: rows / (result.ms / 1000),
    peakRssMiB: undefined,
    rssMethod: '',
  };
}

/** Both loads, each into a fresh database next to the benchmark one; both dropped afterwards. */
export async function benchIngest(
  benchUrl: string,
  files: DataFiles,
  log: (line: string) => void,
): Promise<IngestResult[]> {
  const ingestUrl = databaseUrl(benchUrl, 'metrics_bench_ingest');
  const copyUrl = databaseUrl(benchUrl, 'metrics_bench_copy');
  try {
    await prepareDatabase(copyUrl, true);
    await checkpoint(benchUrl);
    log('  psql \\copy of 1,000,000 CSV rows into an empty table');
    const copy = await runCopy(copyUrl, files.copyCsv);
    await dropDatabase(copyUrl);
    await prepareDatabase(ingestUrl, true);
    await checkpoint(benchUrl);
    log('  npm run ingest of 1,000,000 NDJSON rows into an empty table');
    const ingest = await runIngest(ingestUrl, files.ndjson);
    return [copy, ingest];
  } finally {
    await dropDatabase(copyUrl);
    await dropDatabase(ingestUrl);
  }
}
