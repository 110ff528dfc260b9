import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresConnection } from '../src/database/connection.js';
import { encodeCursor } from '../src/domain/cursor.js';
import { createTestApp, graphql } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { connectLogged, explainedPlan, type LoggedStatement } from './support/logged-statements.js';

// Enough rows that the planner prefers the index for real, not because the table is tiny.
const ROWS = 200_000;
/** Rows of each of sources 2 and 3, at the instants of source 1's first rows. */
const OTHER_ROWS = 20_000;
const T0 = Date.UTC(2026, 0, 1);
const at = (ms: number) => ({ timestamp: new Date(ms), sourceId: 1 });

let db: TestDatabase;
let logged: PostgresConnection;
let sql: pg.Client;
let queries: LoggedStatement[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  sql = new pg.Client({ connectionString: db.url });
  await sql.connect();
  await sql.query(
    `INSERT INTO metrics ("timestamp", cpu_load, concurrency)
     SELECT to_timestamp(${T0 / 1000} + g), (g % 100) / 10.0, g % 50 FROM generate_series(0, ${ROWS - 1}) AS g`,
  );
  await sql.query(`INSERT INTO sources (id, name) VALUES (2, 'two'), (3, 'three')`);
  await sql.query(
    `INSERT INTO metrics (source_id, "timestamp", cpu_load, concurrency)
     SELECT s, to_timestamp(${T0 / 1000} + g), 1, 1 FROM generate_series(0, ${OTHER_ROWS - 1}) AS g, generate_series(2, 3) AS s`,
  );
  await sql.query('ANALYZE metrics');
  // The page query runs on the client's pg pool: record what reaches it.
  ({ connection: logged, statements: queries } = connectLogged(db.url, 2));
});
afterAll(async () => {
  await logged.close();
  await sql.end();
  await db.drop();
});

/** Captures the SQL Prisma sends for one GraphQL page, then has Postgres EXPLAIN ANALYZE it. */
async function explainPage(variables: Record<string, unknown>) {
  const app = createTestApp({ ...logged, url: db.url });
  queries.length = 0;
  const result = await graphql<{ metrics: { edges: { node: { timestamp: string } }[] } }>(
    app,
    `query ($first: Int, $last: Int, $after: String, $before: String, $start: DateTime, $end: DateTime,
            $order: SortOrder! = ASC, $source: String, $sources: [String!]) {
      metrics(first: $first, last: $last, after: $after, before: $before, start: $start, end: $end, order: $order,
              source: $source, sources: $sources) {
        edges { node { timestamp } }
      }
    }`,
    variables,
  );
  expect(result.errors).toBeUndefined();
  const pageQueries = queries.filter((q) => q.text.includes('FROM metrics'));
  expect(pageQueries).toHaveLength(1);
  const statement = pageQueries[0] as LoggedStatement;
  const plan = await explainedPlan(sql, statement);
  return {
    query: statement.text,
    params: statement.values,
    plan,
    nodes: result.data?.metrics.edges.map((edge) => edge.node.timestamp) ?? [],
  };
}

describe('keyset pagination SQL', () => {
  it('pages every source with a (timestamp, source_id) bound, ORDER BY both and LIMIT: no skipped rows, no cursor subquery', async () => {
    const { query, params } = await explainPage({
      first: 100,
      after: encodeCursor(at(T0 + 150_000_000)),
    });
    expect(query).toBe(
      'SELECT id, source_id, "timestamp", cpu_load, concurrency FROM metrics WHERE "timestamp" >= $2 AND ("timestamp", source_id) > ($3, $4::int) ORDER BY "timestamp" ASC, source_id ASC LIMIT $1',
    );
    // LIMIT page + 1 tells whether another page follows; no OFFSET, no cursor subquery. The
    // instant alone again, for the partitions' pruning.
    expect(params).toEqual([101, new Date(T0 + 150_000_000), new Date(T0 + 150_000_000), 1]);
  });

  it('pages one source with time bounds alone on its own (source_id, timestamp) index', async () => {
    const { query, params, plan, nodes } = await explainPage({
      first: 100,
      source: 'two',
      after: encodeCursor(at(T0 + 15_000_000)),
    });
    expect(query).toBe(
      'SELECT id, source_id, "timestamp", cpu_load, concurrency FROM metrics WHERE source_id = $2::int AND "timestamp" >= $3 ORDER BY "timestamp" ASC LIMIT $1',
    );
    // Source 2 comes after source 1 at the cursor's instant: its row there is on the page.
    expect(params).toEqual([101, 2, new Date(T0 + 15_000_000)]);
    expect(nodes[0]).toBe(new Date(T0 + 15_000_000).toISOString());
    const scans = plan.filter((node) => node['Node Type'].includes('Scan'));
    expect(scans.map((node) => [node['Node Type'], node['Index Name'], node['Actual Rows']])).toEqual([
      [expect.stringMatching(/^Index (Only )?Scan$/), 'metrics_default_pkey', 101],
    ]);
    expect(plan.some((node) => node['Node Type'] === 'Sort')).toBe(false);
  });

  it('pages a few sources by reading each along its own index, at most a page of each', async () => {
    const { plan, nodes } = await explainPage({
      first: 100,
      sources: ['two', 'three'],
      after: encodeCursor({ timestamp: new Date(T0 + 15_000_000), sourceId: 2 }),
    });
    expect(nodes).toHaveLength(100);
    // (T0 + 15,000 s, source 3) is the first position after (T0 + 15,000 s, source 2).
    expect(nodes.slice(0, 3)).toEqual(
      [15_000, 15_001, 15_001].map((s) => new Date(T0 + s * 1000).toISOString()),
    );
    const scans = plan.filter((node) => node['Node Type'].includes('Scan') && node['Index Name']);
    expect(scans.map((node) => node['Index Name'])).toEqual(['metrics_default_pkey']);
    // Looped once per source, each stopping after the page: no other source's row is read.
    expect((scans[0]?.['Actual Rows'] ?? 0) * (scans[0]?.['Actual Loops'] ?? 0)).toBeLessThanOrEqual(2 * 101);
  });

  it.each([
    ['the first page', { first: 100 }, T0],
    ['a page 180,000 rows deep', { first: 100, after: encodeCursor(at(T0 + 180_000_000)) }, T0 + 180_001_000],
    ['a backward page from the end', { last: 100 }, T0 + (ROWS - 100) * 1000],
    [
      'a deep page, newest first',
      { first: 100, order: 'DESC', after: encodeCursor(at(T0 + 20_000_000)) },
      T0 + 19_999_000,
    ],
    [
      'a deep page inside a time window',
      {
        first: 100,
        start: (T0 + 100_000_000) / 1000,
        end: (T0 + 190_000_000) / 1000,
        after: encodeCursor(at(T0 + 150_000_000)),
      },
      T0 + 150_001_000,
    ],
  ])(
    'reads %s with one range scan of the (timestamp, source_id) index, touching only the page',
    async (_label, variables, firstMs) => {
      const { plan, nodes } = await explainPage(variables);
      expect(nodes).toHaveLength(100);
      expect(nodes[0]).toBe(new Date(firstMs).toISOString());
      const scans = plan.filter((node) => node['Node Type'].includes('Scan'));
      expect(scans.map((node) => [node['Node Type'], node['Index Name']])).toEqual([
        // The rows have no partition of their own here: the default partition's (timestamp,
        // source_id) index, which orders a page over every source.
        [expect.stringMatching(/^Index (Only )?Scan$/), 'metrics_default_timestamp_source_id_idx'],
      ]);
      expect(plan.some((node) => node['Node Type'] === 'Sort')).toBe(false);
      // LIMIT page + 1: the scan stops after the page, however deep it starts.
      expect(scans[0]?.['Actual Rows']).toBe(101);
    },
  );
});
