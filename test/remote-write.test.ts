// POST /api/v1/write: Prometheus remote-write 1.0 into samples, and every way a body can be wrong.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../src/http/app.js';
import { remoteWriteBody, STALE_NAN, type TestSeries, writeRequestBytes } from './support/agent-payloads.js';
import { createTestApp } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

const TOKEN = 'remote-write-token-0123456789';
/** A minute ago, whole seconds: inside MAX_FUTURE and the partitions made at start. */
const NOW = Math.floor(Date.now() / 1000) * 1000 - 60_000;

let db: TestDatabase;
let app: App;

beforeAll(async () => {
  db = await createTestDatabase();
  app = createTestApp(db, { INGEST_TOKEN: TOKEN, MAX_SOURCES: '20000' });
});
afterAll(async () => {
  await app.dispose();
  await db.drop();
});

/** Posts as Prometheus does; a header given as '' is left out. */
async function post(body: Uint8Array, headers: Record<string, string> = {}): Promise<Response> {
  const sent = {
    'content-type': 'application/x-protobuf',
    'content-encoding': 'snappy',
    'x-prometheus-remote-write-version': '0.1.0',
    authorization: `Bearer ${TOKEN}`,
    ...headers,
  };
  return app.fetch('http://localhost/api/v1/write', {
    method: 'POST',
    headers: Object.fromEntries(Object.entries(sent).filter(([, value]) => value !== '')),
    body: body as BodyInit,
  });
}

const write = (series: readonly TestSeries[], headers: Record<string, string> = {}) =>
  post(remoteWriteBody(series), headers);

interface StoredRow {
  source: string;
  labels: Record<string, string>;
  ms: number;
  cpu_load: number | null;
  concurrency: number | null;
}

async function stored(source: string): Promise<StoredRow[]> {
  const { rows } = await db.pool.query<StoredRow>(
    `SELECT s.name AS source, s.labels, (extract(epoch FROM m.timestamp) * 1000)::float8 AS ms, m.cpu_load, m.concurrency
       FROM metrics m JOIN sources s ON s.id = m.source_id WHERE s.name = $1 ORDER BY m.timestamp`,
    [source],
  );
  return rows;
}

const load = (instance: string, value: number, timestamp = NOW, extra: Record<string, string> = {}) => ({
  labels: { __name__: 'node_load1', instance, job: 'node', ...extra },
  samples: [{ value, timestamp }],
});

describe('POST /api/v1/write', () => {
  it('stores node_load1 as the CPU load of the source its instance names, the other labels its labels', async () => {
    const response = await write([load('web-1:9100', 0.75), load('web-1:9100', 1.5, NOW + 1000)]);
    expect(response.status).toBe(204);
    expect(await stored('web-1:9100')).toEqual([
      { source: 'web-1:9100', labels: { job: 'node' }, ms: NOW, cpu_load: 0.75, concurrency: null },
      { source: 'web-1:9100', labels: { job: 'node' }, ms: NOW + 1000, cpu_load: 1.5, concurrency: null },
    ]);
  });

  it('makes one sample of a source instant whose two metrics come in separate requests, and a resend changes nothing', async () => {
    const active = (value: number, method: string) => ({
      labels: { __name__: 'http_server_active_requests', instance: 'web-2:9100', job: 'node', method },
      samples: [{ value, timestamp: NOW }],
    });
    expect((await write([load('web-2:9100', 2.25)])).status).toBe(204);
    // Per-method series are added; `method` is a label of the series, not of the source.
    expect((await write([active(3, 'GET'), active(4, 'POST')])).status).toBe(204);
    expect((await write([load('web-2:9100', 2.25)])).status).toBe(204);
    expect(await stored('web-2:9100')).toEqual([
      { source: 'web-2:9100', labels: { job: 'node' }, ms: NOW, cpu_load: 2.25, concurrency: 7 },
    ]);
  });

  it('makes one sample of halves pushed at once, whichever group commit takes them', async () => {
    const instances = Array.from({ length: 50 }, (_, index) => `pair-${index}`);
    const active = (instance: string) => ({
      labels: { __name__: 'http_server_active_requests', instance, job: 'node' },
      samples: [{ value: 5, timestamp: NOW }],
    });
    const responses = await Promise.all(
      instances.flatMap((instance) => [write([load(instance, 1.5)]), write([active(instance)])]),
    );
    expect(responses.map((response) => response.status)).toEqual(responses.map(() => 204));
    const { rows } = await db.pool.query<{ cpu_load: number; concurrency: number; count: number }>(
      `SELECT m.cpu_load, m.concurrency, count(*) OVER ()::int AS count
         FROM metrics m JOIN sources s ON s.id = m.source_id WHERE s.name LIKE 'pair-%'`,
    );
    expect(rows).toHaveLength(50);
    for (const row of rows) expect(row).toMatchObject({ cpu_load: 1.5, concurrency: 5 });
  });

  it('ignores the series of other metrics and drops stale markers', async () => {
    const response = await write([
      {
        labels: { __name__: 'node_cpu_seconds_total', instance: 'web-3:9100', cpu: '0' },
        samples: [{ value: 12, timestamp: NOW }],
      },
      load('web-3:9100', 0.5),
      { labels: load('web-3:9100', 0).labels, samples: [{ value: STALE_NAN, timestamp: NOW + 1000 }] },
    ]);
    expect(response.status).toBe(204);
    expect((await stored('web-3:9100')).map((row) => row.cpu_load)).toEqual([0.5]);
  });

  it('stores 10,000 series of 10,000 sources in one request', async () => {
    const series = Array.from({ length: 10_000 }, (_, index) => load(`fleet-${index}`, index / 100));
    expect((await write(series)).status).toBe(204);
    const { rows } = await db.pool.query<{ count: number }>(
      `SELECT count(*)::int AS count FROM metrics m JOIN sources s ON s.id = m.source_id WHERE s.name LIKE 'fleet-%'`,
    );
    expect(rows[0]?.count).toBe(10_000);
  });
});

describe('POST /api/v1/write refuses what will never be accepted, and keeps every good sample', () => {
  async function refusal(response: Response) {
    return { status: response.status, body: (await response.json()) as { code: string; message: string } };
  }

  it.each([
    ['a NaN', Number.NaN, 'cpuLoad must be a finite number'],
    ['a negative load', -1, 'cpuLoad must be >= 0'],
  ])('400 for %s, the good sample beside it stored', async (_, value, reason) => {
    const instance = `bad-value-${value}`;
    const response = await write([load(instance, value), load(instance, 0.25, NOW + 1000)]);
    const { status, body } = await refusal(response);
    expect(status).toBe(400);
    expect(body.code).toBe('SAMPLES_REFUSED');
    expect(body.message).toContain(
      `1 data point refused: ${instance} at ${new Date(NOW).toISOString()}: ${reason}`,
    );
    expect((await stored(instance)).map((row) => row.cpu_load)).toEqual([0.25]);
  });

  it('400 for a sample far in the future (MAX_FUTURE), the good one stored', async () => {
    const response = await write([load('future', 1, Date.now() + 3 * 86_400_000), load('future', 0.5)]);
    const { status, body } = await refusal(response);
    expect(status).toBe(400);
    expect(body.message).toMatch(/ahead of now \(MAX_FUTURE\)/);
    expect((await stored('future')).map((row) => row.cpu_load)).toEqual([0.5]);
  });

  it('400 for a label bomb, the other series stored', async () => {
    const bomb = Object.fromEntries(
      Array.from({ length: 1000 }, (_, index) => [`l${index}`, 'x'.repeat(50)]),
    );
    const response = await write([load('bomb', 1, NOW, bomb), load('calm', 0.5)]);
    const { status, body } = await refusal(response);
    expect(status).toBe(400);
    expect(body.message).toMatch(/bomb at .*: labels .*at most 32/);
    expect(await stored('bomb')).toEqual([]);
    expect((await stored('calm')).map((row) => row.cpu_load)).toEqual([0.5]);
  });

  it('400 for a body that is not snappy, or not a WriteRequest once uncompressed', async () => {
    const notSnappy = await refusal(await post(writeRequestBytes([load('x', 1)])));
    expect(notSnappy.status).toBe(400);
    expect(notSnappy.body.code).toBe('MALFORMED_PAYLOAD');
    expect(notSnappy.body.message).toMatch(/snappy/);

    const whole = remoteWriteBody([load('truncated', 1)]);
    const truncated = await refusal(await post(whole.subarray(0, whole.length - 5)));
    expect(truncated.status).toBe(400);
    expect(truncated.body.code).toBe('MALFORMED_PAYLOAD');
    expect(await stored('truncated')).toEqual([]);
  });

  it('413 for a body past MAX_BODY_BYTES, and for one declaring more than it may expand to', async () => {
    const huge = new Uint8Array(100 * 1024 * 1024);
    expect((await refusal(await post(huge))).status).toBe(413);
    // A snappy header declaring 2^34 bytes, and nothing behind it.
    const bomb = await refusal(await post(new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x40])));
    expect(bomb.status).toBe(413);
    expect(bomb.body.message).toMatch(/declares 17179869184 bytes uncompressed/);
  });

  it('413 for more samples than INGEST_MAX_SAMPLES in one push, nothing of it stored', async () => {
    const small = createTestApp(db, { INGEST_TOKEN: TOKEN, INGEST_MAX_SAMPLES: '10' });
    try {
      const series = Array.from({ length: 11 }, (_, index) => load(`over-${index}`, 1));
      const response = await small.fetch('http://localhost/api/v1/write', {
        method: 'POST',
        headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${TOKEN}` },
        body: remoteWriteBody(series) as BodyInit,
      });
      expect(response.status).toBe(413);
      expect(((await response.json()) as { message: string }).message).toMatch(
        /holds 11 samples; at most 10 .*INGEST_MAX_SAMPLES/,
      );
      expect(await stored('over-0')).toEqual([]);
    } finally {
      await small.dispose();
    }
  });

  it('415 for another content type or encoding, and for remote-write 2.0', async () => {
    const body = remoteWriteBody([load('x', 1)]);
    expect((await post(body, { 'content-type': 'application/json' })).status).toBe(415);
    expect((await post(body, { 'content-encoding': 'gzip' })).status).toBe(415);
    const v2 = await post(body, {
      'content-type': 'application/x-protobuf;proto=io.prometheus.write.v2.Request',
    });
    expect(v2.status).toBe(415);
  });

  it('401 without the token or with another, with WWW-Authenticate', async () => {
    const missing = await post(remoteWriteBody([load('x', 1)]), { authorization: '' });
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer');
    const wrong = await post(remoteWriteBody([load('x', 1)]), {
      authorization: 'Bearer not-the-token-at-all',
    });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { code: string }).code).toBe('UNAUTHENTICATED');
    expect(await stored('x')).toEqual([]);
  });

  it('403 while INGEST_TOKEN is unset: pushing is off', async () => {
    const closed = createTestApp(db);
    try {
      const response = await closed.fetch('http://localhost/api/v1/write', {
        method: 'POST',
        headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${TOKEN}` },
        body: remoteWriteBody([load('x', 1)]) as BodyInit,
      });
      expect(response.status).toBe(403);
      expect(((await response.json()) as { code: string }).code).toBe('INGEST_DISABLED');
    } finally {
      await closed.dispose();
    }
  });
});
