/**
 * `npm run bench -- --scale`: a year of one-second samples (31,536,000 rows) loaded with the
 * project's own ingest script into two databases on the same server, then the questions a
 * long-range chart asks, uncached, against each:
 *
 * - `metrics_scale`: every migration (the schema the service runs on);
 * - `metrics_scale_plain`: only the migrations before issue 13 (one unpartitioned table, no
 *   rollups), for the ratio.
 *
 * Both are kept between runs and reused when they hold exactly the year. The data file
 * (NDJSON, about 1.9 GB) is generated once into bench/.cache.
 */
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { readdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { migrateDeploy } from '../../src/database/migrations.js';
import { buildAt } from './builds.js';
import {
  CACHE_DIR,
  databaseUrl,
  dropDatabase,
  ensureDatabase,
  makePartitions,
  ROOT,
  recreateDatabase,
  withClient,
} from './dataset.js';
import { freePort, mustRun, NODE_FLAGS, productionEnv, Service } from './processes.js';

export const SCALE = {
  rows: 31_536_000,
  /** 2025-01-01T00:00:00Z. */
  startMs: Date.UTC(2025, 0, 1),
  seed: 7,
} as const;
const YEAR_END_MS = SCALE.startMs + SCALE.rows * 1000;
const MIGRATIONS = join(ROOT, 'prisma/migrations');
/** The last migration of the schema as it was before time partitions and rollups. */
const PLAIN_UNTIL = '20261202000000_metrics_changes';
/** The service as it was on that schema (the last commit before partitions and rollups). */
const PLAIN_REF = '388d488';
const DAY_MS = 86_400_000;

export interface ScaleDatabase {
  name: string;
  schema: string;
  state: 'reused' | 'loaded';
  /** The load, when this run made it. */
  load?: { seconds: number; rowsPerSecond: number };
  /** p50 ms of each question, uncached, one connection. */
  questions: { id: string; title: string; p50: number; runs: number; rows: number }[];
  /** Bytes on disk of each table (partitions summed into their parent). */
  tables: { name: string; bytes: number }[];
}

export interface ScaleResult {
  rows: number;
  databases: ScaleDatabase[];
  /**
   * The first INGEST_ROWS of the year into an empty table, round by round, rows/s: the current
   * schema, the same with the rollups' triggers disabled, and the plain schema.
   */
  ingest: { rows: number; rounds: { scaled: number; withoutRollups: number; plain: number }[] };
}

const INGEST_ROWS = 2_000_000;
const INGEST_ROUNDS = 3;
/** The triggers that keep the rollups (migration 20261202070000_metrics_rollups). */
const ROLLUP_TRIGGERS = [
  'metric_rollups_insert_starts',
  'metric_rollups_insert',
  'metric_rollups_update',
  'metric_rollups_delete',
  'metric_rollups_truncate',
];

async function dataFile(log: (line: string) => void): Promise<string> {
  const file = join(CACHE_DIR, `scale-${SCALE.rows}-seed${SCALE.seed}.ndjson`);
  if (existsSync(file)) return file;
  log(`generating ${SCALE.rows.toLocaleString('en')} samples -> ${file} (once)`);
  const partial = `${file}.partial`;
  await mustRun(join(ROOT, 'node_modules/.bin/tsx'), [
    join(ROOT, 'scripts/generate-metrics.ts'),
    ...['--rows', String(SCALE.rows), '--start', String(SCALE.startMs / 1000), '--step', '1'],
    ...['--seed', String(SCALE.seed), '--format', 'ndjson', '--output', partial],
  ]);
  await rename(partial, file);
  return file;
}

/** Applies the migrations up to and including `until` (all when undefined), as plain SQL files. */
async function migrate(url: string, until: string | undefined): Promise<void> {
  if (until === undefined) {
    await migrateDeploy(url);
    return;
  }
  const names = (await readdir(MIGRATIONS, { withFileTypes: true }))
    .filter((entry) => entry.isDirectory() && entry.name <= until)
    .map((entry) => entry.name)
    .sort();
  await withClient(url, async (client) => {
    for (const name of names)
      await client.query(await readFile(join(MIGRATIONS, name, 'migration.sql'), 'utf8'));
  });
}

/** The day partitions of the first `rows` rows (the current schema only, whose fresh database has a default partition and nothing else). */
const partitionsOf = (url: string, rows: number) =>
  makePartitions(
    url,
    new Date(SCALE.startMs),
    new Date(SCALE.startMs + Math.ceil((rows * 1000) / DAY_MS) * DAY_MS),
  );

async function holdsTheYear(url: string): Promise<boolean> {
  return withClient(url, async (client) => {
    const table = await client.query(`SELECT to_regclass('metrics') IS NOT NULL AS present`);
    if (!table.rows[0]?.present) return false;
    const { rows } = await client.query<{ count: string; first: Date | null; last: Date | null }>(
      'SELECT count(*) AS count, min("timestamp") AS first, max("timestamp") AS last FROM metrics',
    );
    const row = rows[0];
    return (
      Number(row?.count) === SCALE.rows &&
      row?.first?.getTime() === SCALE.startMs &&
      row?.last?.getTime() === YEAR_END_MS - 1000
    );
  });
}

/** The first `rows` lines of `file`, written once next to it. */
async function headOf(file: string, rows: number): Promise<string> {
  const output = file.replace(/\.ndjson$/, `.head-${rows}.ndjson`);
  if (existsSync(output)) return output;
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY });
  const out = createWriteStream(`${output}.partial`);
  let n = 0;
  for await (const line of lines) {
    if (!out.write(`${line}\n`)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    if (++n === rows) break;
  }
  lines.close();
  await new Promise<void>((resolve, reject) =>
    out.end((error?: Error | null) => (error ? reject(error) : resolve())),
  );
  await rename(`${output}.partial`, output);
  return output;
}

async function load(
  url: string,
  file: string,
  expected: number = SCALE.rows,
): Promise<{ seconds: number; rowsPerSecond: number }> {
  const script = join(ROOT, 'dist/scripts/ingest.js');
  const result = await mustRun(process.execPath, [script, '--format', 'ndjson', '--json', file], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'warn' },
  });
  const summary = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '{}') as {
    inserted: number;
    elapsedMs: number;
  };
  if (summary.inserted !== expected) throw new Error(`the ingest script inserted ${summary.inserted} rows`);
  return { seconds: summary.elapsedMs / 1000, rowsPerSecond: expected / (summary.elapsedMs / 1000) };
}

const iso = (ms: number) => new Date(ms).toISOString();
const cursorAt = (row: number) =>
  Buffer.from(`metric:${SCALE.startMs + (row - 1) * 1000}`).toString('base64url');
const MID_DAY = SCALE.startMs + 180 * DAY_MS;

/** The questions, each with how many times it is asked (the slow ones fewer). */
function questions(): { id: string; title: string; query: string; runs: number }[] {
  const year = `start: "${iso(SCALE.startMs)}", end: "${iso(YEAR_END_MS)}"`;
  const series = (bucket: string) =>
    `{ metricSeries(${year}, bucket: "${bucket}") { start count cpuLoad { min max avg } concurrency { min max avg } } }`;
  const summary = (range: string) =>
    `{ metricsSummary(${range}) { count cpuLoad { min max avg p50 p95 p99 } concurrency { min max avg p95 } } }`;
  const page = (after?: string) =>
    `{ metrics(first: 100${after ? `, after: "${after}"` : ''}) { edges { cursor node { id timestamp cpuLoad concurrency } } pageInfo { hasNextPage endCursor } } }`;
  return [
    { id: 'S1', title: 'one-year series by day', query: series('1d'), runs: 5 },
    { id: 'S2', title: 'one-year series by hour', query: series('1h'), runs: 9 },
    { id: 'S3', title: 'one-year summary', query: summary(year), runs: 5 },
    {
      id: 'S4',
      title: 'one-day summary',
      query: summary(`start: "${iso(MID_DAY)}", end: "${iso(MID_DAY + DAY_MS)}"`),
      runs: 20,
    },
    { id: 'S5', title: 'first page of 100', query: page(), runs: 50 },
    { id: 'S6', title: 'page of 100 after row 30,000,000', query: page(cursorAt(30_000_000)), runs: 50 },
  ];
}

const WARMUP_REQUESTS = 3;
const WARMUP_MS = 2_000;

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
};

async function ask(url: string, query: string, runs: number): Promise<{ p50: number; rows: number }> {
  const times: number[] = [];
  let rows = 0;
  // Unmeasured requests first, for at least WARMUP_MS and WARMUP_REQUESTS, so that every measured
  // one meets a warm process: the connection and plans, graphql-jit's compiled query (made at a
  // document's second execution) and V8's optimized code for the answer's shape (an hourly year is
  // 8,760 buckets: the first answers took 129, 79, 73, 46 ms, from the eighth on 31-42; a year by
  // day 64, 24, 12 ms, then 5).
  const warmupEnds = performance.now() + WARMUP_MS;
  let warmups = 0;
  for (let i = 0; i < runs; ) {
    const measured = warmups >= WARMUP_REQUESTS && performance.now() >= warmupEnds;
    const started = performance.now();
    const response = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query }),
    });
    // Until the last byte, as a client waiting for the answer sees it; parsing it is the client's
    // own time (a year by hour is 1.4 MB of JSON: ~15 ms of JSON.parse in this process).
    const text = await response.text();
    const ms = performance.now() - started;
    const body = JSON.parse(text) as { data?: Record<string, unknown>; errors?: unknown[] };
    if (body.errors || !body.data) throw new Error(`${query}: ${JSON.stringify(body.errors ?? body)}`);
    if (measured) {
      times.push(ms);
      i++;
    } else {
      warmups++;
    }
    const value = Object.values(body.data)[0] as { edges?: unknown[] } | unknown[];
    rows = Array.isArray(value) ? value.length : (value.edges?.length ?? 1);
  }
  return { p50: median(times), rows };
}

async function tableSizes(url: string): Promise<{ name: string; bytes: number }[]> {
  return withClient(url, async (client) => {
    // A partition's size is counted in its root parent's.
    const { rows } = await client.query<{ name: string; bytes: string }>(`
      SELECT coalesce(root.relname, c.relname) AS name, sum(pg_total_relation_size(c.oid))::bigint AS bytes
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
      LEFT JOIN LATERAL (
        SELECT p.relname FROM pg_partition_ancestors(c.oid) a JOIN pg_class p ON p.oid = a.relid
        WHERE NOT p.relispartition LIMIT 1
      ) root ON true
      WHERE c.relkind IN ('r', 'p') AND c.relname <> '_prisma_migrations'
      GROUP BY 1 ORDER BY 2 DESC`);
    return rows.map((row) => ({ name: row.name, bytes: Number(row.bytes) }));
  });
}

export async function benchScale(benchUrl: string, log: (line: string) => void): Promise<ScaleResult> {
  const file = await dataFile(log);
  const targets = [
    {
      name: 'metrics_scale',
      schema: 'every migration',
      until: undefined,
      main: join(ROOT, 'dist/src/main.js'),
    },
    {
      name: 'metrics_scale_plain',
      schema: `migrations up to ${PLAIN_UNTIL} (unpartitioned, no rollups), served by ${PLAIN_REF}`,
      until: PLAIN_UNTIL,
      main: await buildAt(PLAIN_REF, 'the service before partitions and rollups', log),
    },
  ];
  const databases: ScaleDatabase[] = [];
  for (const target of targets) {
    const url = databaseUrl(benchUrl, target.name);
    await ensureDatabase(url);
    if (target.until === undefined) await migrateDeploy(url);
    let state: ScaleDatabase['state'] = 'reused';
    let loaded: ScaleDatabase['load'];
    if (!(await holdsTheYear(url))) {
      await recreateDatabase(url);
      await migrate(url, target.until);
      if (target.until === undefined) await partitionsOf(url, SCALE.rows);
      log(`loading ${SCALE.rows.toLocaleString('en')} rows into ${target.name} with the ingest script`);
      loaded = await load(url, file);
      state = 'loaded';
      log(
        `  ${loaded.seconds.toFixed(0)} s, ${Math.round(loaded.rowsPerSecond).toLocaleString('en')} rows/s`,
      );
    }
    await withClient(url, (client) => client.query('VACUUM (ANALYZE) metrics'));

    const port = await freePort();
    const service = Service.start(
      'service',
      process.execPath,
      [...NODE_FLAGS, target.main],
      productionEnv(process.env, url, port, { AGGREGATE_CACHE_BYTES: '0' }),
    );
    const serviceUrl = `http://127.0.0.1:${port}`;
    const answered: ScaleDatabase['questions'] = [];
    try {
      await service.waitReady(`${serviceUrl}/readyz`);
      for (const question of questions()) {
        log(`  ${target.name}: ${question.id} ${question.title}`);
        const { p50, rows } = await ask(serviceUrl, question.query, question.runs);
        answered.push({ id: question.id, title: question.title, p50, runs: question.runs, rows });
      }
    } finally {
      await service.stop();
    }
    databases.push({
      name: target.name,
      schema: target.schema,
      state,
      ...(loaded ? { load: loaded } : {}),
      questions: answered,
      tables: await tableSizes(url),
    });
  }
  // Ingest throughput on a slice, into empty tables of each schema in turn, so that all meet the
  // machine in the same state: the current one, the same without rollup maintenance, the plain one.
  const slice = await headOf(file, INGEST_ROWS);
  const variants = [
    { key: 'scaled', until: undefined, rollups: true },
    { key: 'withoutRollups', until: undefined, rollups: false },
    { key: 'plain', until: PLAIN_UNTIL, rollups: false },
  ] as const;
  const rounds: ScaleResult['ingest']['rounds'] = [];
  for (let round = 1; round <= INGEST_ROUNDS; round++) {
    const rates = { scaled: 0, withoutRollups: 0, plain: 0 };
    for (const variant of variants) {
      const url = databaseUrl(benchUrl, 'metrics_scale_ingest');
      await recreateDatabase(url);
      await migrate(url, variant.until);
      if (variant.until === undefined) await partitionsOf(url, INGEST_ROWS);
      if (variant.until === undefined && !variant.rollups) {
        await withClient(url, async (client) => {
          for (const trigger of ROLLUP_TRIGGERS)
            await client.query(`ALTER TABLE metrics DISABLE TRIGGER ${trigger}`);
        });
      }
      log(`  ingest round ${round}: ${INGEST_ROWS.toLocaleString('en')} rows, ${variant.key}`);
      rates[variant.key] = (await load(url, slice, INGEST_ROWS)).rowsPerSecond;
      await dropDatabase(url);
    }
    rounds.push(rates);
  }
  return { rows: SCALE.rows, databases, ingest: { rows: INGEST_ROWS, rounds } };
}

const TARGET_MS: Record<string, number> = { S1: 50, S2: 50, S3: 50, S4: 10 };

export function renderScale(result: ScaleResult): string[] {
  const [scaled, plain] = result.databases;
  const lines = [`## Scale: ${result.rows.toLocaleString('en')} rows (a year at one a second)`, ''];
  for (const db of result.databases) {
    lines.push(
      `- \`${db.name}\` (${db.schema}): ${db.state}${db.load ? `, loaded in ${db.load.seconds.toFixed(0)} s at ${Math.round(db.load.rowsPerSecond).toLocaleString('en')} rows/s` : ''}`,
    );
  }
  lines.push('', '| question | target p50 | metrics_scale p50 ms | plain table p50 ms | ratio | met |');
  lines.push('| --- | ---: | ---: | ---: | ---: | --- |');
  for (const question of scaled?.questions ?? []) {
    const other = plain?.questions.find((q) => q.id === question.id);
    const target = TARGET_MS[question.id];
    const first = scaled?.questions.find((q) => q.id === 'S5');
    const met =
      target !== undefined
        ? question.p50 < target
        : question.id === 'S6' && first
          ? question.p50 < first.p50 * 1.5
          : undefined;
    lines.push(
      `| ${question.id} ${question.title} (${question.rows} rows/buckets, ${question.runs} runs) | ${target ? `< ${target} ms` : question.id === 'S6' ? 'as the first page' : '-'} | ${question.p50.toFixed(1)} | ${other ? other.p50.toFixed(1) : '-'} | ${other ? `${(other.p50 / question.p50).toFixed(1)}x` : '-'} | ${met === undefined ? '-' : met ? 'yes' : '**no**'} |`,
    );
  }
  const medianOf = (values: number[]) =>
    [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
  const rounds = result.ingest.rounds;
  const vsWithout = medianOf(rounds.map((round) => round.scaled / round.withoutRollups));
  const vsPlain = medianOf(rounds.map((round) => round.scaled / round.plain));
  const rate = (value: number) => Math.round(value).toLocaleString('en');
  lines.push(
    '',
    `Ingest (\`node dist/scripts/ingest.js\`) of the first ${result.ingest.rows.toLocaleString('en')} rows into an empty table, ${rounds.length} rounds, rows/s:`,
    '',
    '| round | current schema (partitions, rollups) | the same, rollup triggers disabled | plain schema (before issue 13) |',
    '| --- | ---: | ---: | ---: |',
    ...rounds.map(
      (round, index) =>
        `| ${index + 1} | ${rate(round.scaled)} | ${rate(round.withoutRollups)} | ${rate(round.plain)} |`,
    ),
    '',
    `With rollup maintenance on, ingest runs at ${(100 * vsWithout).toFixed(0)}% of the same schema without it (median of the round ratios; target >= 70%: ${vsWithout >= 0.7 ? 'met' : '**not met**'}), and at ${(100 * vsPlain).toFixed(0)}% of the plain schema.`,
  );
  lines.push('', 'Disk, by table (partitions counted in their parent):', '');
  for (const db of result.databases) {
    lines.push(
      `- \`${db.name}\`: ${db.tables.map((t) => `${t.name} ${(t.bytes / 1024 / 1024).toFixed(0)} MiB`).join(', ')}`,
    );
  }
  lines.push('');
  return lines;
}
