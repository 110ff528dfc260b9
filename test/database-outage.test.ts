// PostgreSQL going away and coming back, as in a Kubernetes restart or failover: the service answers
// fast with a coded error, logs the outage once, and recovers by itself. The database is reached
// through a TCP proxy on loopback that the test stops and starts, so the shared server stays up.
import { createServer } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectPostgres, type PostgresConnection } from '../src/database/connection.js';
import type { App } from '../src/http/app.js';
import { remoteWriteBody } from './support/agent-payloads.js';
import { createTestApp } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { capturingLogger } from './support/logs.js';
import { TcpProxy } from './support/tcp-proxy.js';

const INGEST_TOKEN = 'outage-ingest-token-0123456789';

/** An app on the proxied connection that takes pushes, with a log of its own. */
function pushingApp(): App {
  return createTestApp(
    { ...connection, url: db.url },
    { INGEST_TOKEN, ACCESS_LOG: 'false' },
    { logger: capturingLogger().logger },
  );
}

/** A remote-write push of `series` to `app`, with the ingest token. */
async function remoteWrite(app: App, series: Parameters<typeof remoteWriteBody>[0]): Promise<Response> {
  return app.fetch('http://localhost/api/v1/write', {
    method: 'POST',
    headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${INGEST_TOKEN}` },
    body: remoteWriteBody(series) as BodyInit,
  });
}

let db: TestDatabase;
let proxy: TcpProxy;
let connection: PostgresConnection;
let app: App;
let logLines: { level: number; msg: string }[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  await db.prisma.metric.create({
    data: { timestamp: new Date('2026-01-01T00:00:00Z'), cpuLoad: 1, concurrency: 1 },
  });
  const target = new URL(db.url);
  proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
  await proxy.start();
  const proxied = new URL(db.url);
  proxied.port = String(proxy.port);
  const captured = capturingLogger();
  logLines = captured.lines as typeof logLines;
  const { logger } = captured;
  connection = connectPostgres(proxied.toString(), { poolSize: 2, connectTimeoutMs: 1000, logger });
  // The app logs to the same lines: an outage must not add an error line per request.
  app = createTestApp(
    { ...connection, url: proxied.toString() },
    { NODE_ENV: 'production', METRICS_PUBLIC: 'true', AGGREGATE_CACHE_BYTES: '0', ACCESS_LOG: 'false' },
    { logger },
  );
});
afterAll(async () => {
  await connection.close();
  await proxy.stop();
  await db.drop();
});

const post = (query: string) =>
  app.fetch('http://localhost/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query }),
  });

const PAGE = '{ metrics(first: 1) { totalCount edges { node { concurrency } } } }';
const SUMMARY = '{ metricsSummary { count } }';

describe('while PostgreSQL is unreachable', () => {
  it('answers fast with DATABASE_UNAVAILABLE and 503s, logs once, and recovers when it is back', async () => {
    expect((await (await post(PAGE)).json()).data.metrics.totalCount).toBe(1);

    await proxy.stop();
    const started = performance.now();
    for (const query of [PAGE, SUMMARY, PAGE, SUMMARY]) {
      const response = await post(query);
      // GraphQL over HTTP: a well-formed request whose execution failed is a 200 with errors.
      expect(response.status).toBe(200);
      const text = await response.text();
      const body = JSON.parse(text);
      expect(body.data).toBeNull();
      expect(body.errors[0]).toMatchObject({
        message: 'The database is unavailable; retry shortly.',
        extensions: { code: 'DATABASE_UNAVAILABLE' },
      });
      expect(text).not.toMatch(/ECONNREFUSED|stack|\/src\//);
    }
    const rest = await app.fetch('http://localhost/api/metrics');
    expect(rest.status).toBe(503);
    expect(rest.headers.get('retry-after')).toBe('5');
    const restText = await rest.text();
    expect(JSON.parse(restText)).toMatchObject({
      error: 'Service Unavailable',
      code: 'DATABASE_UNAVAILABLE',
    });
    expect(restText).not.toMatch(/ECONNREFUSED|stack|\/src\/|at /);
    expect((await app.fetch('http://localhost/readyz')).status).toBe(503);
    expect(performance.now() - started).toBeLessThan(5000);

    const warnings = logLines.filter((line) => line.msg.startsWith('Database unavailable'));
    expect(warnings).toHaveLength(1);
    expect(logLines.filter((line) => line.level >= 50)).toEqual([]);

    await proxy.start();
    const recovered = await (await post(PAGE)).json();
    expect(recovered.data.metrics.totalCount).toBe(1);
    expect((await app.fetch('http://localhost/api/metrics')).status).toBe(200);
    expect(logLines.filter((line) => line.msg === 'Database available again')).toHaveLength(1);
  });

  it('answers agents 503 with Retry-After, which they retry, and the Prometheus API errorType unavailable', async () => {
    const pushed = pushingApp();
    const push = () =>
      remoteWrite(pushed, [
        {
          labels: { __name__: 'node_load1', instance: 'outage-1' },
          samples: [{ value: 1, timestamp: Date.now() - 1000 }],
        },
      ]);
    const exportOtlp = () =>
      pushed.fetch('http://localhost/v1/metrics', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST_TOKEN}` },
        body: JSON.stringify({
          resourceMetrics: [
            {
              resource: { attributes: [{ key: 'host.name', value: { stringValue: 'outage-2' } }] },
              scopeMetrics: [
                {
                  metrics: [
                    {
                      name: 'system.cpu.load_average.1m',
                      gauge: {
                        dataPoints: [
                          { timeUnixNano: `${BigInt(Date.now() - 1000) * 1_000_000n}`, asDouble: 1 },
                        ],
                      },
                    },
                  ],
                },
              ],
            },
          ],
        }),
      });
    try {
      await proxy.stop();
      for (const response of [await push(), await exportOtlp()]) {
        expect(response.status).toBe(503);
        expect(response.headers.get('retry-after')).toBe('5');
      }
      const query = await pushed.fetch('http://localhost/api/v1/query?query=cpu_load');
      expect(query.status).toBe(503);
      expect(await query.json()).toMatchObject({ status: 'error', errorType: 'unavailable' });
      await proxy.start();
      expect((await exportOtlp()).status).toBe(200);
      expect((await push()).status).toBe(204);
    } finally {
      await pushed.dispose();
    }
  });

  it('fails both pushes of a sample whose halves were joined while it is away, and stores them when retried', async () => {
    const pushed = pushingApp();
    const at = Date.now() - 5000;
    const push = (metric: string, timestamp: number, value: number) =>
      remoteWrite(pushed, [
        { labels: { __name__: metric, instance: 'outage-3' }, samples: [{ value, timestamp }] },
      ]);
    // Both halves together: the source gives both values, so a lone half of it is held.
    const bothHalves = (timestamp: number) =>
      Promise.all([push('node_load1', timestamp, 1.5), push('http_server_active_requests', timestamp, 7)]);
    try {
      expect((await bothHalves(at - 1000)).map((response) => response.status)).toEqual([204, 204]);
      await proxy.stop();
      for (const response of await bothHalves(at)) {
        expect(response.status).toBe(503);
        expect(response.headers.get('retry-after')).toBe('5');
      }
      await proxy.start();
      expect((await bothHalves(at)).map((response) => response.status)).toEqual([204, 204]);
      const { rows } = await db.pool.query(
        `SELECT m.cpu_load, m.concurrency FROM metrics m JOIN sources s ON s.id = m.source_id
          WHERE s.name = 'outage-3' AND m."timestamp" = to_timestamp($1 / 1000.0)`,
        [at],
      );
      expect(rows).toEqual([{ cpu_load: 1.5, concurrency: 7 }]);
    } finally {
      await pushed.dispose();
    }
  });

  it('gives up on a server that accepts connections and never answers within the connect timeout', async () => {
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    const hung = connectPostgres(`postgresql://postgres@127.0.0.1:${port}/none`, {
      poolSize: 1,
      connectTimeoutMs: 300,
      logger: pino({ level: 'silent' }),
    });
    try {
      const hungApp = createTestApp(hung, { NODE_ENV: 'production', METRICS_PUBLIC: 'true' });
      const started = performance.now();
      const response = await hungApp.fetch('http://localhost/api/metrics');
      expect(response.status).toBe(503);
      expect(performance.now() - started).toBeLessThan(3000);
    } finally {
      await hung.close();
      silent.close();
    }
  });
});
