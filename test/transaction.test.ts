// The one transaction helper of the stores: committed on success, rolled back on failure, and a
// connection whose ROLLBACK failed destroyed rather than handed back to the pool. A backend ended
// by the server mid-transaction (57P01) must not crash the process.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTransaction } from '../src/store/transaction.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.pool.query('CREATE TABLE transaction_test (n int)');
});
afterAll(async () => {
  await db.drop();
});

const backendPid = async (client: { query: (text: string) => Promise<{ rows: { pid: number }[] }> }) =>
  (await client.query('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;

describe('withTransaction', () => {
  it('commits what the work wrote, opened with the given text', async () => {
    const isolation = await withTransaction(
      db.pool,
      'BEGIN ISOLATION LEVEL SERIALIZABLE; SET LOCAL TimeZone TO UTC',
      async (client) => {
        await client.query('INSERT INTO transaction_test VALUES (1)');
        const { rows } = await client.query<{ level: string }>('SELECT current_setting($1) AS level', [
          'transaction_isolation',
        ]);
        return rows[0]?.level;
      },
    );
    expect(isolation).toBe('serializable');
    const { rows } = await db.pool.query('SELECT n FROM transaction_test');
    expect(rows).toEqual([{ n: 1 }]);
  });

  it('rolls back on failure, rethrows the failure, and keeps the healthy connection', async () => {
    const before = db.pool.totalCount;
    let pid: number | undefined;
    await expect(
      withTransaction(db.pool, 'BEGIN', async (client) => {
        pid = await backendPid(client);
        await client.query('INSERT INTO transaction_test VALUES (2)');
        await client.query('SELECT 1 / 0');
      }),
    ).rejects.toMatchObject({ code: '22012' });
    const { rows } = await db.pool.query('SELECT n FROM transaction_test WHERE n = 2');
    expect(rows).toEqual([]);
    expect(db.pool.totalCount).toBe(Math.max(before, 1));
    // The connection went back to the pool: the next checkout is the same backend.
    const again = await db.pool.connect();
    try {
      expect(await backendPid(again)).toBe(pid);
    } finally {
      again.release();
    }
  });

  it('destroys a connection whose server ended it mid-transaction, and the process lives', async () => {
    let pid: number | undefined;
    await expect(
      withTransaction(db.pool, 'BEGIN', async (client) => {
        pid = await backendPid(client);
        await client.query('INSERT INTO transaction_test VALUES (3)');
        // Another session ends this one, as a restart or pg_terminate_backend does: the client
        // gets 57P01 and then 'error' while it is checked out, idle in transaction.
        await db.pool.query('SELECT pg_terminate_backend($1)', [pid]);
        await new Promise((resolve) => setTimeout(resolve, 200));
        await client.query('INSERT INTO transaction_test VALUES (4)');
      }),
    ).rejects.toThrow();
    // The next checkouts are live connections, none of them the ended backend.
    for (let i = 0; i < 3; i++) {
      const { rows } = await db.pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      expect(rows[0]?.pid).not.toBe(pid);
    }
    const { rows } = await db.pool.query('SELECT n FROM transaction_test WHERE n IN (3, 4)');
    expect(rows).toEqual([]);
  });
});
