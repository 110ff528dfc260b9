// The real server process against a PostgreSQL of the test's own (a primary and a streaming standby
// it creates): every kind of connection the service holds is ended by the server
// (pg_terminate_backend: 57P01, as in a restart or failover) and the primary is restarted under load.
// The process must live, /readyz must say 503 while the primary is away and 200 once it is back, and
// every row a mutation acknowledged must be there afterwards.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LISTENER_APPLICATION_NAME } from '../src/database/change-listener.js';
import { migrateDeploy } from '../src/database/migrations.js';
import { PROBE_APPLICATION_NAME } from '../src/database/probe-connection.js';
import { WITHOUT_DOTENV } from './support/environment.js';
import { type ReplicatedCluster, startReplicatedCluster } from './support/replica.js';
import { type ServerProcess, startServer } from './support/server-process.js';
import { SseSubscription } from './support/sse.js';

const TOKEN = 'test-ingest-token-0123456789abcdef';
const DAY = Date.parse('2026-06-01T00:00:00Z');
const DATABASE = 'metrics';

let cluster: ReplicatedCluster;
let primaryUrl: string;
let standbyUrl: string;
let server: ServerProcess;

beforeAll(async () => {
  cluster = await startReplicatedCluster();
  primaryUrl = cluster.primaryUrl.replace(/\/postgres$/, `/${DATABASE}`);
  standbyUrl = cluster.standbyUrl.replace(/\/postgres$/, `/${DATABASE}`);
  await migrateDeploy(primaryUrl);
  await cluster.caughtUp();
  server = await startServer({
    PATH: process.env.PATH,
    ...WITHOUT_DOTENV,
    NODE_ENV: 'production',
    METRICS_PUBLIC: 'true',
    LOG_LEVEL: 'info',
    DATABASE_URL: primaryUrl,
    DATABASE_READ_URL: standbyUrl,
    DATABASE_POOL_SIZE: '4',
    DATABASE_CONNECT_TIMEOUT_MS: '1000',
    INGEST_TOKEN: TOKEN,
    AGGREGATE_CACHE_BYTES: '0',
    ACCESS_LOG: 'false',
  });
});
afterAll(async () => {
  await server?.stop();
  await cluster?.stop();
});

async function sql<Row extends pg.QueryResultRow>(url: string, text: string): Promise<Row[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<Row>(text)).rows;
  } finally {
    await client.end();
  }
}

/** Ends the sessions of the service's database on `url` that `where` picks; how many. */
async function terminate(url: string, where: string): Promise<number> {
  const [row] = await sql<{ n: number }>(
    url,
    `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
      WHERE datname = '${DATABASE}' AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND ${where}`,
  );
  return row?.n ?? 0;
}

/** Samples one a second from `from` (seconds after DAY). */
const samples = (from: number, count: number) =>
  Array.from({ length: count }, (_, i) => ({
    timestamp: new Date(DAY + (from + i) * 1000).toISOString(),
    cpuLoad: ((from + i) % 10) / 4,
    concurrency: (from + i) % 7,
  }));

async function graphql(body: { query: string; variables?: unknown }, headers: Record<string, string> = {}) {
  const response = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return (await response.json()) as {
    data?: Record<string, { inserted?: number; count?: number }> | null;
    errors?: { extensions?: { code?: string } }[];
  };
}

const INGEST = 'mutation($s: [MetricInput!]!) { ingestMetrics(samples: $s) { inserted } }';
const ingest = (from: number, count: number) =>
  graphql({ query: INGEST, variables: { s: samples(from, count) } }, { authorization: `Bearer ${TOKEN}` });
const read = (primary = false) =>
  graphql({ query: '{ metricsSummary { count } }' }, primary ? { 'x-read-from': 'primary' } : {});

/** The timestamps of `samples(from, count)` that are stored on the primary. */
async function storedOf(from: number, count: number): Promise<number> {
  const [row] = await sql<{ n: number }>(
    primaryUrl,
    `SELECT count(*)::int AS n FROM metrics WHERE "timestamp" >= '${new Date(DAY + from * 1000).toISOString()}'
       AND "timestamp" < '${new Date(DAY + (from + count) * 1000).toISOString()}'`,
  );
  return row?.n ?? 0;
}

const readyz = async () => (await fetch(`${server.url}/readyz`)).status;

function expectAlive() {
  expect(server.child.exitCode, server.output()).toBeNull();
  expect(server.output()).not.toMatch(/Unhandled|Emitted 'error' event/);
}

describe('every connection the service holds, ended by the server', () => {
  it('idle pooled connections: the next requests get new ones', async () => {
    await Promise.all([read(true), read(true), read(), read()]);
    expect(await terminate(primaryUrl, "application_name = '' AND state = 'idle'")).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expectAlive();
    expect((await read(true)).data?.metricsSummary?.count).toBe(0);
  });

  it('a connection checked out mid-COPY in a mutation: the mutation fails coded, stores nothing, and a retry stores it', async () => {
    // Holding the revision row makes the mutation's COPY wait in its statement trigger, after
    // COPY has begun: the connection is checked out, in a transaction, mid-COPY.
    const blocker = new pg.Client({ connectionString: primaryUrl });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT 1 FROM metrics_revision FOR UPDATE');
      const mutation = ingest(0, 20);
      await expect
        .poll(
          () =>
            sql<{ n: number }>(
              primaryUrl,
              `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = '${DATABASE}' AND query LIKE 'COPY%' AND wait_event_type = 'Lock'`,
            ).then((rows) => rows[0]?.n),
          { timeout: 10_000 },
        )
        .toBe(1);
      expect(await terminate(primaryUrl, "query LIKE 'COPY%'")).toBe(1);
      const failed = await mutation;
      expect(failed.errors?.[0]?.extensions?.code).toBe('DATABASE_UNAVAILABLE');
    } finally {
      await blocker.query('ROLLBACK');
      await blocker.end();
    }
    expectAlive();
    expect(await storedOf(0, 20)).toBe(0);
    expect((await ingest(0, 20)).data?.ingestMetrics?.inserted).toBe(20);
    expect(await storedOf(0, 20)).toBe(20);
  });

  it('the LISTEN connection: it reconnects and subscribers get what is written after', async () => {
    const subscription = new SseSubscription<{ metricsAdded: { node: { timestamp: string } } }>(
      server.url,
      'subscription { metricsAdded { node { timestamp } } }',
    );
    try {
      await subscription.opened;
      expect(subscription.status).toBe(200);
      const listener = `application_name = '${LISTENER_APPLICATION_NAME}'`;
      await expect.poll(() => terminate(primaryUrl, listener), { timeout: 10_000 }).toBe(1);
      const listening = () =>
        sql<{ n: number }>(
          primaryUrl,
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = '${DATABASE}' AND ${listener}`,
        ).then((rows) => rows[0]?.n);
      await expect.poll(listening, { timeout: 15_000 }).toBe(1);
      expectAlive();
      expect((await ingest(1000, 3)).data?.ingestMetrics?.inserted).toBe(3);
      const wanted = samples(1000, 3).map((sample) => sample.timestamp);
      await subscription.until(
        () =>
          wanted.every((timestamp) =>
            subscription.events.some((event) => event.data?.metricsAdded.node.timestamp === timestamp),
          ),
        15_000,
        'the samples written after the listener reconnected',
      );
    } finally {
      subscription.close();
    }
  });

  it("the read replica's connections (reads and readiness): new ones are made", async () => {
    await cluster.caughtUp();
    await Promise.all([read(), read(), readyz()]);
    expect(await terminate(standbyUrl, 'true')).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expectAlive();
    await expect.poll(async () => (await read()).data?.metricsSummary?.count, { timeout: 10_000 }).toBe(23);
    await expect.poll(readyz, { timeout: 10_000 }).toBe(200);
    // And readiness's own connection to the primary.
    expect(await terminate(primaryUrl, `application_name = '${PROBE_APPLICATION_NAME}'`)).toBe(1);
    await expect.poll(readyz, { timeout: 10_000 }).toBe(200);
    expectAlive();
  });
});

describe('the primary restarted under load', () => {
  it('the process lives, /readyz goes 503 then 200, and every acknowledged row is stored', async () => {
    let running = true;
    const acknowledged: [from: number, count: number][] = [];
    let fetchFailures = 0;
    let next = 100_000;
    const BATCH = 25;
    const writer = async () => {
      while (running) {
        const from = next;
        next += BATCH;
        const answer = await ingest(from, BATCH).catch(() => {
          fetchFailures++;
          return undefined;
        });
        if (answer?.data?.ingestMetrics?.inserted === BATCH) acknowledged.push([from, BATCH]);
        else await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    const reader = async (index: number) => {
      while (running) {
        const answer = await (index % 2 === 0
          ? read(index % 4 === 0)
          : graphql({ query: '{ metrics(first: 20) { edges { node { id cpuLoad } } } }' })
        ).catch(() => {
          fetchFailures++;
          return undefined;
        });
        if (answer?.errors) await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    const load = [writer(), writer(), ...Array.from({ length: 6 }, (_, index) => reader(index))];
    const statuses: number[] = [];
    try {
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const before = acknowledged.length;
      expect(before).toBeGreaterThan(0);
      await cluster.stopPrimary();
      await expect
        .poll(
          async () => {
            statuses.push(await readyz());
            return statuses.at(-1);
          },
          { timeout: 15_000, interval: 100 },
        )
        .toBe(503);
      expectAlive();
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await cluster.startPrimary();
      await expect
        .poll(
          async () => {
            statuses.push(await readyz());
            return statuses.at(-1);
          },
          { timeout: 45_000, interval: 200 },
        )
        .toBe(200);
      // Writes are acknowledged again after the restart.
      const afterRestart = acknowledged.length;
      await expect.poll(() => acknowledged.length, { timeout: 15_000 }).toBeGreaterThan(afterRestart);
    } finally {
      running = false;
      await Promise.all(load);
    }
    expectAlive();
    expect(fetchFailures).toBe(0);
    expect(statuses).toContain(503);
    let stored = 0;
    for (const [from, count] of acknowledged) stored += await storedOf(from, count);
    expect(stored).toBe(acknowledged.length * BATCH);
    expect(server.output()).toContain('Database unavailable');
  });
});
