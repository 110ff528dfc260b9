// POST /v1/metrics: the OpenTelemetry SDK's own OTLP exporters (protobuf and JSON) push the load
// and active requests of several hosts; bad bodies get OTLP's answers and lose no good point.
import { gzipSync } from 'node:zlib';
import { OTLPMetricExporter as JsonExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as ProtoExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  MeterProvider,
  PeriodicExportingMetricReader,
  type PushMetricExporter,
} from '@opentelemetry/sdk-metrics';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../src/paths.js';
import { createTestApp } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { type ServedApp, serve } from './support/sse.js';

const TOKEN = 'otlp-receiver-token-0123456789';
const schema = protobuf.loadSync(`${projectRoot}src/ingest/proto/otlp-metrics.proto`);
const responseType = schema.lookupType('opentelemetry.proto.ExportMetricsServiceResponse');
const statusType = schema.lookupType('opentelemetry.proto.Status');

let db: TestDatabase;
let served: ServedApp;

beforeAll(async () => {
  db = await createTestDatabase();
  served = await serve(createTestApp(db, { INGEST_TOKEN: TOKEN }));
});
afterAll(async () => {
  await served.close();
  await db.drop();
});

interface StoredRow {
  source: string;
  labels: Record<string, string>;
  cpu_load: number | null;
  concurrency: number | null;
}

async function stored(source: string): Promise<StoredRow[]> {
  const { rows } = await db.pool.query<StoredRow>(
    `SELECT s.name AS source, s.labels, m.cpu_load, m.concurrency
       FROM metrics m JOIN sources s ON s.id = m.source_id WHERE s.name = $1 ORDER BY m.timestamp`,
    [source],
  );
  return rows;
}

/**
 * One host's SDK: a load-average gauge and an active-requests up-down counter with a method
 * attribute, exported once by `exporter` to the service.
 */
async function exportHost(
  host: string,
  load: number,
  active: Record<string, number>,
  exporter: PushMetricExporter,
) {
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({
      'host.name': host,
      'service.name': 'shop',
      'deployment.environment': 'test',
    }),
    readers: [reader],
  });
  const meter = provider.getMeter('agent-test');
  meter.createObservableGauge('system.cpu.load_average.1m').addCallback((result) => result.observe(load));
  const requests = meter.createUpDownCounter('http.server.active_requests');
  for (const [method, count] of Object.entries(active))
    requests.add(count, { 'http.request.method': method });
  meter.createCounter('http.server.requests').add(5);
  // Shutting down exports once, as a host going away does.
  await provider.shutdown();
}

const headers = { authorization: `Bearer ${TOKEN}` };

describe('POST /v1/metrics from the OpenTelemetry exporters', () => {
  it('stores each host as a source: its load, its active requests of every method added, its resource as labels', async () => {
    const url = `${served.url}/v1/metrics`;
    await exportHost('host-1', 0.5, { GET: 2, POST: 1 }, new ProtoExporter({ url, headers }));
    await exportHost('host-2', 1.25, { GET: 4 }, new ProtoExporter({ url, headers }));
    await exportHost('host-3', 2, { PUT: 6 }, new JsonExporter({ url, headers }));
    const labels = { 'service.name': 'shop', 'deployment.environment': 'test' };
    for (const [host, cpu_load, concurrency] of [
      ['host-1', 0.5, 3],
      ['host-2', 1.25, 4],
      ['host-3', 2, 6],
    ] as const) {
      const rows = await stored(host);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ source: host, cpu_load, concurrency });
      expect(rows[0]?.labels).toMatchObject(labels);
    }
  });

  it('answers at /api/v1/otlp/v1/metrics too', async () => {
    await exportHost(
      'host-4',
      0.75,
      {},
      new ProtoExporter({ url: `${served.url}/api/v1/otlp/v1/metrics`, headers }),
    );
    expect((await stored('host-4')).map((row) => row.cpu_load)).toEqual([0.75]);
  });
});

/** An export in OTLP's JSON mapping, as a collector would send it. */
function jsonExport(points: { host: string; timeNs: string; load?: unknown; kind?: string }[]) {
  return {
    resourceMetrics: points.map(({ host, timeNs, load, kind = 'gauge' }) => ({
      resource: { attributes: [{ key: 'host.name', value: { stringValue: host } }] },
      scopeMetrics: [
        {
          metrics: [
            {
              name: 'system.cpu.load_average.1m',
              [kind]: { dataPoints: [{ timeUnixNano: timeNs, asDouble: load }] },
            },
          ],
        },
      ],
    })),
  };
}

const nowNs = (offsetMs = 0) => `${BigInt(Date.now() + offsetMs) * 1_000_000n}`;

function postOtlp(body: BodyInit, type: string, extra: Record<string, string> = {}) {
  return fetch(`${served.url}/v1/metrics`, {
    method: 'POST',
    headers: { 'content-type': type, ...headers, ...extra },
    body,
  });
}

describe('POST /v1/metrics refuses what will never be accepted, and keeps every good point', () => {
  it('a partial success counting the refused points (far future, NaN, a histogram), the rest stored', async () => {
    const body = jsonExport([
      { host: 'json-1', timeNs: nowNs(-5000), load: 0.5 },
      { host: 'json-1', timeNs: nowNs(3 * 86_400_000), load: 1 },
      { host: 'json-1', timeNs: nowNs(-4000), load: 'NaN' },
      { host: 'json-1', timeNs: nowNs(-3000), kind: 'histogram' },
    ]);
    const response = await postOtlp(JSON.stringify(body), 'application/json');
    expect(response.status).toBe(200);
    const answer = (await response.json()) as {
      partialSuccess: { rejectedDataPoints: string; errorMessage: string };
    };
    expect(answer.partialSuccess.rejectedDataPoints).toBe('3');
    expect(answer.partialSuccess.errorMessage).toMatch(/^3 data points refused: /);
    expect(answer.partialSuccess.errorMessage).toMatch(/histogram is not stored/);
    expect(answer.partialSuccess.errorMessage).toMatch(/MAX_FUTURE/);
    expect(answer.partialSuccess.errorMessage).toMatch(/must be a finite number/);
    expect((await stored('json-1')).map((row) => row.cpu_load)).toEqual([0.5]);
  });

  it('a protobuf answer to a protobuf export: partial success decodable by the official schema', async () => {
    const request = schema.lookupType('opentelemetry.proto.ExportMetricsServiceRequest');
    const body = request
      .encode(request.fromObject(jsonExport([{ host: 'pb-1', timeNs: nowNs(3 * 86_400_000), load: 1 }])))
      .finish();
    const response = await postOtlp(new Uint8Array(body), 'application/x-protobuf');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/x-protobuf');
    const answer = responseType.toObject(responseType.decode(new Uint8Array(await response.arrayBuffer())), {
      longs: Number,
    });
    expect(answer.partialSuccess.rejectedDataPoints).toBe(1);
  });

  it('400 with a Status for a truncated protobuf, bad JSON or bad gzip; nothing stored', async () => {
    const request = schema.lookupType('opentelemetry.proto.ExportMetricsServiceRequest');
    const whole = request
      .encode(request.fromObject(jsonExport([{ host: 'cut', timeNs: nowNs(-1000), load: 1 }])))
      .finish();
    const truncated = await postOtlp(
      new Uint8Array(whole.subarray(0, whole.length - 3)),
      'application/x-protobuf',
    );
    expect(truncated.status).toBe(400);
    const status = statusType.decode(new Uint8Array(await truncated.arrayBuffer())) as unknown as {
      code: number;
      message: string;
    };
    expect(status.code).toBe(3);
    expect(status.message).toMatch(/not a protobuf ExportMetricsServiceRequest/);

    const badJson = await postOtlp('{"resourceMetrics": [', 'application/json');
    expect(badJson.status).toBe(400);
    expect(((await badJson.json()) as { message: string }).message).toMatch(/not JSON/);

    const wrongShape = await postOtlp('{"resourceMetrics": 5}', 'application/json');
    expect(wrongShape.status).toBe(400);

    const badGzip = await postOtlp('not gzip', 'application/json', { 'content-encoding': 'gzip' });
    expect(badGzip.status).toBe(400);
    expect(await stored('cut')).toEqual([]);
  });

  it('accepts gzip, and answers 413 to a body that expands past the limit', async () => {
    const body = gzipSync(JSON.stringify(jsonExport([{ host: 'gz-1', timeNs: nowNs(-1000), load: 0.25 }])));
    expect((await postOtlp(body, 'application/json', { 'content-encoding': 'gzip' })).status).toBe(200);
    expect((await stored('gz-1')).map((row) => row.cpu_load)).toEqual([0.25]);

    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024, ' '));
    const response = await postOtlp(bomb, 'application/json', { 'content-encoding': 'gzip' });
    expect(response.status).toBe(413);
    expect(((await response.json()) as { message: string }).message).toMatch(/expands past/);
  });

  it('415 for another content type, 401 without the token', async () => {
    expect((await postOtlp('{}', 'text/plain')).status).toBe(415);
    const anonymous = await fetch(`${served.url}/v1/metrics`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe('Bearer');
  });
});
