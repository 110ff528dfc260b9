import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateDeploy } from '../src/database/migrations.js';
import { createTestApp, graphql } from './support/app.js';
import { connectTest, createEmptyDatabase } from './support/database.js';

let database: Awaited<ReturnType<typeof createEmptyDatabase>>;
beforeAll(async () => {
  database = await createEmptyDatabase();
});
afterAll(() => database.drop());

describe('connectPostgres', () => {
  it('reads and writes the schema named by ?schema= in the URL, like the Prisma CLI', async () => {
    const url = `${database.url}?schema=metrics_app`;
    await migrateDeploy(url);
    const connection = connectTest(url, 2);
    const { prisma } = connection;
    try {
      await prisma.metric.create({
        data: { timestamp: new Date('2026-11-26T00:00:00Z'), cpuLoad: 1, concurrency: 2 },
      });
      expect(await prisma.metric.count()).toBe(1);
      // Raw SQL (keyset pages, summaries) finds the table through the search path.
      const app = createTestApp({ ...connection, url });
      const result = await graphql<{ metrics: { edges: unknown[] }; metricsSummary: { count: number } }>(
        app,
        '{ metrics { edges { node { concurrency } } } metricsSummary { count } }',
      );
      expect(result.data).toEqual({
        metrics: { edges: [{ node: { concurrency: 2 } }] },
        metricsSummary: { count: 1 },
      });
    } finally {
      await connection.close();
    }
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    const { rows } = await client.query('SELECT count(*)::int AS n FROM metrics_app.metrics');
    await client.end();
    expect(rows[0].n).toBe(1);
  });

  it('closes every connection of the pool, also when Prisma never ran a query on it', async () => {
    // The ingest script talks through pg alone: idle connections left open would keep its process
    // alive for pg's idle timeout after the load ends.
    const connection = connectTest(database.url, 2);
    await Promise.all([connection.pool.query('SELECT 1'), connection.pool.query('SELECT 1')]);
    expect(connection.pool.totalCount).toBe(2);
    await connection.close();
    expect(connection.pool.totalCount).toBe(0);
    expect(connection.pool.ended).toBe(true);
  });
});
