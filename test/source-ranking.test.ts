// Ranking sources by a percentile on a fleet whose maxima are spikes far above every percentile:
// the order is the sketches', and the sketch tails of the rollups (the migration
// rollup_sketch_tails) bound the sources that cannot rank, so their sketches are never merged.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sketchOf, sketchQuantile } from '../src/domain/quantile-sketch.js';
import type { MetricSummary, SourceStatistic } from '../src/domain/summary.js';
import { MetricStore } from '../src/store/metric-store.js';
import { RollupStore } from '../src/store/rollup-store.js';
import { ALL_SOURCES } from '../src/store/source-filter.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { TracedStatements } from './support/traced-statements.js';

const T0 = Date.UTC(2026, 2, 1);
const HOUR = 3_600_000;
const SOURCES = 40;
// Unaligned at both ends, with samples past each end in the edge hours.
const WINDOW = { start: new Date(T0 + 1_234_000), end: new Date(T0 + 3 * HOUR - 7_654) };

let db: TestDatabase;
let sql: pg.Client;
let traced: TracedStatements;
let store: MetricStore;

beforeAll(async () => {
  db = await createTestDatabase();
  sql = new pg.Client({ connectionString: db.url });
  await sql.connect();
  await sql.query(
    `INSERT INTO sources (id, name) SELECT 1 + s, 'host-' || lpad(s::text, 2, '0') FROM generate_series(1, ${SOURCES}) AS s`,
  );
  // Source s at s/8 plus up to 6/64, a spike of 100 once an hour, concurrency likewise; written a
  // quarter hour a statement, so keys are in parts, some folded.
  for (let quarter = -2; quarter < 14; quarter++) {
    await sql.query(
      `INSERT INTO metrics (source_id, "timestamp", cpu_load, concurrency)
       SELECT 1 + s, to_timestamp(${T0 / 1000} + g * 10),
              CASE WHEN g % 360 = 17 THEN 100 ELSE s / 8.0 + abs(g % 7) / 64.0 END,
              CASE WHEN g % 360 = 17 THEN 1000 ELSE s + abs(g % 5) END
         FROM generate_series(1, ${SOURCES}) AS s, generate_series(${quarter * 90}, ${quarter * 90 + 89}) AS g`,
    );
  }
  // In the window without a CPU load; and with samples in an edge hour, outside the window only.
  await sql.query(`INSERT INTO sources (id, name) VALUES (50, 'no-cpu'), (51, 'outside')`);
  await sql.query(
    `INSERT INTO metrics (source_id, "timestamp", cpu_load, concurrency) VALUES
       (50, to_timestamp(${(T0 + HOUR) / 1000}), NULL, 3), (51, to_timestamp(${(T0 + 1_000_000) / 1000}), 9, 9)`,
  );
  traced = new TracedStatements('source-ranking-test');
  store = new MetricStore(db, traced.telemetryFor(db));
});
afterAll(async () => {
  await traced?.shutdown();
  await sql?.end();
  await db?.drop();
});

/**
 * Each source's percentile of the window's values by the sketch of them, highest first, ties by
 * id; then the sources with samples in the window but none of the value, by id.
 */
async function expectedRanking(column: string, fraction: number) {
  const { rows } = await sql.query<{ source_id: number; values: number[] }>(
    `SELECT source_id, coalesce(array_agg(${column}::float8) FILTER (WHERE ${column} IS NOT NULL), '{}') AS values
       FROM metrics WHERE "timestamp" >= $1 AND "timestamp" < $2 GROUP BY source_id`,
    [WINDOW.start, WINDOW.end],
  );
  return rows
    .map(({ source_id, values }) => ({ id: source_id, value: sketchQuantile(sketchOf(values), fraction) }))
    .sort((a, b) => (a.value === b.value ? a.id - b.id : (b.value ?? -1) - (a.value ?? -1)));
}

/** Each percentile statistic: its column, its fraction, and where a summary gives it. */
const PERCENTILES: [SourceStatistic, string, number, (summary: MetricSummary) => number | null][] = [
  ['cpuLoadP95', 'cpu_load', 0.95, (summary) => summary.cpuLoad.p95],
  ['cpuLoadP50', 'cpu_load', 0.5, (summary) => summary.cpuLoad.p50],
  ['cpuLoadP99', 'cpu_load', 0.99, (summary) => summary.cpuLoad.p99],
  ['concurrencyP95', 'concurrency', 0.95, (summary) => summary.concurrency.p95],
];

/** The first `first` sources by `statistic`, descending, as the store ranks them, and the sketch merges it ran. */
async function ranked(
  statistic: SourceStatistic,
  first: number,
  read: (summary: MetricSummary) => number | null,
) {
  traced.take();
  const { value } = await store.sourceSummaries(WINDOW, ALL_SOURCES, { statistic, direction: 'desc', first });
  const merges = traced.take().filter(({ text }) => text.includes('array_agg(key ORDER BY key) AS keys'));
  return {
    ranking: value.map(({ sourceId, value }) => ({ id: sourceId, value: read(value) })),
    merges: merges.length,
  };
}

describe('ranking sources by a percentile', () => {
  it.each(PERCENTILES)(
    'by %s is the order of the sketches, keys in parts or not',
    async (statistic, column, fraction, read) => {
      const expected = await expectedRanking(column, fraction);
      expect((await ranked(statistic, 3, read)).ranking).toEqual(expected.slice(0, 3));
      expect((await ranked(statistic, 100, read)).ranking).toEqual(expected);
    },
  );

  it.each(PERCENTILES)(
    'by %s merges the sketches of the sources that can rank only, once keys are folded',
    async (statistic, column, fraction, read) => {
      await new RollupStore(db).fold();
      const expected = await expectedRanking(column, fraction);
      const { ranking, merges } = await ranked(statistic, 3, read);
      expect(ranking).toEqual(expected.slice(0, 3));
      // Every maximum is the same spike: bounded by it, every source would be merged, in two statements.
      expect(merges).toBe(1);
      expect((await ranked(statistic, 100, read)).ranking).toEqual(expected);
    },
  );
});
