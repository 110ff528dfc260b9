import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { operationCost } from '../src/graphql/query-cost.js';
import { schema } from '../src/graphql/schema.js';
import type { App } from '../src/http/app.js';
import { createTestApp, graphql } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

const config = parseConfig({ NODE_ENV: 'test' });
const costOf = (query: string, variables: Record<string, unknown> = {}) =>
  operationCost(schema, parse(query), undefined, variables, config);

// The queries the dashboard (src/dashboard/public/dashboard.js) and the benchmarks
// (bench/lib/workloads.ts, bench/lib/scale.ts) send, with their fields.
const DASHBOARD_SERIES = 'start count cpuLoad { min max avg } concurrency { min max avg }';
const DASHBOARD_SUMMARY = 'count cpuLoad { p50 p95 p99 } concurrency { p95 }';
const BENCH_PAGE =
  'edges { cursor node { id timestamp cpuLoad concurrency } } pageInfo { hasNextPage endCursor }';
const BENCH_SUMMARY =
  'count firstTimestamp lastTimestamp cpuLoad { min max avg p50 p95 p99 } concurrency { min max avg p95 }';
const DAY = 'start: "2026-01-01T00:00:00Z", end: "2026-01-02T00:00:00Z"';

describe('operationCost', () => {
  it('counts a page by its size: each edge and node once, leaves free', () => {
    // 10 for the read, 1 for the connection, 1000 x (edge + node), 1 for pageInfo.
    expect(costOf('{ metrics(first: 1000) { edges { cursor node { id } } pageInfo { hasNextPage } } }')).toBe(
      2012,
    );
    expect(costOf('{ metrics { edges { node { id } } } }')).toBe(10 + 1 + 100 * 2);
    expect(costOf('query ($n: Int) { metrics(last: $n) { nodes { id } } }', { n: 7 })).toBe(10 + 1 + 7);
  });

  it('counts summaries, totalCount and aliases', () => {
    expect(costOf('{ metricsSummary { count } }')).toBe(5001);
    expect(costOf('{ a: metricsSummary { count } b: metricsSummary { cpuLoad { p99 } } }')).toBe(5001 + 5002);
    expect(costOf('{ metrics(first: 1) { totalCount } }')).toBe(10 + 1 + 5000);
  });

  it('counts a series by the buckets its window spans, the whole limit when start is left out', () => {
    expect(costOf(`{ metricSeries(${DAY}, bucket: "1m") { start cpuLoad { min } } }`)).toBe(1000 + 1440 * 2);
    expect(
      costOf('query ($b: Duration!) { metricSeries(end: "2026-01-02T00:00:00Z", bucket: $b) { start } }', {
        b: '1h',
      }),
    ).toBe(1000 + config.maxSeriesBuckets);
  });

  it('counts nodes by their ids, through fragments as inline', () => {
    const ids = Array.from({ length: 40 }, (_, i) => `id${i}`);
    const inline = costOf('query ($ids: [ID!]!) { nodes(ids: $ids) { ... on Metric { id } } }', { ids });
    const spread = costOf('query ($ids: [ID!]!) { nodes(ids: $ids) { ...M } } fragment M on Metric { id }', {
      ids,
    });
    expect(inline).toBe(10 + 40);
    expect(spread).toBe(inline);
  });

  it('costs a fragment spread many times once per list size, not once per path', () => {
    const fragments = Array.from(
      { length: 30 },
      (_, i) => `fragment F${i} on Query { ...F${i + 1} ...F${i + 1} }`,
    ).join(' ');
    const started = performance.now();
    const cost = costOf(`{ ...F0 } ${fragments} fragment F30 on Query { metricsSummary { count } }`);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(cost).toBe(2 ** 30 * 5001);
  });

  it('counts per-source answers by their first, and each per-source series by its buckets', () => {
    // 5000 for the statement, 10 x (item + summary + its cpuLoad).
    expect(costOf(`{ sourceSummaries(${DAY}, first: 10) { summary { cpuLoad { p95 } } } }`)).toBe(
      5000 + 10 * 3,
    );
    expect(costOf('{ sourceSummaries { source { name } } }')).toBe(5000 + 10 * 2);
    // 1000 a series, 10 x (item + 24 buckets of 1 + cpuLoad).
    expect(
      costOf(`{ sourceSeries(${DAY}, bucket: "1h", first: 10) { buckets { start cpuLoad { max } } } }`),
    ).toBe(10 * 1000 + 10 * (1 + 24 * 2));
    // The most a request may ask for is refused: 100 series of a day by minute.
    expect(
      costOf(`{ sourceSeries(${DAY}, bucket: "1m", first: 100) { buckets { start } } }`),
    ).toBeGreaterThan(50_000);
  });

  it('counts a field of each source on a page of sources once per source', () => {
    expect(costOf('{ sources(first: 20) { nodes { name labels { name } } } }')).toBe(10 + 1 + 20 * (1 + 32));
    expect(costOf('{ sources(first: 20) { nodes { summary { count } } } }')).toBe(10 + 1 + 20 * (1 + 5001));
    expect(costOf('{ sources { totalCount } }')).toBe(10 + 1 + 100);
    expect(costOf('{ source(name: "a") { metrics(first: 50) { nodes { id } } } }')).toBe(
      10 + 1 + 10 + 1 + 50,
    );
  });

  it('leaves operations that cannot run to execution: no cost for variables of the wrong type', () => {
    expect(costOf('query ($n: Int) { metrics(first: $n) { totalCount } }', { n: 'many' })).toBeUndefined();
  });
});

let db: TestDatabase;
let app: App;
beforeAll(async () => {
  db = await createTestDatabase();
  app = createTestApp(db);
});
afterAll(() => db.drop());

describe('MAX_QUERY_COST', () => {
  it('refuses 15 aliased summaries (the issue) before any runs, with the estimate and the limit', async () => {
    const summaries = Array.from(
      { length: 15 },
      (_, i) => `s${i}: metricsSummary(start: "2026-01-01T00:00:0${i % 10}Z") { ${BENCH_SUMMARY} }`,
    ).join(' ');
    const result = await graphql(app, `{ ${summaries} }`);
    expect(result.data ?? undefined).toBeUndefined();
    expect(result.errors).toHaveLength(1);
    expect(result.errors?.[0]).toMatchObject({
      message: expect.stringMatching(/^Query cost limit of 50000 exceeded, estimated 75045\b/),
      extensions: { code: 'QUERY_LIMIT_EXCEEDED', cost: 75045, limit: 50000 },
    });
  });

  it('refuses sizes given in variables, within a limit set by MAX_QUERY_COST', async () => {
    const small = createTestApp(db, { MAX_QUERY_COST: '1500' });
    const query = 'query ($n: Int) { metrics(first: $n) { edges { node { id } } } }';
    expect((await graphql(small, query, { n: 1000 })).errors?.[0]?.extensions).toEqual({
      code: 'QUERY_LIMIT_EXCEEDED',
      cost: 2011,
      limit: 1500,
    });
    expect(await graphql(small, query, { n: 100 })).toEqual({
      status: 200,
      data: { metrics: { edges: [] } },
    });
  });

  it('passes what the dashboard, the benchmarks and the README ask', async () => {
    const queries = [
      // The dashboard's range view on a 4K screen: 1,920 buckets and the summary.
      `{ metricSeries(start: "2026-01-01T00:00:00Z", end: "2026-01-24T05:20:00Z", bucket: "1000s") { ${DASHBOARD_SERIES} }
         metricsSummary(${DAY}) { ${DASHBOARD_SUMMARY} } }`,
      `{ metrics(first: 1000) { ${BENCH_PAGE} } }`,
      `{ metricsSummary { ${BENCH_SUMMARY} } }`,
      `{ metricSeries(${DAY}, bucket: "1m") { ${DASHBOARD_SERIES} } }`,
      // bench --scale: a year by hour.
      `{ metricSeries(start: "2025-01-01T00:00:00Z", end: "2026-01-01T00:00:00Z", bucket: "1h") { ${DASHBOARD_SERIES} } }`,
      // The longest series MAX_SERIES_BUCKETS allows, with every field.
      `{ metricSeries(start: "2026-01-01T00:00:00Z", end: "2026-01-07T22:40:00Z", bucket: "1m") { ${DASHBOARD_SERIES} } }`,
      // GraphiQL's example.
      `{ metrics(first: 10, start: "2026-11-26T00:00:00Z") { totalCount ${BENCH_PAGE} }
         metricsSummary(${DAY}) { ${BENCH_SUMMARY} } }`,
    ];
    for (const query of queries) {
      const result = await graphql(app, query);
      expect(result.errors, query).toBeUndefined();
    }
  });
});
