import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { createClient } from 'graphql-sse';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { App } from '../src/http/app.js';
import { startTelemetry, type Telemetry, telemetrySettings } from '../src/observability/telemetry.js';
import { createTestApp } from './support/app.js';
import {
  connectTest,
  createEmptyDatabase,
  createTestDatabase,
  type TestDatabase,
} from './support/database.js';
import { capturingLogger } from './support/logs.js';
import { SseSubscription, serve } from './support/sse.js';

let db: TestDatabase;
let exporter: InMemorySpanExporter;
let telemetry: Telemetry;
let app: App;
let logLines: Record<string, unknown>[] = [];

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_SPAN = '00f067aa0ba902b7';

beforeAll(async () => {
  db = await createTestDatabase();
  await db.prisma.metric.createMany({
    data: Array.from({ length: 10 }, (_, i) => ({
      timestamp: new Date(Date.UTC(2026, 0, 1, 0, i)),
      cpuLoad: i / 4,
      concurrency: i,
    })),
  });
  exporter = new InMemorySpanExporter();
  telemetry = startTelemetry(telemetrySettings({ OTEL_SERVICE_NAME: 'metrics-api-test' }, 'x'), {
    spanExporter: exporter,
    runtimeMetrics: false,
  });
  const captured = capturingLogger();
  logLines = captured.lines;
  const logger = captured.logger;
  app = createTestApp(db, { SLOW_OPERATION_MS: '100000' }, { telemetry, logger });
});
afterAll(async () => {
  await telemetry.shutdown();
  await db.drop();
});
beforeEach(() => {
  exporter.reset();
  logLines.length = 0;
});

function post(query: string, headers: Record<string, string> = {}) {
  return app.fetch('http://localhost/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query }),
  });
}

const byName = (spans: ReadableSpan[], name: string) => spans.filter((span) => span.name === name);
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

describe('traces', () => {
  it('join the caller trace: HTTP server span, GraphQL operation with parse, validate, execute, and one client span per SQL statement', async () => {
    // The second run is compiled by graphql-jit: both paths are traced alike.
    for (let run = 0; run < 2; run++) {
      exporter.reset();
      const response = await post(
        'query FirstPage { metrics(first: 2) { totalCount edges { cursor node { id } } } }',
        {
          traceparent: `00-${TRACE_ID}-${PARENT_SPAN}-01`,
        },
      );
      expect(response.status).toBe(200);
      await response.text();
      const spans = exporter.getFinishedSpans();
      expect(new Set(spans.map((span) => span.spanContext().traceId))).toEqual(new Set([TRACE_ID]));

      const [server] = byName(spans, 'POST /graphql');
      expect(server?.kind).toBe(1); // SERVER
      expect(parentOf(server as ReadableSpan)).toBe(PARENT_SPAN);
      expect(server?.attributes).toMatchObject({
        'http.request.method': 'POST',
        'http.route': '/graphql',
        'http.response.status_code': 200,
      });

      const [operation] = byName(spans, 'query FirstPage');
      expect(operation?.attributes).toMatchObject({
        'graphql.operation.type': 'query',
        'graphql.operation.name': 'FirstPage',
      });
      expect(operation?.attributes).not.toHaveProperty('graphql.document');
      expect(parentOf(operation as ReadableSpan)).toBe(server?.spanContext().spanId);
      for (const phase of ['graphql.parse', 'graphql.validate', 'graphql.execute']) {
        const [span] = byName(spans, phase);
        expect(parentOf(span as ReadableSpan), phase).toBe(operation?.spanContext().spanId);
      }

      const execute = byName(spans, 'graphql.execute')[0] as ReadableSpan;
      const sql = spans.filter((span) => span.attributes['db.system.name'] === 'postgresql');
      // The page and the count.
      expect(sql).toHaveLength(2);
      for (const statement of sql) {
        expect(statement.kind).toBe(2); // CLIENT
        expect(parentOf(statement)).toBe(execute.spanContext().spanId);
        expect(statement.attributes).toMatchObject({
          'db.system.name': 'postgresql',
          'db.namespace': db.name,
          'db.operation.name': 'SELECT',
          'server.address': '127.0.0.1',
          'server.port': 5432,
        });
        expect(String(statement.attributes['db.query.text'])).not.toMatch(/2026/);
      }
      // Values travel apart: the page's text has placeholders.
      expect(sql.some((statement) => /LIMIT \$1/.test(String(statement.attributes['db.query.text'])))).toBe(
        true,
      );
    }
  });

  it('mark a failed operation ERROR with its error code, and keep a masked cause in the span only', async () => {
    await (await post('{ metrics(first: -1) { totalCount } }')).text();
    const spans = exporter.getFinishedSpans();
    const [server] = byName(spans, 'POST /graphql');
    expect(server?.status.code).toBe(2); // ERROR
    expect(server?.attributes['graphql.error.codes']).toEqual(['BAD_USER_INPUT']);
    expect(byName(spans, 'query')[0]?.status.code).toBe(2);
  });

  it('show whether a summary came from the remembered aggregates', async () => {
    const query = '{ metricsSummary(start: "2026-01-01T00:00:00Z") { count } }';
    await (await post(query)).text();
    await (await post(query)).text();
    const outcomes = byName(exporter.getFinishedSpans(), 'graphql.execute').map(
      (span) => span.attributes['metrics_api.aggregate_cache'],
    );
    expect(outcomes).toEqual(['miss', 'hit']);
  });

  it("put a mutation's statements, its COPY included, in the request's trace under execute", async () => {
    const writer = createTestApp(db, { INGEST_TOKEN: 'a-token-of-sixteen-chars' }, { telemetry });
    const response = await writer.fetch('http://localhost/graphql', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: 'Bearer a-token-of-sixteen-chars',
        traceparent: `00-${TRACE_ID}-${PARENT_SPAN}-01`,
      },
      body: JSON.stringify({
        query:
          'mutation Load { ingestMetrics(samples: [{ timestamp: "2026-02-01T00:00:00Z", cpuLoad: 1, concurrency: 1 }]) { inserted } }',
      }),
    });
    expect(await response.json()).toEqual({ data: { ingestMetrics: { inserted: 1 } } });
    const spans = exporter.getFinishedSpans();
    const [execute] = byName(spans, 'graphql.execute');
    const sql = spans.filter((span) => span.attributes['db.system.name'] === 'postgresql');
    expect(sql.map((span) => span.attributes['db.operation.name'])).toContain('COPY');
    for (const statement of sql) {
      expect(statement.spanContext().traceId, statement.name).toBe(TRACE_ID);
      expect(parentOf(statement), statement.name).toBe(execute?.spanContext().spanId);
    }
    await writer.dispose();
  });

  it('never trace probes and scrapes', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics'])
      await (await app.fetch(`http://localhost${path}`)).text();
    expect(exporter.getFinishedSpans()).toEqual([]);
    expect(logLines).toEqual([]);
  });
});

describe('subscriptions', () => {
  it('are named, traced and counted at start in both SSE modes, a refused one with its own name', async () => {
    const kept = new InMemorySpanExporter();
    const fresh = startTelemetry(telemetrySettings({}, 'x'), { spanExporter: kept, runtimeMetrics: false });
    const served = await serve(createTestApp(db, {}, { telemetry: fresh }));
    const client = createClient({
      url: `${served.url}/graphql/stream`,
      singleConnection: true,
      retryAttempts: 0,
    });
    try {
      const watch = 'subscription Watch { metricsSummaryUpdated(window: "3650d") { summary { count } } }';
      const refused = 'subscription Refused { metricsAdded(after: "nope") { cursor } }';
      // Distinct connections: POST /graphql answering text/event-stream.
      const distinct = new SseSubscription(served.url, watch);
      await distinct.take(1);
      const bad = new SseSubscription(served.url, refused);
      await bad.done;
      // Refused before the stream opens (how it is answered is the error contract's, not tested here).
      expect(bad.events.some((event) => event.data)).toBe(false);
      // Single connection: PUT, GET and POST /graphql/stream, through the official client.
      const outcomes = (query: string) =>
        new Promise<string>((resolve) => {
          const stop = client.subscribe(
            { query },
            {
              next: () => {
                stop();
                resolve('next');
              },
              error: () => resolve('error'),
              complete: () => resolve('complete'),
            },
          );
        });
      expect(await outcomes(watch)).toBe('next');
      await outcomes(refused);
      distinct.close();

      const operations = kept.getFinishedSpans().filter((span) => span.name.startsWith('subscription'));
      expect(operations.map((span) => span.name).sort()).toEqual([
        'subscription Refused',
        'subscription Refused',
        'subscription Watch',
        'subscription Watch',
      ]);
      for (const span of operations) {
        expect(span.attributes['graphql.operation.type']).toBe('subscription');
        expect(span.attributes['graphql.operation.name']).toBe(span.name.slice('subscription '.length));
      }
      const text = await fresh.scrape();
      const counted = samples(text, 'graphql_server_operations_total');
      expect(
        counted.get('{graphql_operation_type="subscription",graphql_operation_name="Watch",outcome="ok"}'),
      ).toBe(2);
      expect(
        counted.get(
          '{graphql_operation_type="subscription",graphql_operation_name="Refused",outcome="error"}',
        ),
      ).toBe(2);
      expect(text).not.toMatch(/graphql_operation_type="unknown"/);
      expect(samples(text, 'graphql_server_errors_total').get('{graphql_error_code="BAD_USER_INPUT"}')).toBe(
        2,
      );
    } finally {
      client.dispose();
      await served.close();
      await fresh.shutdown();
    }
  });
});

describe('unexpected errors', () => {
  it('keep their cause on the span and in one error line with the trace id, never in the response', async () => {
    const empty = await createEmptyDatabase();
    const unmigrated = connectTest(empty.url, 1);
    const { logger, lines } = capturingLogger();
    try {
      const broken = createTestApp(
        { ...unmigrated, url: empty.url },
        { NODE_ENV: 'production', METRICS_PUBLIC: 'true', ACCESS_LOG: 'false' },
        { telemetry, logger },
      );
      const response = await broken.fetch('http://localhost/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ metrics(first: 1) { totalCount } }' }),
      });
      const body = await response.text();
      expect(body).toContain('Unexpected error.');
      expect(body).not.toMatch(/relation/);
      const [execute] = byName(exporter.getFinishedSpans(), 'graphql.execute').slice(-1);
      expect(execute?.events.map((event) => event.name)).toContain('exception');
      expect(JSON.stringify(execute?.events)).toMatch(/relation .* does not exist/);
      const errors = lines.filter((line) => (line.level as number) >= 50);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({
        trace_id: execute?.spanContext().traceId,
        msg: 'Unexpected error in an operation',
      });
    } finally {
      await unmigrated.close();
      await empty.drop();
    }
  });
});

describe('logs', () => {
  it('write one access line per request carrying the trace id, without body, variables or tokens', async () => {
    await (
      await post('query Named { metricsSummary { count } }', { authorization: 'Bearer secret-token-value' })
    ).text();
    const access = logLines.filter((line) => line.msg === 'request');
    expect(access).toHaveLength(1);
    const [server] = byName(exporter.getFinishedSpans(), 'POST /graphql');
    expect(access[0]).toMatchObject({
      trace_id: server?.spanContext().traceId,
      method: 'POST',
      route: '/graphql',
      status: 200,
      operation_name: 'Named',
      operation_type: 'query',
    });
    expect(JSON.stringify(access)).not.toMatch(/secret-token-value|metricsSummary/);
  });
});

/** The samples of one metric in Prometheus text, as `labels -> value`. */
function samples(text: string, name: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (match && match[1] === name) found.set(match[2] ?? '', Number(match[3]));
  }
  return found;
}

describe('GET /metrics', () => {
  it('counts what was sent, by bounded labels, in Prometheus text', async () => {
    const fresh = startTelemetry(telemetrySettings({}, 'x'), { runtimeMetrics: false });
    const measured = createTestApp(
      db,
      { INGEST_TOKEN: 'a-token-of-sixteen-chars', MAX_FUTURE: 'off' },
      { telemetry: fresh },
    );
    const send = (query: string) =>
      measured.fetch('http://localhost/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer a-token-of-sixteen-chars' },
        body: JSON.stringify({ query }),
      });
    for (let i = 0; i < 3; i++) await (await send('query Page { metrics(first: 1) { totalCount } }')).text();
    await (await send('{ metrics(first: -1) { totalCount } }')).text();
    await (await send('{ nope }')).text();
    await (
      await send(
        'mutation Load { ingestMetrics(samples: [{ timestamp: "2027-01-01T00:00:00Z", cpuLoad: 1, concurrency: 1 }, { timestamp: "2027-01-01T00:00:01Z", cpuLoad: -1, concurrency: 1 }]) { inserted } }',
      )
    ).text();
    await (
      await measured.fetch('http://localhost/api/metrics?limit=2&cursor=bWV0cmljOjE3OTU2NTEyNjAwMDA')
    ).text();
    await (await measured.fetch('http://localhost/no/such/path?x=1')).text();

    const response = await measured.fetch('http://localhost/metrics');
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();

    const http = samples(text, 'http_server_request_duration_count');
    expect(
      http.get('{http_request_method="POST",http_response_status_code="200",http_route="/graphql"}'),
    ).toBe(6);
    expect(
      http.get('{http_request_method="GET",http_response_status_code="200",http_route="/api/metrics"}'),
    ).toBe(1);
    expect(http.get('{http_request_method="GET",http_response_status_code="404"}')).toBe(1);
    expect(text).toMatch(/^# TYPE http_server_request_duration histogram$/m);

    const operations = samples(text, 'graphql_server_operations_total');
    expect(
      operations.get('{graphql_operation_type="query",graphql_operation_name="Page",outcome="ok"}'),
    ).toBe(3);
    expect(
      operations.get('{graphql_operation_type="query",graphql_operation_name="(anonymous)",outcome="error"}'),
    ).toBe(1);
    expect(
      operations.get('{graphql_operation_type="mutation",graphql_operation_name="Load",outcome="ok"}'),
    ).toBe(1);
    const errors = samples(text, 'graphql_server_errors_total');
    expect(errors.get('{graphql_error_code="BAD_USER_INPUT"}')).toBe(1);
    expect(errors.get('{graphql_error_code="GRAPHQL_VALIDATION_FAILED"}')).toBe(1);

    const ingest = samples(text, 'metrics_api_ingest_rows_total');
    expect(ingest.get('{outcome="inserted"}')).toBe(1);
    expect(ingest.get('{outcome="rejected"}')).toBe(1);
    expect(
      [...samples(text, 'db_client_operation_duration_count').values()].reduce((a, b) => a + b, 0),
    ).toBeGreaterThan(5);
    expect(samples(text, 'db_client_connections').size).toBe(2);
    expect(samples(text, 'metrics_api_build_info').size).toBe(1);
    expect(text).toMatch(/^target_info\{/m);

    // No label takes an unbounded value: no paths outside the routes, no query strings, cursors or times.
    const labelValues = [...text.matchAll(/="([^"]*)"/g)].map((match) => match[1] as string);
    for (const value of labelValues) expect(value).not.toMatch(/\?|bWV0cmlj|no\/such|2026-|2027-/);
    await fresh.shutdown();
  });

  it('requires the bearer token when METRICS_TOKEN is set', async () => {
    const guarded = createTestApp(db, { METRICS_TOKEN: 'scrape-token-of-16-chars' });
    const refused = await guarded.fetch('http://localhost/metrics');
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ error: 'Unauthorized' });
    const allowed = await guarded.fetch('http://localhost/metrics', {
      headers: { authorization: 'Bearer scrape-token-of-16-chars' },
    });
    expect(allowed.status).toBe(200);
  });
});

describe('slow operations', () => {
  it('log their SQL with durations and the plan of the slowest statement, under the trace id', async () => {
    const { logger, lines } = capturingLogger('warn');
    const slow = createTestApp(
      db,
      { SLOW_OPERATION_MS: '1', AGGREGATE_CACHE_BYTES: '0' },
      { telemetry, logger },
    );
    const response = await slow.fetch('http://localhost/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query: 'query Slow { metricsSummary(start: "2026-01-01T00:00:00Z") { count } }',
      }),
    });
    await response.text();
    for (let waited = 0; lines.length === 0 && waited < 5000; waited += 20) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const [line] = lines;
    const [server] = byName(exporter.getFinishedSpans(), 'POST /graphql').slice(-1);
    expect(line).toMatchObject({
      msg: 'Slow operation',
      operation_name: 'Slow',
      trace_id: server?.spanContext().traceId,
    });
    const statements = line?.statements as { text: string; ms: number }[];
    // A summary's statements: its totals with its sketches (each text bounded: the relations its
    // sketches merge come first), and its exact percentiles' one scan.
    expect(statements.map((statement) => statement.text)).toEqual([
      expect.stringMatching(/sketch_raw AS MATERIALIZED[\s\S]*unrolled AS MATERIALIZED[\s\S]*AS revision/),
      expect.stringContaining('FILTER (WHERE (cpu_load'),
    ]);
    expect(JSON.stringify(statements)).not.toMatch(/2026-01-01/);
    expect(JSON.stringify(line?.plan)).toMatch(/"Node Type"/);
  });
});

describe('sampling', () => {
  it('follows OTEL_TRACES_SAMPLER: ratio 0 drops new traces, and a sampled caller is still followed', async () => {
    const saved = { sampler: process.env.OTEL_TRACES_SAMPLER, arg: process.env.OTEL_TRACES_SAMPLER_ARG };
    process.env.OTEL_TRACES_SAMPLER = 'parentbased_traceidratio';
    process.env.OTEL_TRACES_SAMPLER_ARG = '0';
    const kept = new InMemorySpanExporter();
    const sampled = startTelemetry(telemetrySettings({}, 'x'), { spanExporter: kept, runtimeMetrics: false });
    try {
      const sampledApp = createTestApp(db, {}, { telemetry: sampled });
      const ask = (headers: Record<string, string>) =>
        sampledApp.fetch('http://localhost/graphql', {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ query: '{ metricsSummary { count } }' }),
        });
      await (await ask({})).text();
      expect(kept.getFinishedSpans()).toEqual([]);
      await (await ask({ traceparent: `00-${TRACE_ID}-${PARENT_SPAN}-01` })).text();
      expect(kept.getFinishedSpans().map((span) => span.spanContext().traceId)).toContain(TRACE_ID);
    } finally {
      await sampled.shutdown();
      process.env.OTEL_TRACES_SAMPLER = saved.sampler;
      process.env.OTEL_TRACES_SAMPLER_ARG = saved.arg;
      if (saved.sampler === undefined) delete process.env.OTEL_TRACES_SAMPLER;
      if (saved.arg === undefined) delete process.env.OTEL_TRACES_SAMPLER_ARG;
    }
  });
});
