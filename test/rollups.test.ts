// Rollups on real PostgreSQL: kept equal to the raw rows by every kind of write, read by series
// and summaries with the raw answers, percentiles from the sketch within the stated error,
// answers from rollups where raw rows are gone, retention, and the check/rebuild command.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EXIT, run as runRollups } from '../src/cli/rollups/run.js';
import { parseConfig } from '../src/config.js';
import { SKETCH_RELATIVE_ACCURACY, sketchOf, sketchQuantile } from '../src/domain/quantile-sketch.js';
import { RollupRetention } from '../src/maintenance/rollup-retention.js';
import { createLogger } from '../src/observability/logger.js';
import { projectRoot } from '../src/paths.js';
import { MetricStore } from '../src/store/metric-store.js';
import { type DroppedRollups, RollupStore } from '../src/store/rollup-store.js';
import { ALL_SOURCES } from '../src/store/source-filter.js';
import { createTestApp, graphql } from './support/app.js';
import {
  connectTest,
  createEmptyDatabase,
  createTestDatabase,
  type TestDatabase,
} from './support/database.js';
import { runIngest, scriptEnv } from './support/ingest.js';
import { committedMigrations } from './support/prisma-cli.js';
import { sketchTail } from './support/sketch-tail.js';
import { TracedStatements } from './support/traced-statements.js';

const T0 = Date.UTC(2026, 0, 1);
const DAY = 86_400_000;

let db: TestDatabase;
let sql: pg.Client;
let rollups: RollupStore;

/** A seeded generator, so a failure can be replayed: mulberry32. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * `count` samples at random instants (millisecond precision) within [from, from + spanMs), with
 * random loads (zeros among them) and concurrencies, inserted in one statement. `sourced` (a
 * table with sources): of three sources, one of the two values missing now and then.
 */
async function insertRandom(
  next: () => number,
  from: number,
  spanMs: number,
  count: number,
  client = sql,
  sourced = true,
) {
  const rows = Array.from({ length: count }, () => {
    const missing = sourced ? next() : 1;
    return [
      sourced ? 1 + Math.floor(next() * 3) : 1,
      new Date(from + Math.floor(next() * spanMs)).toISOString(),
      missing < 0.05 ? null : next() < 0.05 ? 0 : Math.fround(next() ** 3 * 100),
      missing >= 0.05 && missing < 0.1 ? null : next() < 0.05 ? 0 : Math.floor(next() * 64),
    ];
  });
  const columns = [0, 1, 2, 3].map((column) => rows.map((row) => row[column]));
  await (sourced
    ? client.query(
        `INSERT INTO metrics (source_id, "timestamp", cpu_load, concurrency)
         SELECT * FROM unnest($1::int[], $2::timestamptz[], $3::real[], $4::int[]) ON CONFLICT (source_id, "timestamp") DO NOTHING`,
        columns,
      )
    : client.query(
        `INSERT INTO metrics ("timestamp", cpu_load, concurrency)
         SELECT * FROM unnest($1::timestamptz[], $2::real[], $3::int[]) ON CONFLICT ("timestamp") DO NOTHING`,
        columns.slice(1),
      ));
}

/** Every rollup of the days raw rows are stored for equals what the raw rows give. */
async function expectNoDifferences() {
  const differences = [];
  for (const day of await rollups.rawDays({})) differences.push(...(await rollups.checkDay(day)));
  expect(differences).toEqual([]);
}

/** And every raw row is counted once at every level. */
async function expectRollupsEqualRaw() {
  await expectNoDifferences();
  const { rows } = await sql.query<{ raw: number; minute: number; hour: number; day: number }>(
    `SELECT (SELECT count(*) FROM metrics)::int AS raw,
            (SELECT coalesce(sum(row_count), 0) FROM metric_rollups_minute)::int AS minute,
            (SELECT coalesce(sum(row_count), 0) FROM metric_rollups_hour)::int AS hour,
            (SELECT coalesce(sum(row_count), 0) FROM metric_rollups_day)::int AS day`,
  );
  const [counts] = rows;
  expect(counts?.minute).toBe(counts?.raw);
  expect(counts?.hour).toBe(counts?.raw);
  expect(counts?.day).toBe(counts?.raw);
}

/** The raw computation the store made before rollups, for comparison. */
async function rawSeries(start: Date, end: Date, bucketSeconds: number, sourceId?: number) {
  const { rows } = await sql.query(
    `SELECT date_bin(make_interval(secs => $3::int), "timestamp", TIMESTAMPTZ 'epoch') AS start,
            count(*)::int AS count, count(cpu_load)::int AS cpu_count, min(cpu_load) AS cpu_min,
            max(cpu_load) AS cpu_max, avg(cpu_load)::real AS cpu_avg, count(concurrency)::int AS concurrency_count,
            min(concurrency) AS concurrency_min, max(concurrency) AS concurrency_max,
            avg(concurrency)::float8 AS concurrency_avg
       FROM metrics WHERE "timestamp" >= $1 AND "timestamp" < $2 AND ($4::int IS NULL OR source_id = $4)
      GROUP BY 1 ORDER BY 1`,
    [start, end, bucketSeconds, sourceId ?? null],
  );
  return rows.map((row) => ({
    start: row.start,
    count: row.count,
    cpuLoad: { count: row.cpu_count, min: row.cpu_min, max: row.cpu_max, avg: row.cpu_avg },
    concurrency: {
      count: row.concurrency_count,
      min: row.concurrency_min,
      max: row.concurrency_max,
      avg: row.concurrency_avg,
    },
  }));
}

async function rawSummary(start: Date | undefined, end: Date | undefined) {
  const { rows } = await sql.query(
    `SELECT count(*)::int AS count, min("timestamp") AS first, max("timestamp") AS last,
            count(cpu_load)::int AS cpu_count, count(concurrency)::int AS concurrency_count, min(cpu_load) AS cpu_min, max(cpu_load) AS cpu_max, avg(cpu_load)::real AS cpu_avg,
            (percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY cpu_load))::real[] AS cpu_percentiles,
            min(concurrency) AS concurrency_min, max(concurrency) AS concurrency_max,
            avg(concurrency)::float8 AS concurrency_avg,
            percentile_cont(0.95) WITHIN GROUP (ORDER BY concurrency) AS concurrency_p95
       FROM metrics WHERE ($1::timestamptz IS NULL OR "timestamp" >= $1) AND ($2::timestamptz IS NULL OR "timestamp" < $2)`,
    [start ?? null, end ?? null],
  );
  const row = rows[0];
  const [p50 = null, p95 = null, p99 = null] = row.cpu_percentiles ?? [];
  return {
    count: row.count,
    firstTimestamp: row.first,
    lastTimestamp: row.last,
    cpuLoad: { count: row.cpu_count, min: row.cpu_min, max: row.cpu_max, avg: row.cpu_avg, p50, p95, p99 },
    concurrency: {
      count: row.concurrency_count,
      min: row.concurrency_min,
      max: row.concurrency_max,
      avg: row.concurrency_avg,
      p95: row.concurrency_p95,
    },
  };
}

/** A random instant within the data, aligned to a random unit so that every kind of edge occurs. */
function randomInstant(next: () => number, from: number, spanMs: number): Date {
  const units = [1, 1000, 60_000, 3_600_000, DAY];
  const unit = units[Math.floor(next() * units.length)] as number;
  return new Date(Math.floor((from + next() * spanMs) / unit) * unit);
}

beforeAll(async () => {
  db = await createTestDatabase();
  sql = new pg.Client({ connectionString: db.url });
  await sql.connect();
  rollups = new RollupStore(db);
});
afterAll(async () => {
  await sql.end();
  await db.drop();
});
beforeEach(async () => {
  await sql.query('TRUNCATE metrics');
});

describe('rollup maintenance', () => {
  it('keeps minutes, hours and days equal to the raw rows through inserts, upserts, updates and deletes', async () => {
    const next = random(1);
    await insertRandom(next, T0, 3 * DAY, 4000);
    await expectRollupsEqualRaw();
    // More rows into minutes, hours and days that have some already.
    await insertRandom(next, T0, 3 * DAY, 2000);
    await expectRollupsEqualRaw();

    // INSERT ... ON CONFLICT DO UPDATE, new and stored timestamps together: both triggers fire.
    await sql.query(
      `INSERT INTO metrics (source_id, "timestamp", cpu_load, concurrency)
       SELECT source_id, "timestamp" + CASE WHEN id % 2 = 0 THEN INTERVAL '0' ELSE INTERVAL '1 millisecond' END, 99.5, 63
         FROM metrics WHERE id % 7 = 0
       ON CONFLICT (source_id, "timestamp") DO UPDATE SET cpu_load = excluded.cpu_load, concurrency = excluded.concurrency`,
    );
    await expectRollupsEqualRaw();

    // Updates that move rows to other minutes, hours and days, and change values.
    await sql.query(`UPDATE metrics SET "timestamp" = "timestamp" + INTERVAL '1 day 1 hour 1 minute' WHERE id % 11 = 0
                     AND NOT EXISTS (SELECT 1 FROM metrics AS m WHERE m.source_id = metrics.source_id
                                       AND m."timestamp" = metrics."timestamp" + INTERVAL '1 day 1 hour 1 minute')`);
    await sql.query('UPDATE metrics SET cpu_load = 0, concurrency = concurrency + 1 WHERE id % 13 = 0');
    await expectRollupsEqualRaw();

    // Deletes, down to emptying whole minutes and a whole day.
    await sql.query('DELETE FROM metrics WHERE id % 5 = 0');
    await sql.query(`DELETE FROM metrics WHERE "timestamp" >= $1 AND "timestamp" < $2`, [
      new Date(T0 + DAY),
      new Date(T0 + 2 * DAY),
    ]);
    await expectRollupsEqualRaw();
    const { rows } = await sql.query(`SELECT count(*)::int AS n FROM metric_rollups_day WHERE bucket = $1`, [
      new Date(T0 + DAY),
    ]);
    expect(rows[0].n).toBe(0);
  });

  it('adds a minute holding one value only to rows that bring the other, statement by statement', async () => {
    await sql.query('TRUNCATE metrics');
    const minute = (offset: number) => new Date(T0 + offset * 60_000);
    const insert = (at: Date, load: number | null, concurrency: number | null) =>
      sql.query(`INSERT INTO metrics ("timestamp", cpu_load, concurrency) VALUES ($1, $2, $3)`, [
        at,
        load,
        concurrency,
      ]);
    // Minute 0 holds loads only, minute 1 concurrency only, then each gets the other value; minute
    // 2 gets one value twice.
    await insert(minute(0), 1.5, null);
    await insert(minute(1), null, 4);
    await insert(minute(2), null, 7);
    await expectRollupsEqualRaw();
    await insert(new Date(minute(0).getTime() + 1000), null, 3);
    await insert(new Date(minute(1).getTime() + 1000), 2.25, null);
    await insert(new Date(minute(2).getTime() + 1000), null, 9);
    await expectRollupsEqualRaw();
    const { rows } = await sql.query(
      `SELECT cpu_load_count::int, cpu_load_sum, concurrency_count::int, concurrency_sum::int
         FROM metric_rollups_minute ORDER BY bucket`,
    );
    expect(rows).toEqual([
      { cpu_load_count: 1, cpu_load_sum: 1.5, concurrency_count: 1, concurrency_sum: 3 },
      { cpu_load_count: 1, cpu_load_sum: 2.25, concurrency_count: 1, concurrency_sum: 4 },
      { cpu_load_count: 0, cpu_load_sum: null, concurrency_count: 2, concurrency_sum: 16 },
    ]);
  });

  it('empties the rollups on TRUNCATE', async () => {
    await insertRandom(random(2), T0, DAY, 500);
    await sql.query('TRUNCATE metrics');
    const { rows } = await sql.query(
      `SELECT (SELECT count(*) FROM metric_rollups_minute) + (SELECT count(*) FROM metric_rollups_hour)
              + (SELECT count(*) FROM metric_rollups_day) AS n`,
    );
    expect(Number(rows[0].n)).toBe(0);
  });

  it('follows the ingest command: COPY batches, and re-runs that update stored samples', async () => {
    const next = random(3);
    const lines = Array.from({ length: 3000 }, (_, index) => {
      const timestamp = (T0 + index * 37_000 + Math.floor(next() * 1000)) / 1000;
      return `${timestamp},${(next() * 100).toFixed(3)},${Math.floor(next() * 40)}`;
    });
    const csv = `timestamp,cpu_load,concurrency\n${lines.join('\n')}\n`;
    const first = await runIngest(db.url, ['--format', 'csv', '--batch-size', '700', '-'], csv);
    expect(first.code, first.stderr).toBe(0);
    await expectRollupsEqualRaw();
    // Half the samples again with other values, half new: upsert batches (staging table, ON CONFLICT).
    const again = lines.map((line, index) => {
      const [timestamp] = line.split(',');
      return index % 2 === 0 ? `${timestamp},42.5,7` : `${Number(timestamp) + 0.5},1.25,3`;
    });
    const second = await runIngest(
      db.url,
      ['--format', 'csv', '--batch-size', '700', '--on-conflict', 'update', '-'],
      `timestamp,cpu_load,concurrency\n${again.join('\n')}\n`,
    );
    expect(second.code, second.stderr).toBe(0);
    const { rows } = await sql.query('SELECT count(*)::int AS n FROM metrics');
    expect(rows[0].n).toBe(4500);
    await expectRollupsEqualRaw();
  });

  it('stays equal to the raw rows with writers in parallel on the same minutes', async () => {
    const writers = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const client = new pg.Client({ connectionString: db.url });
        await client.connect();
        return client;
      }),
    );
    try {
      await Promise.all(
        writers.map(async (client, index) => {
          const next = random(10 + index);
          for (let round = 0; round < 5; round++) {
            await insertRandom(next, T0, 2 * 3_600_000, 300, client);
            if (index === 0) await client.query('DELETE FROM metrics WHERE id % 17 = 0');
            if (index === 1)
              await client.query('UPDATE metrics SET cpu_load = cpu_load / 2 WHERE id % 19 = 0');
          }
        }),
      );
    } finally {
      await Promise.all(writers.map((client) => client.end()));
    }
    await expectRollupsEqualRaw();
  });
});

describe('rollup parts', () => {
  /** Over the hour and day keys: rows that are parts, and keys that have been folded (a part 0). */
  async function partCounts() {
    const { rows } = await sql.query<{ parts: number; folded: number }>(
      `SELECT count(*) FILTER (WHERE part > 0)::int AS parts, count(*) FILTER (WHERE part = 0)::int AS folded
         FROM (SELECT part FROM metric_rollups_hour UNION ALL SELECT part FROM metric_rollups_day) AS rows`,
    );
    return rows[0] as { parts: number; folded: number };
  }

  /** Every merged row's sketch tails are its sketches' (metric_sketch_tail), parts have none. */
  async function expectSketchTails() {
    for (const table of ['metric_rollups_hour', 'metric_rollups_day']) {
      const { rows } = await sql.query<Record<string, number[] | null> & { part: string }>(
        `SELECT part, cpu_load_sketch_keys, cpu_load_sketch_counts, cpu_load_sketch_tail,
                concurrency_sketch_keys, concurrency_sketch_counts, concurrency_sketch_tail FROM ${table}`,
      );
      expect(rows.length).toBeGreaterThan(0);
      for (const row of rows) {
        for (const column of ['cpu_load', 'concurrency']) {
          const [keys, counts] = [row[`${column}_sketch_keys`], row[`${column}_sketch_counts`]];
          expect(row[`${column}_sketch_tail`]).toEqual(
            row.part === '0' && keys && counts ? sketchTail({ keys, counts }) : null,
          );
        }
      }
    }
  }

  it('answers exactly from keys in parts, folds keys as parts come, and folds every key on demand', async () => {
    const next = random(9);
    // 70 statements of a few samples each into the same hours and days of three sources: each
    // statement adds a part to each key it touches, as writers of one sample each do.
    for (let statement = 0; statement < 70; statement++) await insertRandom(next, T0, 3 * 3_600_000, 4);
    // Some keys were folded by the statements that wrote them, others hold parts still.
    const inParts = await partCounts();
    expect(inParts.parts).toBeGreaterThan(0);
    expect(inParts.folded).toBeGreaterThan(0);
    await expectSketchTails();
    const store = new MetricStore(db);
    const windows: [Date, Date][] = [
      [new Date(T0), new Date(T0 + DAY)],
      [new Date(T0 + 1_234_567), new Date(T0 + 3 * 3_600_000 - 7_654)],
      [new Date(T0 + 3_600_000), new Date(T0 + 2 * 3_600_000)],
    ];
    const answers = async () =>
      Promise.all(
        windows.map(async ([start, end]) => ({
          summary: (await store.summary({ start, end })).value,
          series: (await store.series({ start, end }, 3600)).value,
          // Of one source and by source, a whole hour is no longer one row to take as it is.
          ofSource: (await store.series({ start, end }, 3600, { all: false, ids: [2] })).value,
          bySource: (
            await store.sourceSeries({ start, end }, 3600, ALL_SOURCES, {
              statistic: 'samples',
              direction: 'desc',
              first: 3,
            })
          ).value,
        })),
      );
    const before = await answers();
    for (const [index, [start, end]] of windows.entries()) {
      expect(before[index]?.series).toEqual(await rawSeries(start, end, 3600));
      expect(before[index]?.ofSource).toEqual(await rawSeries(start, end, 3600, 2));
      for (const { sourceId, value } of before[index]?.bySource ?? [])
        expect(value).toEqual(await rawSeries(start, end, 3600, sourceId));
      expect(before[index]?.summary).toMatchObject(await rawSummary(start, end));
    }

    // The check reads a key's parts merged, as the readers do: equal to the raw rows, and a part
    // that is wrong is a difference of its key.
    await expectNoDifferences();
    const { rows: wrong } = await sql.query<{ source_id: number; bucket: Date; part: string }>(
      `UPDATE metric_rollups_hour SET row_count = row_count + 1
        WHERE (source_id, bucket, part) = (SELECT source_id, bucket, part FROM metric_rollups_hour WHERE part > 0 LIMIT 1)
        RETURNING source_id, bucket, part`,
    );
    const [part] = wrong;
    const differences = [];
    for (const day of await rollups.rawDays({})) differences.push(...(await rollups.checkDay(day)));
    expect(differences).toEqual([
      { level: 'hour', sourceId: part?.source_id, bucket: part?.bucket, columns: ['row_count'] },
    ]);
    await sql.query(
      'UPDATE metric_rollups_hour SET row_count = row_count - 1 WHERE source_id = $1 AND bucket = $2 AND part = $3',
      [part?.source_id, part?.bucket, part?.part],
    );
    await expectNoDifferences();

    await rollups.fold();
    expect((await partCounts()).parts).toBe(0);
    const { rows: keys } = await sql.query(
      `SELECT 1 FROM metric_rollups_hour GROUP BY source_id, bucket HAVING count(*) > 1
       UNION ALL SELECT 1 FROM metric_rollups_day GROUP BY source_id, bucket HAVING count(*) > 1`,
    );
    expect(keys).toEqual([]);
    await expectSketchTails();
    expect(await answers()).toEqual(before);
    await expectRollupsEqualRaw();
  });
});

describe('the rollups migration', () => {
  it('rolls up the rows a populated table already holds', async () => {
    const empty = await createEmptyDatabase();
    const client = new pg.Client({ connectionString: empty.url });
    await client.connect();
    const connection = connectTest(empty.url);
    try {
      const migrations = (await committedMigrations()).map(({ name }) => name);
      const rollupsAt = migrations.indexOf('20261202070000_metrics_rollups');
      const apply = async (name: string) =>
        client.query(await readFile(join(projectRoot, 'prisma/migrations', name, 'migration.sql'), 'utf8'));
      for (const name of migrations.slice(0, rollupsAt)) await apply(name);
      await insertRandom(random(11), T0, 2 * DAY, 3000, client, false);
      for (const name of migrations.slice(rollupsAt)) await apply(name);

      const store = new RollupStore(connection);
      const differences = [];
      for (const day of await store.rawDays({})) differences.push(...(await store.checkDay(day)));
      expect(differences).toEqual([]);
      const { rows } = await client.query(
        'SELECT (SELECT count(*) FROM metrics)::int AS raw, (SELECT sum(row_count) FROM metric_rollups_day)::int AS day',
      );
      expect(rows[0].day).toBe(rows[0].raw);
      expect(rows[0].raw).toBeGreaterThan(2900);
    } finally {
      await connection.close();
      await client.end();
      await empty.drop();
    }
  });
});

describe('reads from rollups', () => {
  it('gives series with the raw counts, extremes and means on random windows and buckets', async () => {
    const next = random(4);
    await insertRandom(next, T0, 4 * DAY, 6000);
    const store = new MetricStore(db);
    const buckets = [45, 60, 120, 300, 3600, 7200, 10_800, 86_400, 172_800];
    for (let attempt = 0; attempt < 40; attempt++) {
      const a = randomInstant(next, T0 - DAY, 6 * DAY);
      const b = randomInstant(next, T0 - DAY, 6 * DAY);
      if (a.getTime() === b.getTime()) continue;
      const [start, end] = a < b ? [a, b] : [b, a];
      const bucket = buckets[Math.floor(next() * buckets.length)] as number;
      const context = `${start.toISOString()} to ${end.toISOString()} by ${bucket} s`;
      expect((await store.series({ start, end }, bucket)).value, context).toEqual(
        await rawSeries(start, end, bucket),
      );
    }
  });

  it('gives summaries with the raw count, first, last, extremes, means and exact percentiles, without sorting', async () => {
    const next = random(5);
    await insertRandom(next, T0, 4 * DAY, 6000);
    const traced = new TracedStatements('rollups-test');
    const store = new MetricStore(db, traced.telemetryFor(db));
    const windows: [Date | undefined, Date | undefined][] = [[undefined, undefined]];
    for (let attempt = 0; attempt < 30; attempt++) {
      const a = randomInstant(next, T0 - DAY, 6 * DAY);
      const b = randomInstant(next, T0 - DAY, 6 * DAY);
      windows.push(a < b ? [a, b] : [b, a]);
    }
    windows.push([undefined, new Date(T0 + 2 * DAY + 90_500)], [new Date(T0 + DAY - 1), undefined]);
    for (const [start, end] of windows) {
      const { value } = await store.summary({ start, end });
      expect(value, `${start?.toISOString()} to ${end?.toISOString()}`).toEqual({
        ...(await rawSummary(start, end)),
        percentilesExact: true,
        percentileRelativeError: 0,
      });
    }
    // Every window's percentiles were read off the values the sketch pointed at: no statement
    // fell back to sorting the window with percentile_cont.
    const statements = traced.take().map(({ text }) => text);
    await traced.shutdown();
    expect(statements.some((text) => text.includes('array_agg(cpu_load::float8) FILTER'))).toBe(true);
    expect(statements.filter((text) => text.includes('percentile_cont'))).toEqual([]);
  });

  it('takes percentiles from the sketch above EXACT_PERCENTILE_MAX_ROWS, within its bound, and says so', async () => {
    const next = random(6);
    await insertRandom(next, T0, 2 * DAY, 5000);
    const app = createTestApp(db, { EXACT_PERCENTILE_MAX_ROWS: '1000', AGGREGATE_CACHE_BYTES: '0' });
    const query = `query ($start: DateTime, $end: DateTime) { metricsSummary(start: $start, end: $end) {
      count percentilesExact percentileRelativeError cpuLoad { p50 p95 p99 } concurrency { p95 } } }`;
    type Answer = {
      metricsSummary: {
        count: number;
        percentilesExact: boolean;
        percentileRelativeError: number;
        cpuLoad: { p50: number; p95: number; p99: number };
        concurrency: { p95: number };
      };
    };
    // Whole days; 22 hours of a day (merged as the day's sketch less two hours) and 2 of the next,
    // from no whole minute; 13 hours within a day.
    const windows = [
      [new Date(T0), new Date(T0 + 2 * DAY)],
      [new Date(T0 + 3_723_456), new Date(T0 + DAY + 7_654_321)],
      [new Date(T0 + DAY + 3_600_000), new Date(T0 + DAY + 14 * 3_600_000)],
    ] as const;
    for (const [start, end] of windows) {
      const answer = (await graphql<Answer>(app, query, { start, end })).data?.metricsSummary;
      const exact = await rawSummary(start, end);
      // The sketches merged from rollups and raw edges are the sketch of the window's values, exactly.
      const { rows } = await sql.query<{ cpu: number[]; concurrency: number[] }>(
        `SELECT array_agg(cpu_load) FILTER (WHERE cpu_load IS NOT NULL) AS cpu,
                array_agg(concurrency) FILTER (WHERE concurrency IS NOT NULL) AS concurrency
           FROM metrics WHERE "timestamp" >= $1 AND "timestamp" < $2`,
        [start, end],
      );
      const cpuSketch = sketchOf(rows[0]?.cpu ?? []);
      expect([
        answer?.cpuLoad.p50,
        answer?.cpuLoad.p95,
        answer?.cpuLoad.p99,
        answer?.concurrency.p95,
      ]).toEqual([
        sketchQuantile(cpuSketch, 0.5),
        sketchQuantile(cpuSketch, 0.95),
        sketchQuantile(cpuSketch, 0.99),
        sketchQuantile(sketchOf(rows[0]?.concurrency ?? []), 0.95),
      ]);
      expect(answer?.count).toBe(exact.count);
      expect(exact.count).toBeGreaterThan(1000);
      expect(answer?.percentilesExact).toBe(false);
      expect(answer?.percentileRelativeError).toBe(SKETCH_RELATIVE_ACCURACY);
      const pairs = [
        [answer?.cpuLoad.p50, exact.cpuLoad.p50],
        [answer?.cpuLoad.p95, exact.cpuLoad.p95],
        [answer?.cpuLoad.p99, exact.cpuLoad.p99],
        [answer?.concurrency.p95, exact.concurrency.p95],
      ] as const;
      for (const [estimate, value] of pairs) {
        // The exact percentiles are float4 here: their own rounding is 2^-24 relative.
        expect(Math.abs((estimate as number) - (value as number))).toBeLessThanOrEqual(
          (SKETCH_RELATIVE_ACCURACY + 1e-7) * (value as number),
        );
      }
    }
    const small = (await graphql<Answer>(app, query, { start: new Date(T0), end: new Date(T0 + 3_600_000) }))
      .data?.metricsSummary;
    expect(small?.count).toBeLessThanOrEqual(1000);
    expect(small?.percentilesExact).toBe(true);
    expect(small?.percentileRelativeError).toBe(0);
  });

  it('answers from rollups for time whose raw rows are gone, as after a dropped partition', async () => {
    const next = random(7);
    await insertRandom(next, T0, 3 * DAY, 4000);
    const store = new MetricStore(db, undefined, undefined, { exactPercentileMaxRows: 1_000_000 });
    const dayOne = { start: new Date(T0), end: new Date(T0 + DAY) };
    const before = await store.summary(dayOne);
    const hourly = await store.series(dayOne, 3600);
    const whole = await store.summary({});
    // Dropping a partition fires no DELETE trigger: the rollups keep the day.
    await sql.query('ALTER TABLE metrics DISABLE TRIGGER metric_rollups_delete');
    await sql.query(`DELETE FROM metrics WHERE "timestamp" < $1`, [dayOne.end]);
    await sql.query('ALTER TABLE metrics ENABLE ALWAYS TRIGGER metric_rollups_delete');

    const after = await store.summary(dayOne);
    const { cpuLoad, concurrency, ...totals } = before.value;
    expect(after.value).toMatchObject({
      ...totals,
      cpuLoad: { min: cpuLoad.min, max: cpuLoad.max, avg: cpuLoad.avg },
      concurrency: { min: concurrency.min, max: concurrency.max, avg: concurrency.avg },
      // The raw rows cannot give them now: the sketch does.
      percentilesExact: false,
      percentileRelativeError: SKETCH_RELATIVE_ACCURACY,
    });
    expect((await store.series(dayOne, 3600)).value).toEqual(hourly.value);
    expect((await store.summary({})).value.count).toBe(whole.value.count);
    // An unaligned edge in dropped time counts what the raw rows still hold there: nothing.
    const edged = await store.summary({ start: new Date(T0 + 30_500), end: new Date(T0 + DAY) });
    const { rows } = await sql.query(
      `SELECT coalesce(sum(row_count), 0)::int AS n FROM metric_rollups_minute WHERE bucket >= $1 AND bucket < $2`,
      [new Date(T0 + 60_000), new Date(T0 + DAY)],
    );
    expect(edged.value.count).toBe(rows[0].n);
  });
});

describe('rollup retention', () => {
  it('drops minutes and hours past their retention, never those of days raw rows are kept for', async () => {
    const next = random(8);
    await insertRandom(next, T0, 3 * DAY, 3000);
    const levelCounts = async () =>
      (
        await sql.query<{ minute: number; hour: number; day: number }>(
          `SELECT (SELECT count(*) FROM metric_rollups_minute WHERE bucket < $1)::int AS minute,
                  (SELECT count(*) FROM metric_rollups_hour WHERE bucket < $1)::int AS hour,
                  (SELECT count(*) FROM metric_rollups_day WHERE bucket < $1)::int AS day`,
          [new Date(T0 + DAY)],
        )
      ).rows[0];
    const revision = async () => (await sql.query('SELECT revision FROM metrics_revision')).rows[0].revision;
    const future = new Date(T0 + 10 * DAY);
    // Counted folded, as the job folds before it drops: how many parts a key has depends on the part
    // numbers earlier tests drew.
    await rollups.fold();
    const kept = await levelCounts();
    const revisionBefore = await revision();
    // Every raw row is still stored: nothing goes.
    expect(await rollups.dropOld({ minutesBefore: future, hoursBefore: future })).toEqual({
      minute: 0,
      hour: 0,
    });
    expect(await levelCounts()).toEqual(kept);
    expect(await revision()).toBe(revisionBefore);

    // The first day's raw rows go, as RETENTION drops a partition.
    await sql.query('ALTER TABLE metrics DISABLE TRIGGER metric_rollups_delete');
    await sql.query(`DELETE FROM metrics WHERE "timestamp" < $1`, [new Date(T0 + DAY)]);
    await sql.query('ALTER TABLE metrics ENABLE ALWAYS TRIGGER metric_rollups_delete');
    const revisionAfterDrop = await revision();
    // The scheduled job, as main() starts it: its first run is at once, with MINUTE_ROLLUP_RETENTION=1d.
    const runs: DroppedRollups[] = [];
    const job = new RollupRetention(
      {
        fold: () => rollups.fold(),
        dropOld: async (cutoffs) => {
          const dropped = await rollups.dropOld(cutoffs);
          runs.push(dropped);
          return dropped;
        },
      },
      { minuteRetentionSeconds: 86_400, hourRetentionSeconds: undefined, intervalSeconds: 3600 },
      createLogger(parseConfig({ LOG_LEVEL: 'silent' }), { service: 'test' }),
    );
    job.start();
    await job.stop();
    expect(runs).toEqual([{ minute: kept?.minute, hour: 0 }]);
    expect(await levelCounts()).toEqual({ minute: 0, hour: kept?.hour, day: kept?.day });
    expect(await revision()).not.toBe(revisionAfterDrop);
    const hours = await rollups.dropOld({ minutesBefore: future, hoursBefore: future });
    expect(hours).toEqual({ minute: 0, hour: kept?.hour });
    // Days stay, and the days after the first keep every level.
    expect(await levelCounts()).toEqual({ minute: 0, hour: 0, day: kept?.day });
    await expectNoDifferences();
  });
});

describe('npm run rollups', () => {
  function collector() {
    const chunks: Buffer[] = [];
    return Object.assign(
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          chunks.push(chunk);
          done();
        },
      }),
      { text: () => Buffer.concat(chunks).toString() },
    );
  }
  async function rollupsCommand(...args: string[]) {
    const stdout = collector();
    const stderr = collector();
    const code = await runRollups(args, { env: scriptEnv(db.url), stdout, stderr });
    return { code, stdout: stdout.text(), stderr: stderr.text() };
  }

  it('check reports a corrupted rollup and rebuild recomputes it', async () => {
    await insertRandom(random(9), T0, 2 * DAY, 2000);
    expect((await rollupsCommand('check')).code).toBe(EXIT.ok);
    const { rows } = await sql.query(
      `UPDATE metric_rollups_minute SET row_count = row_count + 1, cpu_load_max = cpu_load_max + 1
        WHERE bucket = (SELECT min(bucket) FROM metric_rollups_minute WHERE bucket >= $1) RETURNING bucket`,
      [new Date(T0 + DAY)],
    );
    await sql.query('DELETE FROM metric_rollups_hour WHERE bucket = $1', [new Date(T0 + 3_600_000)]);
    const corrupted = rows[0].bucket as Date;

    const check = await rollupsCommand('check');
    expect(check.code).toBe(EXIT.differences);
    expect(check.stdout).toContain(`minute ${corrupted.toISOString()}: row_count, cpu_load_max`);
    expect(check.stdout).toContain(`hour ${new Date(T0 + 3_600_000).toISOString()}: missing`);
    expect(check.stderr).toMatch(/2 bucket\(s\) differ/);
    // A window limited to the other day does not see the first day's hour.
    const secondDay = await rollupsCommand('check', '--from', new Date(T0 + DAY).toISOString());
    expect(secondDay.stdout).not.toContain('hour');

    const rebuild = await rollupsCommand(
      'rebuild',
      '--from',
      String(T0 / 1000),
      '--to',
      new Date(T0 + 2 * DAY).toISOString(),
    );
    expect(rebuild.code, rebuild.stderr).toBe(EXIT.ok);
    expect(rebuild.stderr).toContain('rebuilt 2 day(s)');
    expect((await rollupsCommand('check')).code).toBe(EXIT.ok);
    await expectRollupsEqualRaw();
  });

  it('rebuilds rollups of rows loaded with the triggers disabled', async () => {
    await sql.query('ALTER TABLE metrics DISABLE TRIGGER metric_rollups_insert');
    await insertRandom(random(10), T0, DAY, 1000);
    await sql.query('ALTER TABLE metrics ENABLE ALWAYS TRIGGER metric_rollups_insert');
    expect((await rollupsCommand('check')).code).toBe(EXIT.differences);
    expect((await rollupsCommand('rebuild')).code).toBe(EXIT.ok);
    await expectRollupsEqualRaw();
  });

  it('names what is wrong on its command line', async () => {
    const cases: [string[], RegExp][] = [
      [[], /a command is required: check or rebuild/],
      [['verify'], /unknown command: verify/],
      [['check', '--from', 'yesterday'], /--from: /],
      [
        ['check', '--from', '2026-01-02T00:00:00Z', '--to', '2026-01-01T00:00:00Z'],
        /--from must be before --to/,
      ],
      [['check', '--since', '1'], /Unknown option '--since'/],
    ];
    for (const [args, message] of cases) {
      const result = await rollupsCommand(...args);
      expect(result.code, args.join(' ')).toBe(EXIT.failed);
      expect(result.stderr).toMatch(message);
    }
    expect((await rollupsCommand('--help')).stdout).toContain('Usage: npm run rollups');
  });
});
