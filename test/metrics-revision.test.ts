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

/** Returns once the backend `pid` waits for a lock. */
async function waitForLock(observer: pg.Client, pid: number) {
  for (let attempt = 0; attempt < 250; attempt++) {
    const { rows } = await observer.query<{ waiting: boolean }>(
      `SELECT wait_event_type = 'Lock' AS waiting FROM pg_stat_activity WHERE pid = $1`,
      [pid],
    );
    if (rows[0]?.waiting) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`backend ${pid} never waited for a lock`);
}

async function revision(client: pg.Client): Promise<string> {
  const { rows } = await client.query<{ revision: string }>('SELECT revision FROM public.metrics_revision');
  expect(rows).toHaveLength(1);
  return rows[0]?.revision as string;
}

describe('metrics_revision', () => {
  it('changes with every statement that writes to metrics, and only when it commits', async () => {
    const sql = await connect();
    const writes = [
      `INSERT INTO metrics ("timestamp", cpu_load, concurrency) VALUES ('2026-01-01T00:00:00Z', 1, 1), ('2026-01-01T00:00:01Z', 2, 2)`,
      `INSERT INTO metrics ("timestamp", cpu_load, concurrency) VALUES ('2026-01-01T00:00:00Z', 9, 9) ON CONFLICT DO NOTHING`,
      'UPDATE metrics SET cpu_load = cpu_load + 1',
      `DELETE FROM metrics WHERE "timestamp" = '2026-01-01T00:00:01Z'`,
      'TRUNCATE metrics',
    ];
    const seen = new Set([await revision(sql)]);
    for (const write of writes) {
      await sql.query(write);
      const after = await revision(sql);
      expect(seen.has(after), write).toBe(false);
      seen.add(after);
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
    await expect(sql.query('INSERT INTO metrics_revision (id) VALUES (false)')).rejects.toThrow(
      /metrics_revision_single_row/,
    );
    await expect(sql.query('INSERT INTO metrics_revision DEFAULT VALUES')).rejects.toThrow(
      /metrics_revision_pkey/,
    );
  });

  const at = (second: number) => `to_timestamp(${Date.UTC(2026, 3, 1) / 1000 + second})`;
  const insertAt = (client: pg.Client, second: number) =>
    client.query(
      `INSERT INTO public.metrics ("timestamp", cpu_load, concurrency) VALUES (${at(second)}, 1, 1)`,
    );

  it("changes whatever the writer's search_path", async () => {
    const sql = await connect();
    const before = await revision(sql);
    await sql.query('SET search_path TO pg_catalog');
    await insertAt(sql, 1);
    expect(await revision(sql)).not.toBe(before);
  });

  it('changes for a role that may write metrics but nothing on metrics_revision', async () => {
    const sql = await connect();
    const role = `metrics_writer_${db.name.slice(-12)}`;
    await sql.query(`CREATE ROLE ${role} NOLOGIN`);
    try {
      await sql.query(`GRANT USAGE ON SCHEMA public TO ${role}`);
      await sql.query(`GRANT INSERT ON metrics TO ${role}`);
      await sql.query(`GRANT USAGE ON SEQUENCE metrics_id_seq TO ${role}`);
      const before = await revision(sql);
      await sql.query(`SET ROLE ${role}`);
      await insertAt(sql, 2);
      await sql.query('RESET ROLE');
      expect(await revision(sql)).not.toBe(before);
    } finally {
      await sql.query('RESET ROLE');
      await sql.query(`DROP OWNED BY ${role}`);
      await sql.query(`DROP ROLE ${role}`);
    }
  });

  it('changes for rows written as logical replication writes them: one row at a time, in replica mode', async () => {
    const sql = await connect();
    const changesRevision = async (write: string) => {
      const before = await revision(sql);
      await sql.query(write);
      return (await revision(sql)) !== before;
    };
    // The apply worker fires no statement trigger but TRUNCATE's; leave only the row trigger.
    await sql.query('ALTER TABLE metrics DISABLE TRIGGER metrics_new_revision');
    try {
      await sql.query('SET session_replication_role TO replica');
      expect(
        await changesRevision(
          `INSERT INTO metrics ("timestamp", cpu_load, concurrency) VALUES (${at(3)}, 1, 1)`,
        ),
      ).toBe(true);
      expect(await changesRevision(`UPDATE metrics SET concurrency = 9 WHERE "timestamp" = ${at(3)}`)).toBe(
        true,
      );
      const { rows } = await sql.query<{ concurrency: number }>(
        `SELECT concurrency FROM metrics WHERE "timestamp" = ${at(3)}`,
      );
      expect(rows).toEqual([{ concurrency: 9 }]);
      expect(await changesRevision(`DELETE FROM metrics WHERE "timestamp" = ${at(3)}`)).toBe(true);
      expect((await sql.query(`SELECT 1 FROM metrics WHERE "timestamp" = ${at(3)}`)).rowCount).toBe(0);

      // Ordinary sessions do not pay a row trigger: there the statement trigger does the work.
      await sql.query('SET session_replication_role TO origin');
      expect(
        await changesRevision(
          `INSERT INTO metrics ("timestamp", cpu_load, concurrency) VALUES (${at(4)}, 1, 1)`,
        ),
      ).toBe(false);
    } finally {
      await sql.query('SET session_replication_role TO origin');
      await sql.query('ALTER TABLE metrics ENABLE ALWAYS TRIGGER metrics_new_revision');
    }
    await sql.query('SET session_replication_role TO replica');
    expect(await changesRevision(`DELETE FROM metrics WHERE "timestamp" = ${at(4)}`)).toBe(true);
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
    await waitForLock(first, (second as pg.Client & { processID: number }).processID);
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
