import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresConnection } from '../src/database/connection.js';
import type { App } from '../src/http/app.js';
import { createTestApp, graphql } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import {
  connectLogged,
  explainedPlan,
  type LoggedStatement,
  type PlanNode,
} from './support/logged-statements.js';

// A fleet written as agents write it: every source's sample of an instant, then the next instant,
// so that in the heap each source's rows lie one or two to a page among the others'.
const SOURCES = 40;
const STEPS = 2_000;
const T0 = Date.UTC(2026, 0, 1);
const MEASURED = 'host-17';

let db: TestDatabase;
let logged: PostgresConnection;
let statements: LoggedStatement[] = [];
let sql: pg.Client;
let app: App;

beforeAll(async () => {
  db = await createTestDatabase();
  sql = new pg.Client({ connectionString: db.url });
  await sql.connect();
  await sql.query(
    `INSERT INTO sources (id, name) SELECT s, 'host-' || s FROM generate_series(2, ${SOURCES + 1}) AS s`,
  );
  await sql.query(
    `INSERT INTO metrics (source_id, "timestamp", cpu_load, concurrency)
     SELECT s, to_timestamp(${T0 / 1000} + g * 10), ((g * s) % 97) / 8.0, (g + s) % 13
       FROM generate_series(0, ${STEPS - 1}) AS g, generate_series(2, ${SOURCES + 1}) AS s
      ORDER BY g, s`,
  );
  // What autovacuum does to a table that is inserted into: sets its pages all-visible.
  await sql.query('VACUUM (ANALYZE) metrics');
  ({ connection: logged, statements } = connectLogged(db.url, 2));
  app = createTestApp({ ...logged, url: db.url });
});
afterAll(async () => {
  await app?.dispose();
  await logged?.close();
  await sql?.end();
  await db?.drop();
});

/** The scans of the metrics partitions in PostgreSQL's plan of `statement`, run. */
async function scansOf(statement: LoggedStatement): Promise<PlanNode[]> {
  return (await explainedPlan(sql, statement)).filter(
    (node) => node['Relation Name']?.startsWith('metrics') && node['Relation Name'] !== 'metrics_revision',
  );
}

/** Runs a GraphQL query that must succeed; returns its data and the statements it ran. */
async function run<Data>(query: string): Promise<{ data: Data; ran: LoggedStatement[] }> {
  statements.length = 0;
  const result = await graphql<Data>(app, query);
  expect(result.errors).toBeUndefined();
  return { data: result.data as Data, ran: [...statements] };
}

describe("a source's rows in a fleet are read from its index, not from the interleaved heap", () => {
  it('reads a page of one source by an index-only scan: no heap page', async () => {
    const { data, ran } = await run<{ metrics: { nodes: { timestamp: string; cpuLoad: number }[] } }>(
      `{ metrics(source: "${MEASURED}", first: 100, start: "${new Date(T0 + 5_000_000).toISOString()}") {
           nodes { id timestamp cpuLoad concurrency } } }`,
    );
    expect(data.metrics.nodes).toHaveLength(100);
    expect(data.metrics.nodes[0]?.timestamp).toBe(new Date(T0 + 5_000_000).toISOString());
    const page = ran.filter(({ text }) => /FROM metrics\b/.test(text));
    expect(page).toHaveLength(1);
    const scans = await scansOf(page[0] as LoggedStatement);
    expect(scans.map((node) => [node['Node Type'], node['Index Name'], node['Heap Fetches']])).toEqual([
      ['Index Only Scan', expect.stringMatching(/^metrics_default_source_id_timestamp_id_cpu_load_conc/), 0],
    ]);
  });

  it("scans a summary's raw rows (its exact percentiles) by index-only scans, and answers as percentile_cont", async () => {
    // Four hours and a few minutes, from no whole hour: the rollups answer the totals, the raw
    // rows the exact percentiles.
    const start = new Date(T0 + 1_234_000);
    const end = new Date(T0 + 1_234_000 + 4 * 3_600_000 + 420_000);
    const { data, ran } = await run<{
      metricsSummary: {
        count: number;
        percentilesExact: boolean;
        cpuLoad: { p50: number; p95: number; p99: number };
      };
    }>(
      `{ metricsSummary(source: "${MEASURED}", start: "${start.toISOString()}", end: "${end.toISOString()}") {
           count percentilesExact cpuLoad { p50 p95 p99 } } }`,
    );
    const [expected] = (
      await sql.query(
        `SELECT count(*)::int AS count,
                (percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY cpu_load))::real[] AS cpu
           FROM metrics JOIN sources ON sources.id = source_id
          WHERE name = $1 AND "timestamp" >= $2 AND "timestamp" < $3`,
        [MEASURED, start, end],
      )
    ).rows as { count: number; cpu: number[] }[];
    expect(data.metricsSummary.count).toBe(expected?.count);
    expect(data.metricsSummary.percentilesExact).toBe(true);
    const { p50, p95, p99 } = data.metricsSummary.cpuLoad;
    expect([p50, p95, p99]).toEqual(expected?.cpu);

    const rawReads = ran.filter(({ text }) => text.includes('array_agg(cpu_load::float8)'));
    expect(rawReads).toHaveLength(1);
    const scans = await scansOf(rawReads[0] as LoggedStatement);
    expect(scans.length).toBeGreaterThan(0);
    for (const scan of scans) {
      expect([scan['Node Type'], scan['Heap Fetches']]).toEqual(['Index Only Scan', 0]);
    }
    // Every one of the window's rows came from the index.
    const read = scans.reduce(
      (rows, scan) => rows + (scan['Actual Rows'] ?? 0) * (scan['Actual Loops'] ?? 1),
      0,
    );
    expect(read).toBe(expected?.count);
  });
  it("reads a summary's partial hours as ranges of the source's index, not its whole partition filtered", async () => {
    // From 00:31:05 for four hours and nine minutes: two partial hours, whose raw rows the
    // sketches take one by one, and two partial minutes.
    const start = new Date(T0 + 1_865_000);
    const end = new Date(T0 + 1_865_000 + 4 * 3_600_000 + 540_000);
    const { data, ran } = await run<{ metricsSummary: { count: number } }>(
      `{ metricsSummary(source: "${MEASURED}", start: "${start.toISOString()}", end: "${end.toISOString()}") { count } }`,
    );
    expect(data.metricsSummary.count).toBe((end.getTime() - start.getTime()) / 10_000);
    const totals = ran.filter(({ text }) => text.includes('sketch_raw AS MATERIALIZED'));
    expect(totals).toHaveLength(1);
    const scans = await scansOf(totals[0] as LoggedStatement);
    expect(scans.length).toBeGreaterThanOrEqual(2);
    for (const scan of scans) {
      expect([scan['Node Type'], scan['Rows Removed by Filter'] ?? 0]).toEqual(['Index Only Scan', 0]);
    }
    // The partial hours' rows, 173 and 241, and the partial minutes', 5 and 1: each read once.
    const read = scans.reduce(
      (rows, scan) => rows + (scan['Actual Rows'] ?? 0) * (scan['Actual Loops'] ?? 1),
      0,
    );
    expect(read).toBe(173 + 241 + 5 + 1);
  });
});

describe('a source named in a question is looked up once', () => {
  const page = (name: string) => `{ metrics(source: "${name}", first: 10) { nodes { timestamp } } }`;

  it('answers the next question about it with its own statement alone', async () => {
    await run(page('host-5'));
    const { data, ran } = await run<{ metrics: { nodes: unknown[] } }>(page('host-5'));
    expect(data.metrics.nodes).toHaveLength(10);
    expect(ran.map(({ text }) => text).filter((text) => /\bFROM (sources|metrics)\b/.test(text))).toEqual([
      expect.stringMatching(/FROM metrics WHERE source_id = \$2::int/),
    ]);
  });

  it('does not remember a name no source has: the source made next is found at once', async () => {
    const before = await run<{ metrics: { nodes: unknown[] } }>(page('host-new'));
    expect(before.data.metrics.nodes).toEqual([]);
    await sql.query(`INSERT INTO sources (id, name) VALUES (100, 'host-new')`);
    await sql.query(
      `INSERT INTO metrics (source_id, "timestamp", cpu_load) SELECT 100, to_timestamp(${T0 / 1000} + g), 1 FROM generate_series(1, 3) AS g`,
    );
    const after = await run<{ metrics: { nodes: unknown[] } }>(page('host-new'));
    expect(after.data.metrics.nodes).toHaveLength(3);
  });

  it('resolves several names, known and not, to the sources that exist', async () => {
    await run(page('host-7'));
    const { data } = await run<{ metricsSummary: { count: number } }>(
      `{ metricsSummary(sources: ["host-7", "host-8", "nobody"], start: "${new Date(T0).toISOString()}", end: "${new Date(T0 + 100_000).toISOString()}") { count } }`,
    );
    expect(data.metricsSummary.count).toBe(20);
  });
});
