import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresConnection } from '../src/database/connection.js';
import { sketchOf, sketchQuantile } from '../src/domain/quantile-sketch.js';
import type { App } from '../src/http/app.js';
import { createTestApp, type GraphQLResponse, graphql } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { connectLogged, type LoggedStatement } from './support/logged-statements.js';

// Four sources with labels, three hours of a sample every 10 s each at the same instants (so a page
// over every source orders each instant's rows by source), some samples holding one value only;
// the default source (id 1) with the first rows at those instants; twenty small `batch` sources,
// more than a page reads one by one; one whose first hour stands out; and one that never reported.
const T0 = Date.UTC(2026, 5, 1);
const STEPS = 1080;
const MAIN = [
  { id: 2, name: 'web-1', labels: { region: 'eu', tier: 'web' }, base: 0.5 },
  { id: 3, name: 'web-2', labels: { region: 'us', tier: 'web' }, base: 2 },
  { id: 4, name: 'db-1', labels: { region: 'eu', tier: 'db' }, base: 4 },
  { id: 5, name: 'db-2', labels: { region: 'ap', tier: 'db' }, base: 1 },
];
const BATCHES = 20;
const iso = (ms: number) => new Date(ms).toISOString();

let db: TestDatabase;
let app: App;
let sql: pg.Client;
let logged: PostgresConnection;
let statements: LoggedStatement[] = [];

async function rows<T>(text: string, values: unknown[] = []): Promise<T[]> {
  return (await sql.query(text, values)).rows as T[];
}

beforeAll(async () => {
  db = await createTestDatabase();
  sql = new pg.Client({ connectionString: db.url });
  await sql.connect();
  for (const { id, name, labels } of MAIN) {
    await sql.query('INSERT INTO sources (id, name, labels) VALUES ($1, $2, $3)', [id, name, labels]);
  }
  await sql.query(
    `INSERT INTO sources (id, name, labels)
     SELECT 5 + g, 'batch-' || lpad(g::text, 2, '0'), jsonb_build_object('tier', 'batch') FROM generate_series(1, ${BATCHES}) AS g`,
  );
  await sql.query(`INSERT INTO sources (id, name, labels) VALUES (100, 'silent', '{"tier": "web"}')`);
  // A source whose first hour differs from the rest: a sketch that counted that hour twice or not
  // at all would have other percentiles.
  await sql.query(`INSERT INTO sources (id, name) VALUES (99, 'burst')`);
  await sql.query(
    `INSERT INTO metrics (source_id, "timestamp", cpu_load, concurrency)
     SELECT 99, to_timestamp(${T0 / 1000} + g * 10), CASE WHEN g < 360 THEN 0.5 ELSE 0.125 END, 1
       FROM generate_series(0, 759) AS g`,
  );
  await sql.query(`SELECT setval(pg_get_serial_sequence('sources', 'id'), 100)`);
  // Values of sixteenths: exact in float4, so aggregates compare without slack.
  for (const { id, base } of MAIN) {
    await sql.query(
      `INSERT INTO metrics (source_id, "timestamp", cpu_load, concurrency)
       SELECT $1::int, to_timestamp(${T0 / 1000} + g * 10),
              CASE WHEN $1 = 3 AND g % 13 = 0 THEN NULL ELSE $2::real + ((g * $1) % 23) / 16.0 END,
              CASE WHEN $1 = 5 AND g % 10 = 0 THEN NULL ELSE (g * $1) % 11 END
         FROM generate_series(0, ${STEPS - 1}) AS g`,
      [id, base],
    );
  }
  await sql.query(
    `INSERT INTO metrics ("timestamp", cpu_load, concurrency)
     SELECT to_timestamp(${T0 / 1000} + g * 10), 0.25, 1 FROM generate_series(0, 49) AS g`,
  );
  await sql.query(
    `INSERT INTO metrics (source_id, "timestamp", cpu_load, concurrency)
     SELECT 5 + s, to_timestamp(${T0 / 1000} + 5 + g * 60), s / 16.0, s FROM generate_series(1, ${BATCHES}) AS s, generate_series(0, 29) AS g`,
  );
  await sql.query('ANALYZE');
  // The statements the app's store runs, to count them.
  ({ connection: logged, statements } = connectLogged(db.url, 4));
  app = createTestApp({ ...logged, url: db.url });
});
afterAll(async () => {
  await app?.dispose();
  await logged?.close();
  await sql?.end();
  await db?.drop();
});

/** Runs a query that must succeed. */
async function ok<Data>(query: string, variables: Record<string, unknown> = {}): Promise<Data> {
  const result: GraphQLResponse<Data> = await graphql<Data>(app, query, variables);
  expect(result.errors).toBeUndefined();
  return result.data as Data;
}

type Edge = { cursor: string; node: { timestamp: string; source: { name: string } } };
interface Page {
  metrics: {
    edges: Edge[];
    pageInfo: {
      hasNextPage: boolean;
      hasPreviousPage: boolean;
      endCursor: string | null;
      startCursor: string | null;
    };
    totalCount?: number;
  };
}

const PAGE = `
  query Page($first: Int, $after: String, $last: Int, $before: String, $order: SortOrder! = ASC,
             $source: String, $sources: [String!], $labels: [LabelMatcher!], $start: DateTime, $end: DateTime) {
    metrics(first: $first, after: $after, last: $last, before: $before, order: $order, source: $source,
            sources: $sources, labels: $labels, start: $start, end: $end) {
      edges { cursor node { timestamp source { name } } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }`;

/** Every row of a filter, as `<ISO time> <source>`, walked page by page in either direction. */
async function walk(size: number, variables: Record<string, unknown>, backward = false): Promise<string[]> {
  const seen: string[] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 10_000; pages++) {
    const { metrics }: Page = await ok<Page>(PAGE, {
      ...variables,
      ...(backward ? { last: size, before: cursor } : { first: size, after: cursor }),
    });
    const page = metrics.edges.map(({ node }) => `${node.timestamp} ${node.source.name}`);
    if (backward) seen.unshift(...page);
    else seen.push(...page);
    const more = backward ? metrics.pageInfo.hasPreviousPage : metrics.pageInfo.hasNextPage;
    if (!more) return seen;
    cursor = backward ? metrics.pageInfo.startCursor : metrics.pageInfo.endCursor;
  }
  throw new Error('too many pages');
}

/** The rows of the sources `where` selects, as walk() names them, in (timestamp, source) order. */
async function expected(where: string, direction: 'ASC' | 'DESC' = 'ASC'): Promise<string[]> {
  const found = await rows<{ at: Date; name: string }>(
    `SELECT m."timestamp" AS at, s.name FROM metrics AS m JOIN sources AS s ON s.id = m.source_id
      WHERE ${where} ORDER BY m."timestamp" ${direction}, m.source_id ${direction}`,
  );
  return found.map(({ at, name }) => `${at.toISOString()} ${name}`);
}

describe('a page over several sources', () => {
  it('visits every row of every source once, by time then source, forward, backward and newest first', async () => {
    const all = await expected('true');
    expect(all.length).toBe(MAIN.length * STEPS + 50 + BATCHES * 30 + 760);
    expect(await walk(97, {})).toEqual(all);
    expect(await walk(89, {}, true)).toEqual(all);
    expect(await walk(101, { order: 'DESC' })).toEqual(await expected('true', 'DESC'));
  });

  it('visits the rows of a few sources, of one, and of many (more than it reads one by one) the same way', async () => {
    expect(await walk(33, { sources: ['db-2', 'web-1', 'nowhere'] })).toEqual(
      await expected(`s.name IN ('web-1', 'db-2')`),
    );
    expect(
      await walk(7, { sources: ['db-2', 'web-1'], order: 'DESC', end: iso(T0 + 600_000) }, true),
    ).toEqual(
      await expected(`s.name IN ('web-1', 'db-2') AND m."timestamp" < '${iso(T0 + 600_000)}'`, 'DESC'),
    );
    expect(await walk(250, { source: 'web-2' })).toEqual(await expected(`s.name = 'web-2'`));
    expect(await walk(99, { source: 'web-2', order: 'DESC' }, true)).toEqual(
      await expected(`s.name = 'web-2'`, 'DESC'),
    );
    const many = [{ name: 'tier', value: 'web|batch', operator: 'MATCHES' }];
    expect(await walk(41, { labels: many })).toEqual(await expected(`s.labels->>'tier' IN ('web', 'batch')`));
    expect(await walk(41, { labels: many }, true)).toEqual(
      await expected(`s.labels->>'tier' IN ('web', 'batch')`),
    );
  });

  it('continues a cursor issued before sources from the row of source 1 it named', async () => {
    const plainCursor = (ms: number) => Buffer.from(`metric:${ms}`).toString('base64url');
    const { metrics } = await ok<Page>(PAGE, { first: 6, after: plainCursor(T0 + 10_000) });
    expect(metrics.edges.map(({ node }) => `${node.timestamp} ${node.source.name}`)).toEqual(
      [
        ['web-1', 'web-2', 'db-1', 'db-2', 'burst'].map((name) => `${iso(T0 + 10_000)} ${name}`),
        [`${iso(T0 + 20_000)} default`],
      ].flat(),
    );
    // Within one source too: after (T0 + 10 s, source 1) in web-1 is web-1's row at T0 + 10 s.
    const own = await ok<Page>(PAGE, { first: 2, source: 'web-1', after: plainCursor(T0 + 10_000) });
    expect(own.metrics.edges.map(({ node }) => node.timestamp)).toEqual([iso(T0 + 10_000), iso(T0 + 20_000)]);
    // A cursor of source 1 is written as it was.
    expect(own.metrics.edges[0]?.cursor).not.toBe(plainCursor(T0 + 10_000));
    const first = await ok<Page>(PAGE, { first: 1 });
    expect(first.metrics.edges[0]?.cursor).toBe(plainCursor(T0));
  });
});

describe('source filters', () => {
  const COUNT = `query ($source: String, $sources: [String!], $labels: [LabelMatcher!]) {
    metrics(first: 0, source: $source, sources: $sources, labels: $labels) { totalCount }
  }`;
  const count = async (variables: Record<string, unknown>) =>
    (await ok<{ metrics: { totalCount: number } }>(COUNT, variables)).metrics.totalCount;
  const countOf = async (where: string) =>
    Number(
      (
        await rows<{ n: string }>(
          `SELECT count(*) AS n FROM metrics AS m JOIN sources AS s ON s.id = m.source_id WHERE ${where}`,
        )
      )[0]?.n,
    );

  it.each([
    ['one source', { source: 'db-1' }, `s.name = 'db-1'`],
    ['several', { sources: ['db-1', 'web-2'] }, `s.name IN ('db-1', 'web-2')`],
    [
      'a source and several: those in both',
      { source: 'db-1', sources: ['db-1', 'web-2'] },
      `s.name = 'db-1'`,
    ],
    ['none that exists', { source: 'nowhere' }, 'false'],
    ['a label', { labels: [{ name: 'region', value: 'eu' }] }, `s.labels->>'region' = 'eu'`],
    [
      'a label not equal (a source without it has it as "")',
      { labels: [{ name: 'region', value: 'eu', operator: 'NOT_EQUAL' }] },
      `coalesce(s.labels->>'region', '') <> 'eu'`,
    ],
    [
      'a label matching a whole regular expression',
      { labels: [{ name: 'region', value: 'e.|a.', operator: 'MATCHES' }] },
      `s.labels->>'region' IN ('eu', 'ap')`,
    ],
    [
      'a label not matching one',
      { labels: [{ name: 'region', value: 'e', operator: 'NOT_MATCHES' }] },
      'true',
    ],
    [
      'labels and names together',
      { sources: ['web-1', 'web-2', 'db-1'], labels: [{ name: 'region', value: 'eu' }] },
      `s.name IN ('web-1', 'db-1')`,
    ],
  ])('%s', async (_label, variables, where) => {
    expect(await count(variables)).toBe(await countOf(where));
  });

  it('refuses a regular expression PostgreSQL cannot compile as BAD_USER_INPUT naming labels', async () => {
    const result = await graphql(app, COUNT, {
      labels: [{ name: 'region', value: '(', operator: 'MATCHES' }],
    });
    expect(result.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'labels' });
    expect(result.errors?.[0]?.message).toMatch(/^labels: /);
  });

  it.each([
    ['an expression that would close the anchoring group', 'e.)|(.*'],
    ['a backreference', '(e)\\1'],
    ['an expression longer than 256 characters', 'e'.repeat(257)],
    ['a NUL character', 'e\u0000'],
  ])('refuses %s as BAD_USER_INPUT naming labels', async (_label, value) => {
    const result = await graphql(app, COUNT, { labels: [{ name: 'region', value, operator: 'MATCHES' }] });
    expect(result.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'labels' });
  });

  it('refuses a NUL character in a name, and finds no source of a name none can have', async () => {
    const refused = await graphql(app, COUNT, { source: 'web\u0000' });
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'sources' });
    const prefix = await graphql(app, 'query ($p: String) { sources(namePrefix: $p) { totalCount } }', {
      p: 'web\u0000',
    });
    expect(prefix.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'namePrefix' });
    const none = await ok<{ source: null }>('query ($n: String!) { source(name: $n) { name } }', {
      n: 'web\u0000',
    });
    expect(none.source).toBeNull();
  });

  it('refuses more names than a filter may hold, naming the argument', async () => {
    const result = await graphql(app, COUNT, { sources: Array.from({ length: 101 }, (_, i) => `s${i}`) });
    expect(result.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'sources' });
  });
});

describe('summaries and series of some sources', () => {
  const SUMMARY = `query ($source: String, $sources: [String!], $labels: [LabelMatcher!], $start: DateTime, $end: DateTime) {
    metricsSummary(source: $source, sources: $sources, labels: $labels, start: $start, end: $end) {
      count firstTimestamp lastTimestamp percentilesExact
      cpuLoad { count min max avg p50 p95 p99 } concurrency { count min max avg p95 }
    }
  }`;
  const SERIES = `query ($source: String, $labels: [LabelMatcher!], $start: DateTime, $end: DateTime, $bucket: Duration!) {
    metricSeries(source: $source, labels: $labels, start: $start, end: $end, bucket: $bucket) {
      start count cpuLoad { count min max avg } concurrency { count min max avg }
    }
  }`;
  // Unaligned at both ends: rollups and raw edges both.
  const window = { start: iso(T0 + 1_234_000), end: iso(T0 + 9_876_000) };

  async function rawSummary(where: string) {
    const [row] = await rows<Record<string, unknown>>(
      `SELECT count(*)::int AS count, min("timestamp") AS first, max("timestamp") AS last,
              count(cpu_load)::int AS cpu_count, min(cpu_load) AS cpu_min, max(cpu_load) AS cpu_max, avg(cpu_load)::real AS cpu_avg,
              (percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY cpu_load))::real[] AS cpu_p,
              count(concurrency)::int AS concurrency_count, min(concurrency) AS concurrency_min, max(concurrency) AS concurrency_max,
              avg(concurrency)::float8 AS concurrency_avg,
              percentile_cont(0.95) WITHIN GROUP (ORDER BY concurrency) AS concurrency_p95
         FROM metrics AS m JOIN sources AS s ON s.id = m.source_id
        WHERE m."timestamp" >= $1 AND m."timestamp" < $2 AND ${where}`,
      [window.start, window.end],
    );
    const r = row as Record<string, unknown>;
    return {
      count: r.count as number,
      firstTimestamp: (r.first as Date | null)?.toISOString() ?? null,
      lastTimestamp: (r.last as Date | null)?.toISOString() ?? null,
      percentilesExact: true,
      cpuLoad: {
        count: r.cpu_count,
        min: r.cpu_min,
        max: r.cpu_max,
        avg: r.cpu_avg,
        p50: (r.cpu_p as number[])[0],
        p95: (r.cpu_p as number[])[1],
        p99: (r.cpu_p as number[])[2],
      },
      concurrency: {
        count: r.concurrency_count,
        min: r.concurrency_min,
        max: r.concurrency_max,
        avg: r.concurrency_avg,
        p95: r.concurrency_p95,
      },
    };
  }

  it.each([
    ['one source', { source: 'web-2' }, `s.name = 'web-2'`],
    ['one with a value missing at times', { source: 'db-2' }, `s.name = 'db-2'`],
    ['a label', { labels: [{ name: 'tier', value: 'db' }] }, `s.labels->>'tier' = 'db'`],
    ['every source', {}, 'true'],
  ])('summarize %s as the raw rows do', async (_label, filter, where) => {
    const { metricsSummary } = await ok<{ metricsSummary: Record<string, unknown> }>(SUMMARY, {
      ...filter,
      ...window,
    });
    const raw = await rawSummary(where);
    const { concurrency, ...rest } = metricsSummary as { concurrency: { avg: number } } & Record<
      string,
      unknown
    >;
    const { concurrency: rawConcurrency, ...rawRest } = raw;
    expect(rest).toEqual(rawRest);
    expect({ ...concurrency, avg: undefined }).toEqual({ ...rawConcurrency, avg: undefined });
    expect(concurrency.avg).toBeCloseTo(rawConcurrency.avg as number, 9);
  });

  it('buckets a source and a label filter as the raw rows do', async () => {
    for (const [filter, where] of [
      [{ source: 'db-2' }, `s.name = 'db-2'`],
      [{ labels: [{ name: 'region', value: 'eu' }] }, `s.labels->>'region' = 'eu'`],
    ] as const) {
      const { metricSeries } = await ok<{
        metricSeries: { start: string; count: number; cpuLoad: unknown }[];
      }>(SERIES, { ...filter, ...window, bucket: '15m' });
      const raw = await rows<{
        start: Date;
        count: number;
        cpu_count: number;
        cpu_min: number;
        cpu_max: number;
      }>(
        `SELECT date_bin('15 minutes', m."timestamp", TIMESTAMPTZ 'epoch') AS start, count(*)::int AS count,
                count(cpu_load)::int AS cpu_count, min(cpu_load) AS cpu_min, max(cpu_load) AS cpu_max
           FROM metrics AS m JOIN sources AS s ON s.id = m.source_id
          WHERE m."timestamp" >= $1 AND m."timestamp" < $2 AND ${where} GROUP BY 1 ORDER BY 1`,
        [window.start, window.end],
      );
      expect(metricSeries.map(({ start, count, cpuLoad }) => ({ start, count, cpuLoad }))).toEqual(
        raw.map((row) => ({
          start: row.start.toISOString(),
          count: row.count,
          cpuLoad: expect.objectContaining({ count: row.cpu_count, min: row.cpu_min, max: row.cpu_max }),
        })),
      );
    }
  });
});

describe('per-source answers', () => {
  const SUMMARIES = `query ($orderBy: SourceStatistic, $order: SortOrder, $first: Int, $labels: [LabelMatcher!], $start: DateTime, $end: DateTime) {
    sourceSummaries(orderBy: $orderBy, order: $order, first: $first, labels: $labels, start: $start, end: $end) {
      source { name } summary { count lastTimestamp percentilesExact cpuLoad { count max avg p50 p95 p99 } concurrency { max avg p95 } }
    }
  }`;
  type Summaries = {
    sourceSummaries: {
      source: { name: string };
      summary: {
        count: number;
        lastTimestamp: string;
        percentilesExact: boolean;
        cpuLoad: { count: number; max: number; avg: number; p50: number; p95: number; p99: number };
        concurrency: { max: number; avg: number; p95: number };
      };
    }[];
  };
  const window = { start: iso(T0 + 1_234_000), end: iso(T0 + 9_876_000) };

  async function exactBySource(statistic: string, within = window) {
    return rows<{ name: string; value: number | null; count: number }>(
      `SELECT s.name, ${statistic} AS value, count(*)::int AS count
         FROM metrics AS m JOIN sources AS s ON s.id = m.source_id
        WHERE m."timestamp" >= $1 AND m."timestamp" < $2 GROUP BY s.name`,
      [within.start, within.end],
    );
  }

  it.each([
    ['a window of whole hours and raw edges', window],
    // 19 whole hours of the day: its day's row less hour 0 and hours 20 to 23.
    ['a window of most of a day', { start: iso(T0 + 300_000), end: iso(T0 + 20 * 3_600_000) }],
  ])(
    'ranks sources by a percentile of the sketches, within 1% of the raw rows, first N: %s',
    async (_label, within) => {
      const exact = await exactBySource('percentile_cont(0.95) WITHIN GROUP (ORDER BY cpu_load)', within);
      const byName = new Map(exact.map((row) => [row.name, row]));
      const ranked = [...exact].sort((a, b) => (b.value ?? -1) - (a.value ?? -1));
      const { sourceSummaries } = await ok<Summaries>(SUMMARIES, { first: 3, ...within });
      expect(sourceSummaries.map(({ source }) => source.name)).toEqual(
        ranked.slice(0, 3).map(({ name }) => name),
      );
      for (const { source, summary } of sourceSummaries) {
        const row = byName.get(source.name);
        expect(summary.count).toBe(row?.count);
        expect(summary.percentilesExact).toBe(false);
        expect(Math.abs(summary.cpuLoad.p95 - (row?.value as number))).toBeLessThanOrEqual(
          0.01 * (row?.value as number) + 1e-9,
        );
      }
      const all = await ok<Summaries>(SUMMARIES, { first: 1000, order: 'ASC', ...within });
      expect(all.sourceSummaries.map(({ source }) => source.name).sort()).toEqual(
        exact.map(({ name }) => name).sort(),
      );
      // The sketches merged from rollups and raw edges are the sketch of the window's values, exactly.
      for (const { source, summary } of all.sourceSummaries) {
        const values = await rows<{ cpu_load: number }>(
          `SELECT cpu_load FROM metrics AS m JOIN sources AS s ON s.id = m.source_id
            WHERE s.name = $1 AND m."timestamp" >= $2 AND m."timestamp" < $3 AND cpu_load IS NOT NULL`,
          [source.name, within.start, within.end],
        );
        const sketch = sketchOf(values.map(({ cpu_load }) => cpu_load));
        expect([summary.cpuLoad.p50, summary.cpuLoad.p95, summary.cpuLoad.p99], source.name).toEqual(
          [0.5, 0.95, 0.99].map((fraction) => sketchQuantile(sketch, fraction)),
        );
      }
    },
  );

  it.each([
    ['SAMPLES', 'DESC', 'count(*)'],
    ['CPU_LOAD_MAX', 'ASC', 'max(cpu_load)'],
    ['CPU_LOAD_AVG', 'DESC', 'avg(cpu_load)::real'],
    ['CONCURRENCY_MAX', 'DESC', 'max(concurrency)'],
    ['CONCURRENCY_P95', 'DESC', 'percentile_cont(0.95) WITHIN GROUP (ORDER BY concurrency)'],
    ['LAST_SEEN', 'ASC', 'extract(epoch FROM max(m."timestamp"))'],
  ])('ranks by %s %s, ties to the source made first', async (orderBy, order, statistic) => {
    const exact = await rows<{ name: string; value: number; id: number }>(
      `SELECT s.name, s.id, ${statistic}::float8 AS value FROM metrics AS m JOIN sources AS s ON s.id = m.source_id
        WHERE m."timestamp" >= $1 AND m."timestamp" < $2 GROUP BY s.name, s.id
        ORDER BY 3 ${order}, s.id LIMIT 5`,
      [window.start, window.end],
    );
    const { sourceSummaries } = await ok<Summaries>(SUMMARIES, { orderBy, order, first: 5, ...window });
    if (orderBy === 'CONCURRENCY_P95') {
      // Sketch percentiles may reorder sources whose exact values are within 1%: compare values.
      sourceSummaries.forEach(({ summary }, index) => {
        const value = Number(exact[index]?.value);
        expect(Math.abs(summary.concurrency.p95 - value)).toBeLessThanOrEqual(0.01 * value + 1e-9);
      });
    } else {
      expect(sourceSummaries.map(({ source }) => source.name)).toEqual(exact.map(({ name }) => name));
    }
  });

  it('ranks among the sources a filter selects, and refuses first beyond its bound', async () => {
    const { sourceSummaries } = await ok<Summaries>(SUMMARIES, {
      orderBy: 'CPU_LOAD_AVG',
      labels: [{ name: 'tier', value: 'db' }],
      ...window,
    });
    expect(sourceSummaries.map(({ source }) => source.name)).toEqual(['db-1', 'db-2']);
    const refused = await graphql(app, SUMMARIES, { first: 1001 });
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'first' });
    const none = await ok<Summaries>(SUMMARIES, { first: 0, orderBy: 'CPU_LOAD_P95', ...window });
    expect(none.sourceSummaries).toEqual([]);
  });

  it('gives each of the first N sources its series, as metricSeries gives it for that source', async () => {
    const SERIES = `query ($first: Int, $bucket: Duration!, $start: DateTime, $end: DateTime) {
      sourceSeries(first: $first, orderBy: CPU_LOAD_AVG, bucket: $bucket, start: $start, end: $end) {
        source { name } buckets { start count cpuLoad { count min max avg } concurrency { count min max avg } }
      }
    }`;
    const ONE = `query ($source: String, $bucket: Duration!, $start: DateTime, $end: DateTime) {
      metricSeries(source: $source, bucket: $bucket, start: $start, end: $end) {
        start count cpuLoad { count min max avg } concurrency { count min max avg }
      }
    }`;
    for (const bucket of ['1h', '10m', '7m']) {
      const { sourceSeries } = await ok<{ sourceSeries: { source: { name: string }; buckets: unknown[] }[] }>(
        SERIES,
        { first: 3, bucket, ...window },
      );
      expect(sourceSeries.map(({ source }) => source.name)).toEqual(['db-1', 'web-2', 'db-2']);
      for (const { source, buckets } of sourceSeries) {
        const { metricSeries } = await ok<{ metricSeries: unknown[] }>(ONE, {
          source: source.name,
          bucket,
          ...window,
        });
        expect(buckets).toEqual(metricSeries);
      }
    }
  });
});

describe('sources', () => {
  const SOURCES = `query ($first: Int, $after: String, $last: Int, $before: String, $orderBy: SourceOrder, $namePrefix: String, $labels: [LabelMatcher!]) {
    sources(first: $first, after: $after, last: $last, before: $before, orderBy: $orderBy, namePrefix: $namePrefix, labels: $labels) {
      totalCount
      edges { cursor node { id name labels { name value } firstSeen lastSeen } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }`;
  type Sources = {
    sources: {
      totalCount: number;
      edges: {
        cursor: string;
        node: {
          id: string;
          name: string;
          labels: { name: string; value: string }[];
          lastSeen: string | null;
        };
      }[];
      pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string; endCursor: string };
    };
  };

  async function walkSources(size: number, variables: Record<string, unknown>, backward = false) {
    const names: string[] = [];
    let cursor: string | null = null;
    for (;;) {
      const { sources }: Sources = await ok<Sources>(SOURCES, {
        ...variables,
        ...(backward ? { last: size, before: cursor } : { first: size, after: cursor }),
      });
      const page = sources.edges.map(({ node }) => node.name);
      if (backward) names.unshift(...page);
      else names.push(...page);
      if (!(backward ? sources.pageInfo.hasPreviousPage : sources.pageInfo.hasNextPage)) return names;
      cursor = backward ? sources.pageInfo.startCursor : sources.pageInfo.endCursor;
    }
  }

  it('pages by name in both directions, with a name prefix and labels', async () => {
    const all = (await rows<{ name: string }>('SELECT name FROM sources ORDER BY name')).map(
      ({ name }) => name,
    );
    expect(await walkSources(4, {})).toEqual(all);
    expect(await walkSources(3, {}, true)).toEqual(all);
    expect(await walkSources(1, { namePrefix: 'web' })).toEqual(['web-1', 'web-2']);
    expect(await walkSources(2, { labels: [{ name: 'tier', value: 'web' }] }, true)).toEqual([
      'silent',
      'web-1',
      'web-2',
    ]);
    const { sources } = await ok<Sources>(SOURCES, { first: 1, namePrefix: 'batch-1' });
    expect(sources.totalCount).toBe(10);
    expect(sources.edges[0]?.node).toMatchObject({
      name: 'batch-10',
      labels: [{ name: 'tier', value: 'batch' }],
    });
  });

  it('pages by last seen, most recent first and never-seen sources last, in both directions', async () => {
    const all = (
      await rows<{ name: string }>('SELECT name FROM sources ORDER BY last_seen DESC NULLS LAST, id DESC')
    ).map(({ name }) => name);
    expect(all.at(-1)).toBe('silent');
    expect(await walkSources(3, { orderBy: 'LAST_SEEN' })).toEqual(all);
    expect(await walkSources(5, { orderBy: 'LAST_SEEN' }, true)).toEqual(all);
    const { sources } = await ok<Sources>(SOURCES, { first: 2, orderBy: 'LAST_SEEN', namePrefix: 'db' });
    expect(sources.edges.map(({ node }) => node.name)).toEqual(['db-2', 'db-1']);
    // A cursor of one order is refused in the other.
    const refused = await graphql(app, SOURCES, { first: 2, after: sources.pageInfo.endCursor });
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'after' });
    const badRegex = await graphql(app, SOURCES, {
      labels: [{ name: 'tier', value: '[', operator: 'MATCHES' }],
    });
    expect(badRegex.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'labels' });
    const longPrefix = await graphql(app, SOURCES, { namePrefix: 'x'.repeat(257) });
    expect(longPrefix.errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      argument: 'namePrefix',
    });
  });

  it('finds a source by name and by its node id, with its own metrics, summary and series', async () => {
    const { source } = await ok<{
      source: {
        id: string;
        name: string;
        firstSeen: string;
        lastSeen: string;
        metrics: { totalCount: number; nodes: { timestamp: string }[] };
        summary: { count: number };
        series: { count: number }[];
      };
    }>(`{ source(name: "db-1") { id name firstSeen lastSeen
           metrics(first: 2, order: DESC) { totalCount nodes { timestamp } }
           summary { count } series(bucket: "1h", start: "${iso(T0)}", end: "${iso(T0 + 3 * 3_600_000)}") { count } } }`);
    expect(source).toMatchObject({
      name: 'db-1',
      firstSeen: iso(T0),
      lastSeen: iso(T0 + (STEPS - 1) * 10_000),
      metrics: {
        totalCount: STEPS,
        nodes: [{ timestamp: iso(T0 + (STEPS - 1) * 10_000) }, expect.anything()],
      },
      summary: { count: STEPS },
      series: [{ count: 360 }, { count: 360 }, { count: 360 }],
    });
    const byId = await ok<{ node: { __typename: string; name: string } }>(
      'query ($id: ID!) { node(id: $id) { __typename ... on Source { name } } }',
      { id: source.id },
    );
    expect(byId.node).toEqual({ __typename: 'Source', name: 'db-1' });
    const { metrics } = await ok<{ metrics: { nodes: { id: string }[] } }>(
      '{ metrics(first: 1, source: "web-1") { nodes { id } } }',
    );
    const mixed = await ok<{ nodes: ({ __typename: string } | null)[] }>(
      'query ($ids: [ID!]!) { nodes(ids: $ids) { __typename } }',
      { ids: [source.id, metrics.nodes[0]?.id, Buffer.from('Source:99999').toString('base64')] },
    );
    expect(mixed.nodes).toEqual([{ __typename: 'Source' }, { __typename: 'Metric' }, null]);
    expect((await ok<{ source: null }>('{ source(name: "nowhere") { id } }')).source).toBeNull();
  });

  it('loads the sources of a page of 100 samples in one statement, not one per sample', async () => {
    const query =
      '{ metrics(first: 100, start: "2026-06-01T00:00:00Z") { nodes { timestamp source { name labels { name } } } } }';
    await ok(query);
    statements.length = 0;
    const { metrics } = await ok<{ metrics: { nodes: { source: { name: string } }[] } }>(query);
    const [distinct] = await rows<{ n: number }>(
      `SELECT count(DISTINCT source_id)::int AS n FROM (SELECT source_id FROM metrics ORDER BY "timestamp", source_id LIMIT 100) AS page`,
    );
    expect(new Set(metrics.nodes.map(({ source }) => source.name)).size).toBe(distinct?.n);
    const reads = statements.filter(({ text }) => /\bFROM (metrics|sources)\b/.test(text));
    expect(reads.filter(({ text }) => /FROM metrics/.test(text))).toHaveLength(1);
    expect(reads.filter(({ text }) => /FROM sources/.test(text))).toHaveLength(1);
  });
});
