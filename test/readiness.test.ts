// /readyz answers whether the database is reachable, never whether the pool is busy: it probes on
// a connection of its own, one probe at a time however many ask, and says why when it is not.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresConnection } from '../src/database/connection.js';
import { PROBE_APPLICATION_NAME } from '../src/database/probe-connection.js';
import type { App } from '../src/http/app.js';
import { createTestApp } from './support/app.js';
import { connectTest, createTestDatabase, type TestDatabase } from './support/database.js';
import { TcpProxy } from './support/tcp-proxy.js';

const POOL_SIZE = 2;
const READINESS_TIMEOUT_MS = 1000;

let db: TestDatabase;
let proxy: TcpProxy;
let connection: PostgresConnection & { url: string };
let app: App;

beforeAll(async () => {
  db = await createTestDatabase();
  const target = new URL(db.url);
  proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
  await proxy.start();
  const proxied = new URL(db.url);
  proxied.port = String(proxy.port);
  connection = { ...connectTest(proxied.toString(), POOL_SIZE), url: proxied.toString() };
  app = createTestApp(connection, {
    DATABASE_POOL_SIZE: String(POOL_SIZE),
    READINESS_TIMEOUT_MS: String(READINESS_TIMEOUT_MS),
  });
});
afterAll(async () => {
  await app.dispose();
  await connection.close();
  await proxy.stop();
  await db.drop();
});

const readyz = async () => {
  const started = performance.now();
  const response = await app.fetch('http://localhost/readyz');
  return { status: response.status, body: await response.json(), ms: performance.now() - started };
};

/** The backends of this database whose application_name is `name`. */
async function backendsNamed(name: string): Promise<number> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1',
      [name],
    );
    return rows[0]?.n ?? 0;
  } finally {
    await client.end();
  }
}

describe('/readyz', () => {
  it('stays ready while every pooled connection is busy with a long statement', async () => {
    expect((await readyz()).status).toBe(200);
    // Both connections of the pool, and a queue behind them, held for 8 s.
    const sleeping = Array.from({ length: POOL_SIZE + 2 }, () =>
      connection.pool.query('SELECT pg_sleep(8)').catch(() => undefined),
    );
    try {
      await expect.poll(() => connection.pool.waitingCount, { timeout: 5000 }).toBeGreaterThan(0);
      expect(connection.pool.idleCount).toBe(0);
      for (let probe = 0; probe < 3; probe++) {
        const answer = await readyz();
        expect(answer).toMatchObject({ status: 200, body: { status: 'ready' } });
        // Within its timeout, with room for a loaded machine.
        expect(answer.ms).toBeLessThan(READINESS_TIMEOUT_MS);
      }
      // Many probes at once run one statement on one connection.
      const answers = await Promise.all(Array.from({ length: 20 }, readyz));
      expect(answers.map((answer) => answer.status)).toEqual(Array(20).fill(200));
      expect(await backendsNamed(PROBE_APPLICATION_NAME)).toBe(1);
    } finally {
      // Cancelled, and those queued behind them as they start.
      let settled = false;
      void Promise.all(sleeping).then(() => {
        settled = true;
      });
      while (!settled) {
        await db.pool.query(
          "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(8)' AND datname = current_database()",
        );
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  });

  it('answers 503 with the reason while the database is away, and 200 once it is back', async () => {
    await proxy.stop();
    try {
      const away = await readyz();
      expect(away.status).toBe(503);
      expect(away.body).toMatchObject({
        status: 'unavailable',
        reason: expect.stringMatching(/^database: /),
      });
      expect(away.ms).toBeLessThan(READINESS_TIMEOUT_MS + 1000);
    } finally {
      await proxy.start();
    }
    await expect.poll(async () => (await readyz()).status, { timeout: 10_000 }).toBe(200);
  });

  it('makes a new probe connection after the server ended its own', async () => {
    expect((await readyz()).status).toBe(200);
    await db.pool.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
      [PROBE_APPLICATION_NAME],
    );
    // The process lives, and a new probe connection is made.
    await expect.poll(async () => (await readyz()).status, { timeout: 10_000 }).toBe(200);
    expect(await backendsNamed(PROBE_APPLICATION_NAME)).toBe(1);
  });
});
