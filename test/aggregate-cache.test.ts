import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, graphql } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

const T0 = Date.UTC(2026, 0, 1);
const iso = (ms: number) => new Date(ms).toISOString();

let db: TestDatabase;
let sql: pg.Client;
let nextSecond = 0;

beforeAll(async () => {
  db = await createTestDatabase();
  sql = new pg.Client({ connectionString: db.url });
  await sql.connect();
  await insertSamples(600);
});
afterAll(async () => {
  await sql.end();
  await db.drop();
});

/** Appends samples one second apart, as any client of the database could (not through the app). */
async function insertSamples(count: number) {
  await sql.query(
    `INSERT INTO metrics ("timestamp", cpu_load, concurrency)
     SELECT to_timestamp($1::float8 / 1000 + g), g % 10, g % 7 FROM generate_series($2::int, $3::int) AS g`,
    [T0, nextSecond, nextSecond + count - 1],
  );
  nextSecond += count;
}

/** Runs writes that the revision does not see, so a remembered answer shows up as an outdated one. */
async function behindTheRevision(writes: () => Promise<unknown>) {
  await sql.query('ALTER TABLE metrics DISABLE TRIGGER metrics_new_revision');
  try {
    await writes();
  } finally {
    await sql.query('ALTER TABLE metrics ENABLE ALWAYS TRIGGER metrics_new_revision');
  }
}

const SUMMARY = `query ($start: DateTime, $end: DateTime) { metricsSummary(start: $start, end: $end) { count lastTimestamp } }`;
const SERIES = `query ($start: DateTime!, $end: DateTime!, $bucket: Duration!) {
  metricSeries(start: $start, end: $end, bucket: $bucket) { start count }
}`;
type Summary = { metricsSummary: { count: number; lastTimestamp: string } };
type Series = { metricSeries: { start: string; count: number }[] };

describe('remembered aggregates', () => {
  it('reuses a summary and a series until the data changes, then computes them again', async () => {
    const app = createTestApp(db);
    const window = { start: iso(T0), end: iso(T0 + 86_400_000) };
    const series = { ...window, bucket: '1h' };
    const summaryCount = async () =>
      (await graphql<Summary>(app, SUMMARY, window)).data?.metricsSummary.count;
    const seriesCount = async () =>
      (await graphql<Series>(app, SERIES, series)).data?.metricSeries.reduce(
        (sum, bucket) => sum + bucket.count,
        0,
      );

    const before = nextSecond;
    expect(await summaryCount()).toBe(before);
    expect(await seriesCount()).toBe(before);

    await behindTheRevision(() => insertSamples(5));
    expect(await summaryCount()).toBe(before);
    expect(await seriesCount()).toBe(before);
    // Another window was never remembered, so it sees the rows.
    expect((await graphql<Summary>(app, SUMMARY, {})).data?.metricsSummary.count).toBe(before + 5);

    // A write the revision sees (any statement on metrics, from any client) makes both current again.
    await insertSamples(1);
    expect(await summaryCount()).toBe(before + 6);
    expect(await seriesCount()).toBe(before + 6);
  });

  it('remembers an empty series too', async () => {
    const app = createTestApp(db);
    const dayStart = T0 + 10 * 86_400_000;
    const future = { start: iso(dayStart), end: iso(dayStart + 86_400_000), bucket: '1h' };
    const buckets = async () => (await graphql<Series>(app, SERIES, future)).data?.metricSeries.length;
    const insertInFuture = () =>
      sql.query(`INSERT INTO metrics ("timestamp", cpu_load, concurrency) VALUES ($1, 1, 1)`, [
        iso(dayStart),
      ]);
    expect(await buckets()).toBe(0);

    await behindTheRevision(async () => {
      await insertInFuture();
      expect(await buckets()).toBe(0);
      await sql.query('DELETE FROM metrics WHERE "timestamp" = $1', [iso(dayStart)]);
    });
    await insertInFuture();
    expect(await buckets()).toBe(1);
    await sql.query('DELETE FROM metrics WHERE "timestamp" = $1', [iso(dayStart)]);
  });

  it('sees samples stored by the ingestMetrics mutation at once', async () => {
    const token = 'aggregate-cache-test-token-0123456789';
    const app = createTestApp(db, { INGEST_TOKEN: token });
    const count = async () => (await graphql<Summary>(app, SUMMARY, {})).data?.metricsSummary.count;
    const before = (await count()) as number;
    expect(await count()).toBe(before);
    const ingest = await graphql<{ ingestMetrics: { inserted: number } }>(
      app,
      `mutation ($samples: [MetricInput!]!) { ingestMetrics(samples: $samples) { inserted } }`,
      { samples: [{ timestamp: iso(T0 - 60_000), cpuLoad: 0.5, concurrency: 3 }] },
      { authorization: `Bearer ${token}` },
    );
    expect(ingest.data?.ingestMetrics.inserted).toBe(1);
    expect(await count()).toBe(before + 1);
  });

  it('answers from the current data when AGGREGATE_CACHE_BYTES is 0', async () => {
    const app = createTestApp(db, { AGGREGATE_CACHE_BYTES: '0' });
    const count = async () => (await graphql<Summary>(app, SUMMARY, {})).data?.metricsSummary.count;
    const before = await count();
    await behindTheRevision(() => insertSamples(2));
    expect(await count()).toBe((before as number) + 2);
  });

  it('keeps at most AGGREGATE_CACHE_BYTES, forgetting the least recently used answers', async () => {
    // Two series of 2 buckets each do not fit (1,700 bytes each by the estimate): the second
    // pushes the first out.
    const app = createTestApp(db, { AGGREGATE_CACHE_BYTES: '2500' });
    const first = { start: iso(T0), end: iso(T0 + 120_000), bucket: '1m' };
    const second = { start: iso(T0 + 120_000), end: iso(T0 + 240_000), bucket: '1m' };
    const buckets = async (variables: Record<string, unknown>) =>
      (await graphql<Series>(app, SERIES, variables)).data?.metricSeries.map((bucket) => bucket.count);
    expect(await buckets(first)).toEqual([60, 60]);
    expect(await buckets(second)).toEqual([60, 60]);

    await behindTheRevision(() =>
      sql.query(`DELETE FROM metrics WHERE "timestamp" IN ($1, $2)`, [iso(T0), iso(T0 + 120_000)]),
    );
    expect(await buckets(second)).toEqual([60, 60]);
    expect(await buckets(first)).toEqual([59, 60]);
  });

  it('lets identical questions asked together share one computation', async () => {
    const app = createTestApp(db);
    const window = { start: iso(T0 + 1000), end: iso(T0 + 300_000) };
    const locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
    try {
      // Hold the summaries' first statements (not the revision reads) at the table lock, then count them.
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE metrics IN ACCESS EXCLUSIVE MODE');
      const answers = Promise.all(Array.from({ length: 5 }, () => graphql<Summary>(app, SUMMARY, window)));
      const summariesWaiting = async () => {
        const { rows } = await sql.query<{ waiting: number }>(
          `SELECT count(*)::int AS waiting FROM pg_stat_activity
            WHERE datname = current_database() AND query LIKE '%rolled AS MATERIALIZED%' AND wait_event_type = 'Lock'`,
        );
        return rows[0]?.waiting ?? 0;
      };
      for (let attempt = 0; attempt < 100 && (await summariesWaiting()) === 0; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      // Give the other four requests time to reach the database, had they gone there.
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await summariesWaiting()).toBe(1);
      await locker.query('COMMIT');
      const counts = (await answers).map((answer) => answer.data?.metricsSummary.count);
      const { rows: stored } = await sql.query<{ count: number }>(
        `SELECT count(*)::int AS count FROM metrics WHERE "timestamp" >= $1 AND "timestamp" < $2`,
        [window.start, window.end],
      );
      expect(counts).toEqual(Array(5).fill(stored[0]?.count));
    } finally {
      await locker.end();
    }
  });
});

describe('remembered aggregates of some sources', () => {
  // Twenty days on, clear of the windows above.
  const T1 = T0 + 20 * 86_400_000;
  const window = { start: iso(T1), end: iso(T1 + 86_400_000) };
  const FILTERED = `query ($source: String, $labels: [LabelMatcher!], $start: DateTime, $end: DateTime) {
    metricsSummary(source: $source, labels: $labels, start: $start, end: $end) { count }
  }`;
  const RANKED = `query ($start: DateTime, $end: DateTime) {
    sourceSummaries(start: $start, end: $end, orderBy: SAMPLES) { source { name } summary { count } }
  }`;
  const insertFor = (sourceId: number, count: number, from: number) =>
    sql.query(
      `INSERT INTO metrics (source_id, "timestamp", cpu_load, concurrency)
       SELECT $1::int, to_timestamp($2::float8 / 1000 + g), 1, 1 FROM generate_series($3::int, $4::int) AS g`,
      [sourceId, T1, from, from + count - 1],
    );

  it('remembers an answer by the sources a filter selects, not by the filter', async () => {
    const app = createTestApp(db);
    await sql.query(
      `INSERT INTO sources (id, name, labels) VALUES (2, 'eu-1', '{"region": "eu"}'), (3, 'us-1', '{"region": "us"}')`,
    );
    await insertFor(2, 10, 0);
    await insertFor(3, 20, 0);
    const count = async (variables: Record<string, unknown>) =>
      (await graphql<Summary>(app, FILTERED, { ...window, ...variables })).data?.metricsSummary.count;
    const inEu = { labels: [{ name: 'region', value: 'eu' }] };
    expect(await count(inEu)).toBe(10);

    await behindTheRevision(() => insertFor(2, 5, 100));
    // Another filter that selects the same source is the same question, remembered.
    expect(await count({ source: 'eu-1' })).toBe(10);
    expect(await count({ source: 'us-1' })).toBe(20);
    // A source made since whose labels match makes the filter select other sources: another question.
    await sql.query(`INSERT INTO sources (id, name, labels) VALUES (4, 'eu-2', '{"region": "eu"}')`);
    await behindTheRevision(() => insertFor(4, 7, 0));
    expect(await count(inEu)).toBe(10 + 5 + 7);
  });

  it('remembers sources ranked until the data changes', async () => {
    const app = createTestApp(db);
    const ranked = async () =>
      (
        await graphql<{ sourceSummaries: { source: { name: string }; summary: { count: number } }[] }>(
          app,
          RANKED,
          window,
        )
      ).data?.sourceSummaries.map(({ source, summary }) => `${source.name} ${summary.count}`);
    const before = await ranked();
    await behindTheRevision(() => insertFor(3, 30, 100));
    expect(await ranked()).toEqual(before);
    await insertFor(3, 1, 200);
    expect(await ranked()).toEqual(['us-1 51', 'eu-1 15', 'eu-2 7']);
  });
});
