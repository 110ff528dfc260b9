import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/database.js';

let db: TestDatabase;
const clients: pg.Client[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await Promise.all(clients.map((client) => client.end()));
  await db.drop();
});

async function connect(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  clients.push(client);
  return client;
}

async function revision(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ revision: string }>('SELECT revision FROM metrics_revision');
  expect(rows).toHaveLength(1);
  return Number(rows[0]?.revision);
}

describe('metrics_revision', () => {
  it('moves with every statement that writes to metrics, and only when it commits', async () => {
    const sql = await connect();
    const writes = [
      `INSERT INTO metrics ("timestamp", cpu_load, concurrency) VALUES ('2026-01-01T00:00:00Z', 1, 1), ('2026-01-01T00:00:01Z', 2, 2)`,
      `INSERT INTO metrics ("timestamp", cpu_load, concurrency) VALUES ('2026-01-01T00:00:00Z', 9, 9) ON CONFLICT DO NOTHING`,
      'UPDATE metrics SET cpu_load = cpu_load + 1',
      `DELETE FROM metrics WHERE "timestamp" = '2026-01-01T00:00:01Z'`,
      'TRUNCATE metrics',
    ];
    for (const write of writes) {
      const before = await revision(sql);
      await sql.query(write);
      expect(await revision(sql), write).toBe(before + 1);
    }

    const before = await revision(sql);
    await sql.query('BEGIN');
    await sql.query(
      `INSERT INTO metrics ("timestamp", cpu_load, concurrency) VALUES ('2026-01-02T00:00:00Z', 1, 1)`,
    );
    await sql.query('ROLLBACK');
    expect(await revision(sql)).toBe(before);
    await sql.query('SELECT count(*) FROM metrics');
    expect(await revision(sql)).toBe(before);
  });

  it('keeps a single row', async () => {
    const sql = await connect();
    await expect(sql.query('INSERT INTO metrics_revision (id, revision) VALUES (false, 0)')).rejects.toThrow(
      /metrics_revision_single_row/,
    );
    await expect(sql.query('INSERT INTO metrics_revision DEFAULT VALUES')).rejects.toThrow(
      /metrics_revision_pkey/,
    );
  });

  it('queues writers that touch the same keys instead of deadlocking them', async () => {
    const [first, second] = [await connect(), await connect()];
    const insert = (client: pg.Client, second: number) =>
      client.query(
        `INSERT INTO metrics ("timestamp", cpu_load, concurrency)
         VALUES (to_timestamp(${Date.UTC(2026, 5, 1) / 1000 + second}), 1, 1) ON CONFLICT DO NOTHING`,
      );
    await first.query('BEGIN');
    await insert(first, 1);
    // The second writer inserts a key the first will insert next. Had it taken that key before
    // waiting for the revision (an AFTER trigger), each would wait for the other.
    await second.query('BEGIN');
    const secondWrites = insert(second, 2).then(() => insert(second, 1));
    await new Promise((resolve) => setTimeout(resolve, 200));
    await insert(first, 2);
    await first.query('COMMIT');
    await secondWrites;
    await second.query('COMMIT');
    const { rows } = await first.query<{ count: number }>(
      `SELECT count(*)::int AS count FROM metrics WHERE "timestamp" >= to_timestamp(${Date.UTC(2026, 5, 1) / 1000})`,
    );
    expect(rows[0]?.count).toBe(2);
  });
});
