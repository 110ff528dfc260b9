// The service behind pgbouncer in transaction mode: any transaction may run on another server
// connection, so nothing may rely on session state; LISTEN goes to the database directly.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresConnection } from '../src/database/connection.js';
import type { App } from '../src/http/app.js';
import { createTestService, graphql } from './support/app.js';
import { connectTest, createTestDatabase, type TestDatabase } from './support/database.js';
import { runIngest } from './support/ingest.js';
import { capturingLogger } from './support/logs.js';
import { type Pgbouncer, startPgbouncer } from './support/pgbouncer.js';
import { type ServedApp, SseSubscription, serve } from './support/sse.js';

const TOKEN = 'test-ingest-token-0123456789abcdef';
const DAY = Date.parse('2026-06-01T00:00:00Z');

let db: TestDatabase;
let bouncer: Pgbouncer;
let pooled: PostgresConnection & { url: string };
let app: App;
let served: ServedApp;

beforeAll(async () => {
  db = await createTestDatabase();
  bouncer = await startPgbouncer(db.url);
  // Ten clients on three server connections.
  pooled = { ...connectTest(bouncer.url, 10), url: bouncer.url };
  app = createTestService(pooled, {
    INGEST_TOKEN: TOKEN,
    INGEST_MAX_SAMPLES: '10000',
    INGEST_BATCH_SIZE: '50',
    DATABASE_LISTEN_URL: db.url,
  }).app;
  served = await serve(app);
});
afterAll(async () => {
  await served?.close();
  await pooled?.close();
  await bouncer?.stop();
  await db?.drop();
});

const samples = (from: number, count: number) =>
  Array.from({ length: count }, (_, i) => ({
    timestamp: new Date(DAY + (from + i) * 1000).toISOString(),
    cpuLoad: ((from + i) % 10) / 4,
    concurrency: (from + i) % 7,
  }));

const INGEST = 'mutation($s: [MetricInput!]!) { ingestMetrics(samples: $s) { inserted updated duplicates } }';
const ingest = (from: number, count: number) =>
  graphql<{ ingestMetrics: { inserted: number; updated: number; duplicates: number } }>(
    app,
    INGEST,
    { s: samples(from, count) },
    { authorization: `Bearer ${TOKEN}` },
  );

describe('behind pgbouncer in transaction mode', () => {
  it('stores a mutation of many batches in one transaction and counts exactly, with reads going on', async () => {
    const before = await bouncer.transactions(db.name);
    const reads = Array.from({ length: 40 }, (_, i) =>
      graphql(
        app,
        i % 2 ? '{ metrics(first: 10) { edges { node { id } } } }' : '{ metricsSummary { count } }',
      ),
    );
    const [written, ...answers] = await Promise.all([ingest(0, 500), ...reads]);
    expect(written.data?.ingestMetrics).toEqual({ inserted: 500, updated: 0, duplicates: 0 });
    for (const answer of answers) expect(answer.errors).toBeUndefined();
    // Again, and half new: every batch meets stored rows and is merged through its staging table.
    expect((await ingest(250, 500)).data?.ingestMetrics).toEqual({
      inserted: 250,
      updated: 0,
      duplicates: 250,
    });
    const summary = await graphql<{ metricsSummary: { count: number } }>(app, '{ metricsSummary { count } }');
    expect(summary.data?.metricsSummary.count).toBe(750);
    expect(await bouncer.transactions(db.name)).toBeGreaterThan(before + 40);
  });

  it('loads files with the ingest script through it, re-runs included', async () => {
    const lines = samples(10_000, 1200)
      .map((s) => JSON.stringify({ timestamp: s.timestamp, cpu_load: s.cpuLoad, concurrency: s.concurrency }))
      .join('\n');
    const first = await runIngest(
      bouncer.url,
      ['--format', 'ndjson', '--batch-size', '100', '--json', '-'],
      lines,
    );
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ inserted: 1200, duplicates: 0 });
    const again = await runIngest(
      bouncer.url,
      ['--format', 'ndjson', '--batch-size', '100', '--json', '-'],
      lines,
    );
    expect(JSON.parse(again.stdout)).toMatchObject({ inserted: 0, duplicates: 1200 });
    const { rows } = await db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM metrics WHERE "timestamp" >= $1`,
      [new Date(DAY + 10_000 * 1000)],
    );
    expect(rows[0]?.n).toBe(1200);
  });

  it('delivers live samples, its one LISTEN connection going to the database directly', async () => {
    const subscription = new SseSubscription<{ metricsAdded: { node: { timestamp: string } } }>(
      served.url,
      'subscription { metricsAdded { node { timestamp } } }',
    );
    try {
      await subscription.opened;
      const { rows } = await db.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'metrics-api listener'`,
      );
      expect(rows[0]?.n).toBe(1);
      const clients = await bouncer.clients();
      expect(clients.length).toBeGreaterThan(0);
      expect(clients).not.toContain('metrics-api listener');
      await ingest(50_000, 3);
      await subscription.take(3);
      expect(subscription.events.map((event) => event.data?.metricsAdded.node.timestamp)).toEqual(
        samples(50_000, 3).map((s) => s.timestamp),
      );
    } finally {
      subscription.close();
    }
  });
});

describe('listening through pgbouncer in transaction mode (no DATABASE_LISTEN_URL)', () => {
  it('fails loudly: an error naming DATABASE_LISTEN_URL, the listening gauge 0, subscribers a coded error', async () => {
    const { logger, lines } = capturingLogger();
    // DATABASE_URL is pgbouncer's and nothing else is set: the listener goes through it too.
    const deaf = await serve(
      createTestService(pooled, { DATABASE_CONNECT_TIMEOUT_MS: '1500', METRICS_PUBLIC: 'true' }, { logger })
        .app,
    );
    try {
      // Answered with a coded error, not an open stream that never delivers anything.
      const started = performance.now();
      const response = await fetch(`${deaf.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ query: 'subscription { metricsAdded { node { timestamp } } }' }),
      });
      expect(response.status).toBe(503);
      const body = (await response.json()) as { errors: { extensions: { code: string } }[] };
      expect(body.errors[0]?.extensions.code).toBe('DATABASE_UNAVAILABLE');
      expect(performance.now() - started).toBeLessThan(10_000);
      await expect
        .poll(() => lines.filter((line) => line.level === 50).map((line) => line.msg), { timeout: 10_000 })
        .toContain('Not listening for changes: live updates are unavailable');
      expect(JSON.stringify(lines.filter((line) => line.level === 50))).toContain(
        'DATABASE_LISTEN_URL (by default DATABASE_URL) must reach PostgreSQL itself',
      );
      const scrape = await (await fetch(`${deaf.url}/metrics`)).text();
      expect(scrape).toMatch(/^metrics_api_live_listening(\{[^}]*\})? 0$/m);
    } finally {
      await deaf.close();
    }
  });
});
