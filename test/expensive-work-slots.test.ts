import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../src/http/app.js';
import { ExpensiveWorkSlots } from '../src/http/expensive-work-slots.js';
import { createTestApp, graphql } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

describe('ExpensiveWorkSlots', () => {
  const gate = () => {
    let open = () => {};
    const opened = new Promise<void>((resolve) => {
      open = resolve;
    });
    return { open, opened };
  };

  it('lets a client alone use every slot, and gives a freed slot to the waiting client with the least running', async () => {
    const slots = new ExpensiveWorkSlots(2);
    const gates = [gate(), gate(), gate(), gate()];
    const order: string[] = [];
    const flood = gates.map((g, i) =>
      slots.run('a', async () => {
        order.push(`a${i}`);
        await g.opened;
      }),
    );
    await Promise.resolve();
    // Alone, client a runs in both slots; the rest of its work waits.
    expect(slots.usage('a')).toEqual({ running: 2, waiting: 2, runningInAll: 2 });
    const b = gate();
    const other = slots.run('b', async () => {
      order.push('b');
      await b.opened;
    });
    await Promise.resolve();
    expect(slots.usage('b')).toEqual({ running: 0, waiting: 1, runningInAll: 2 });
    // The first slot to free goes to b (nothing running), ahead of a's two waiting.
    gates[0]?.open();
    await flood[0];
    expect(order).toEqual(['a0', 'a1', 'b']);
    expect(slots.usage('b')).toEqual({ running: 1, waiting: 0, runningInAll: 2 });
    // The next one goes back to a, first come first served within a client.
    gates[1]?.open();
    await flood[1];
    expect(order).toEqual(['a0', 'a1', 'b', 'a2']);
    b.open();
    for (const g of gates) g.open();
    await Promise.all([...flood, other]);
    expect(order).toEqual(['a0', 'a1', 'b', 'a2', 'a3']);
    // Nothing is kept for a client with nothing running or waiting.
    expect(slots.usage('a')).toEqual({ running: 0, waiting: 0, runningInAll: 0 });
  });

  it('frees a slot when work fails, and drops waiting work whose request was abandoned', async () => {
    const slots = new ExpensiveWorkSlots(1);
    const held = gate();
    const running = slots.run('a', () => held.opened);
    const abandoned = new AbortController();
    const waiting = slots.run('b', async () => 'never', abandoned.signal);
    abandoned.abort(new Error('client went away'));
    await expect(waiting).rejects.toThrow('client went away');
    expect(slots.usage('b')).toEqual({ running: 0, waiting: 0, runningInAll: 1 });
    held.open();
    await running;
    await expect(slots.run('a', () => Promise.reject(new Error('failed')))).rejects.toThrow('failed');
    expect(await slots.run('a', async () => 'next')).toBe('next');
    expect(slots.usage('a')).toEqual({ running: 0, waiting: 0, runningInAll: 0 });
  });
});

const START = Date.UTC(2026, 0, 1);
/** 20 days, a sample every 5 seconds: an uncached summary of it takes a while. */
const ROWS = 20 * 24 * 720;

let db: TestDatabase;
let app: App;
beforeAll(async () => {
  db = await createTestDatabase();
  await db.pool.query(
    `INSERT INTO metrics ("timestamp", cpu_load, concurrency)
       SELECT $1::timestamptz + n * interval '5 seconds', (n % 97) / 10.0, n % 13 FROM generate_series(0, $2 - 1) AS n`,
    [new Date(START), ROWS],
  );
  await db.pool.query('ANALYZE metrics');
  // Every summary is computed afresh; the pool is the test database's four connections, two of them
  // for expensive work (the default: the pool less two).
  app = createTestApp(db, {
    CLIENT_ADDRESS_HEADER: 'x-forwarded-for',
    AGGREGATE_CACHE_BYTES: '0',
    DATABASE_POOL_SIZE: '4',
  });
}, 120_000);
afterAll(() => db.drop());

const summaryOf = (client: string, offsetSeconds: number) =>
  graphql(
    app,
    `{ metricsSummary(start: "${new Date(START + offsetSeconds * 1000).toISOString()}") { count cpuLoad { p50 p99 } } }`,
    {},
    { 'x-forwarded-for': client },
  );

async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; result: T }> {
  const started = performance.now();
  const result = await work();
  return { ms: performance.now() - started, result };
}

/** Connections of the test database running a statement or inside a transaction, but `own`'s. */
async function busyConnections(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'`,
  );
  return rows[0]?.n ?? 0;
}

describe('a client flooding expensive queries', () => {
  it('holds at most MAX_EXPENSIVE_OPERATIONS connections; another client is served within a slot and /readyz stays ready', async () => {
    const observer = new pg.Client({ connectionString: db.url });
    await observer.connect();
    try {
      const alone = await timed(() => summaryOf('10.0.0.2', 1));
      expect(alone.result.errors).toBeUndefined();

      let flooding = true;
      const flood = Array.from({ length: 24 }, (_, i) => summaryOf('10.0.0.1', 100 + i));
      void Promise.all(flood).finally(() => {
        flooding = false;
      });
      // While client A alone floods: it may use both slots, never more.
      const busy: number[] = [];
      for (let sample = 0; sample < 10 && flooding; sample++) {
        busy.push(await busyConnections(observer));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(Math.max(...busy)).toBeLessThanOrEqual(2);
      expect(Math.max(...busy)).toBeGreaterThanOrEqual(1);

      const [page, summary, ready] = await Promise.all([
        timed(() =>
          graphql(app, '{ metrics(first: 100) { edges { cursor } } }', {}, { 'x-forwarded-for': '10.0.0.2' }),
        ),
        timed(() => summaryOf('10.0.0.2', 2)),
        app.fetch('http://localhost/readyz'),
      ]);
      expect(ready.status).toBe(200);
      expect(page.result.errors).toBeUndefined();
      expect(summary.result.errors).toBeUndefined();
      const stillFlooding = flooding;
      const results = await Promise.all(flood);
      expect(results.every((result) => result.errors === undefined)).toBe(true);
      // Client B waited for one of A's summaries at most, not for A's 24: its own took about as long
      // as two alone (generous: the machine is shared), and A was still at it when B had its answers.
      expect(stillFlooding).toBe(true);
      expect(summary.ms).toBeLessThan(alone.ms * 4 + 1000);
      expect(page.ms).toBeLessThan(alone.ms * 2 + 1000);
    } finally {
      await observer.end();
    }
  });
});
