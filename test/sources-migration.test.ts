// The sources migration on a populated, partitioned database with rollups: every row keeps its id
// and values in source 1 (none lost, doubled or renumbered), the rollups carry over with their
// counts, a cursor issued before the migration still names its row, and the API answers after it
// what the same data answered before (the raw SQL every old answer equalled, see rollups.test.ts).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../src/http/app.js';
import { projectRoot } from '../src/paths.js';
import { createTestApp, graphql } from './support/app.js';
import { connectTest, createEmptyDatabase } from './support/database.js';
import { committedMigrations } from './support/prisma-cli.js';
import { sketchTail } from './support/sketch-tail.js';

const SOURCES_MIGRATION = '20261207000000_sources';
const T0 = Date.UTC(2026, 10, 1);
const DAY = 86_400_000;
const ROLLUP_TABLES = ['metric_rollups_minute', 'metric_rollups_hour', 'metric_rollups_day'];

let empty: Awaited<ReturnType<typeof createEmptyDatabase>>;
let client: pg.Client;
let connection: ReturnType<typeof connectTest>;
let app: App;

interface Before {
  rows: { id: string; timestamp: Date; cpu_load: number; concurrency: number }[];
  rollups: Record<string, Record<string, unknown>[]>;
  summary: Record<string, unknown>;
  hourly: Record<string, unknown>[];
}
let before: Before;

/** The API's summary of [start, end) as raw SQL gives it (what the API answered before sources). */
async function rawSummary(start: Date, end: Date) {
  const { rows } = await client.query(
    `SELECT count(*)::int AS count, min("timestamp") AS first, max("timestamp") AS last,
            min(cpu_load) AS cpu_min, max(cpu_load) AS cpu_max, avg(cpu_load)::real AS cpu_avg,
            (percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY cpu_load))::real[] AS cpu_percentiles,
            min(concurrency) AS concurrency_min, max(concurrency) AS concurrency_max,
            avg(concurrency)::float8 AS concurrency_avg,
            percentile_cont(0.95) WITHIN GROUP (ORDER BY concurrency) AS concurrency_p95
       FROM metrics WHERE "timestamp" >= $1 AND "timestamp" < $2`,
    [start, end],
  );
  return rows[0];
}

async function rawHourly(start: Date, end: Date) {
  const { rows } = await client.query(
    `SELECT date_bin(INTERVAL '1 hour', "timestamp", TIMESTAMPTZ 'epoch') AS start, count(*)::int AS count,
            min(cpu_load) AS cpu_min, max(cpu_load) AS cpu_max, avg(cpu_load)::real AS cpu_avg,
            min(concurrency) AS concurrency_min, max(concurrency) AS concurrency_max,
            avg(concurrency)::float8 AS concurrency_avg
       FROM metrics WHERE "timestamp" >= $1 AND "timestamp" < $2 GROUP BY 1 ORDER BY 1`,
    [start, end],
  );
  return rows;
}

const windowStart = new Date(T0 + 5 * 3_600_000 + 17_000);
const windowEnd = new Date(T0 + 2 * DAY + 7 * 3_600_000);

beforeAll(async () => {
  empty = await createEmptyDatabase();
  client = new pg.Client({ connectionString: empty.url });
  await client.connect();
  const migrations = (await committedMigrations()).map(({ name }) => name);
  const at = migrations.indexOf(SOURCES_MIGRATION);
  expect(at).toBeGreaterThan(0);
  const apply = async (name: string) =>
    client.query(await readFile(join(projectRoot, 'prisma/migrations', name, 'migration.sql'), 'utf8'));
  for (const name of migrations.slice(0, at)) await apply(name);

  // Three day partitions and the default partition, every 10 s, values from a seeded sequence;
  // the rollup triggers of the time roll them up.
  for (let day = 0; day < 3; day++) {
    const from = new Date(T0 + day * DAY);
    const to = new Date(T0 + (day + 1) * DAY);
    const name = `metrics_p${from.toISOString().slice(0, 10).replaceAll('-', '_')}`;
    await client.query(
      `CREATE TABLE ${name} PARTITION OF metrics FOR VALUES FROM ('${from.toISOString()}') TO ('${to.toISOString()}')`,
    );
  }
  await client.query(
    `INSERT INTO metrics ("timestamp", cpu_load, concurrency)
     SELECT to_timestamp(${T0 / 1000} + i * 10), ((i::bigint * 7919) % 1000) / 250.0, (i::bigint * 104729) % 97
       FROM generate_series(0, 3 * 8640 + 100) AS i`,
  );
  const rows = (
    await client.query(
      'SELECT id::text, "timestamp", cpu_load, concurrency FROM metrics ORDER BY "timestamp"',
    )
  ).rows;
  const rollups: Before['rollups'] = {};
  for (const table of ROLLUP_TABLES) {
    rollups[table] = (await client.query(`SELECT * FROM ${table} ORDER BY bucket`)).rows;
  }
  before = {
    rows,
    rollups,
    summary: await rawSummary(windowStart, windowEnd),
    hourly: await rawHourly(windowStart, windowEnd),
  };
  for (const name of migrations.slice(at)) await apply(name);
  connection = connectTest(empty.url);
  app = createTestApp({ ...connection, url: empty.url });
}, 120_000);

afterAll(async () => {
  await app?.dispose();
  await connection?.close();
  await client?.end();
  await empty?.drop();
});

describe('the sources migration on a populated database', () => {
  it('moves every row, with its id and values, to source 1, default', async () => {
    const { rows } = await client.query(
      'SELECT id::text, source_id, "timestamp", cpu_load, concurrency FROM metrics ORDER BY "timestamp"',
    );
    expect(rows.length).toBe(before.rows.length);
    expect(rows.map(({ source_id, ...row }) => row)).toEqual(before.rows);
    expect(new Set(rows.map(({ source_id }) => source_id))).toEqual(new Set([1]));
    const { rows: sources } = await client.query(
      'SELECT id, name, labels, first_seen, last_seen FROM sources',
    );
    expect(sources).toEqual([
      {
        id: 1,
        name: 'default',
        labels: {},
        first_seen: before.rows[0]?.timestamp,
        last_seen: before.rows.at(-1)?.timestamp,
      },
    ]);
    // The next source made is 2, and a writer naming no source writes to 1, as before.
    await client.query("INSERT INTO sources (name) VALUES ('web-1')");
    expect((await client.query("SELECT id FROM sources WHERE name = 'web-1'")).rows).toEqual([{ id: 2 }]);
  });

  it('keeps every rollup row, now of source 1, its counts those of its rows', async () => {
    for (const table of ROLLUP_TABLES) {
      const { rows } = await client.query(`SELECT * FROM ${table} ORDER BY bucket`);
      expect(rows, table).toEqual(
        (before.rollups[table] ?? []).map((row) => ({
          ...row,
          source_id: 1,
          cpu_load_count: row.row_count,
          concurrency_count: row.row_count,
          // An hour or day is its merged row, part 0 (the later migration rollup_parts), with
          // its sketch tails (the migration rollup_sketch_tails).
          ...(table === 'metric_rollups_minute'
            ? {}
            : {
                part: '0',
                cpu_load_sketch_tail: sketchTail({
                  keys: row.cpu_load_sketch_keys as number[],
                  counts: row.cpu_load_sketch_counts as number[],
                }),
                concurrency_sketch_tail: sketchTail({
                  keys: row.concurrency_sketch_keys as number[],
                  counts: row.concurrency_sketch_counts as number[],
                }),
              }),
        })),
      );
    }
  });

  it('answers a cursor issued before the migration with the rows after it', async () => {
    const row = before.rows[1000];
    if (!row) throw new Error('too few rows');
    // A cursor as the API issued them before sources: the timestamp alone.
    const cursor = Buffer.from(`metric:${row.timestamp.getTime()}`).toString('base64url');
    const page = await graphql<{
      metrics: { edges: { node: { timestamp: string; cpuLoad: number; concurrency: number } }[] };
    }>(
      app,
      'query ($after: String) { metrics(first: 3, after: $after) { edges { node { timestamp cpuLoad concurrency } } } }',
      { after: cursor },
    );
    expect(page.errors).toBeUndefined();
    expect(page.data?.metrics.edges.map(({ node }) => node)).toEqual(
      before.rows.slice(1001, 1004).map((next) => ({
        timestamp: next.timestamp.toISOString(),
        cpuLoad: next.cpu_load,
        concurrency: next.concurrency,
      })),
    );
  });

  it('answers a summary and a series as the same data did before', async () => {
    const response = await graphql<{
      metricsSummary: Record<string, unknown>;
      metricSeries: Record<string, unknown>[];
    }>(
      app,
      `query ($start: DateTime!, $end: DateTime!) {
         metricsSummary(start: $start, end: $end) {
           count firstTimestamp lastTimestamp
           cpuLoad { min max avg p50 p95 p99 } concurrency { min max avg p95 }
         }
         metricSeries(start: $start, end: $end, bucket: "1h") {
           start count cpuLoad { min max avg } concurrency { min max avg }
         }
       }`,
      { start: windowStart.toISOString(), end: windowEnd.toISOString() },
    );
    expect(response.errors).toBeUndefined();
    const { summary, hourly } = before;
    const [p50, p95, p99] = summary.cpu_percentiles as number[];
    expect(response.data?.metricsSummary).toEqual({
      count: summary.count,
      firstTimestamp: (summary.first as Date).toISOString(),
      lastTimestamp: (summary.last as Date).toISOString(),
      cpuLoad: { min: summary.cpu_min, max: summary.cpu_max, avg: summary.cpu_avg, p50, p95, p99 },
      concurrency: {
        min: summary.concurrency_min,
        max: summary.concurrency_max,
        avg: summary.concurrency_avg,
        p95: summary.concurrency_p95,
      },
    });
    expect(response.data?.metricSeries).toEqual(
      hourly.map((bucket) => ({
        start: (bucket.start as Date).toISOString(),
        count: bucket.count,
        cpuLoad: { min: bucket.cpu_min, max: bucket.cpu_max, avg: bucket.cpu_avg },
        concurrency: {
          min: bucket.concurrency_min,
          max: bucket.concurrency_max,
          avg: bucket.concurrency_avg,
        },
      })),
    );
  });
});
