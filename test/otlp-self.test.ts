// The README's demo: the service pushes its own OpenTelemetry metrics over OTLP to itself, and its
// host's load (system.cpu.load_average.1m) and its requests in progress (http.server.active_requests)
// are stored as samples of the source its resource names.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { WITHOUT_DOTENV } from './support/environment.js';
import { closedPort } from './support/ports.js';
import { spawnServer, waitForOutput } from './support/server-process.js';

const TOKEN = 'otlp-self-token-0123456789';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.drop());

it('stores the metrics the service pushes to itself as samples of the source its resource names', async () => {
  const port = await closedPort();
  const server = spawnServer(
    {
      PATH: process.env.PATH,
      ...WITHOUT_DOTENV,
      DATABASE_URL: db.url,
      INGEST_TOKEN: TOKEN,
      OTEL_METRICS_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: `http://127.0.0.1:${port}/v1/metrics`,
      OTEL_EXPORTER_OTLP_HEADERS: `authorization=Bearer ${TOKEN}`,
      OTEL_RESOURCE_ATTRIBUTES: 'service.instance.id=metrics-api-1,deployment.environment=demo',
      OTEL_METRIC_EXPORT_INTERVAL: '500',
    },
    { port },
  );
  try {
    await waitForOutput(server, 'metrics-api listening');
    const deadline = Date.now() + 20_000;
    let rows: { cpu_load: number | null; concurrency: number | null; labels: Record<string, string> }[] = [];
    while (Date.now() < deadline) {
      ({ rows } = await db.pool.query(
        `SELECT m.cpu_load, m.concurrency, s.labels FROM metrics m JOIN sources s ON s.id = m.source_id
          WHERE s.name = 'metrics-api-1' ORDER BY m.timestamp`,
      ));
      if (rows.some((row) => row.concurrency !== null) && rows.length >= 2) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(rows.length).toBeGreaterThanOrEqual(2);
    for (const row of rows) expect(row.cpu_load).toBeGreaterThanOrEqual(0);
    // The counter exists from the first request on (its own first export); its value is measured
    // just before each export, so between requests it is 0.
    const concurrencies = rows.map((row) => row.concurrency).filter((value) => value !== null);
    expect(concurrencies.length).toBeGreaterThan(0);
    for (const value of concurrencies) expect(Number.isInteger(value) && (value as number) >= 0).toBe(true);
    expect(rows[0]?.labels).toMatchObject({
      'service.name': 'metrics-api',
      'deployment.environment': 'demo',
    });
  } finally {
    server.child.kill('SIGTERM');
  }
}, 60_000);
