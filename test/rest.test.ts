import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../src/http/app.js';
import { answeringLiveness } from '../src/http/health.js';
import { createTestApp } from './support/app.js';
import { connectTest, createTestDatabase, type TestDatabase } from './support/database.js';
import { closedPort } from './support/ports.js';

const T0 = Date.UTC(2026, 5, 1);
const ROWS = 1234;
const samples = Array.from({ length: ROWS }, (_, i) => ({
  timestamp: new Date(T0 + i * 10_000 + (i % 5 === 0 ? 250 : 0)),
  cpuLoad: (i % 64) / 8,
  concurrency: i % 11,
}));

let db: TestDatabase;
let app: App;
beforeAll(async () => {
  db = await createTestDatabase();
  await db.prisma.metric.createMany({ data: samples });
  app = createTestApp(db);
});
afterAll(() => db.drop());

const get = (path: string, init: RequestInit = {}) => app.fetch(`http://localhost${path}`, init);

describe('GET /healthz', () => {
  it('answers 200 with the JSON string "Ping!"', async () => {
    const response = await get('/healthz');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.json()).toBe('Ping!');
  });

  it('stays alive when the database is down (liveness only)', async () => {
    const connection = connectTest(`postgresql://postgres@127.0.0.1:${await closedPort()}/none`, 1);
    const down = createTestApp(connection);
    expect((await down.fetch('http://localhost/healthz')).status).toBe(200);
  });

  it('answers HEAD, and refuses other methods with 405 and Allow', async () => {
    expect((await get('/healthz', { method: 'HEAD' })).status).toBe(200);
    const response = await get('/healthz', { method: 'POST' });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET, HEAD');
    expect(await response.json()).toMatchObject({ error: 'Method Not Allowed' });
  });
});

describe('GET /healthz on a socket', () => {
  it('is answered before the app, exactly as the app would answer it', async () => {
    let reachedApp = 0;
    const counting: App = new Proxy(app, {
      apply: (target, self, args) => {
        reachedApp++;
        return Reflect.apply(target, self, args);
      },
    });
    const server = createServer(answeringLiveness(counting));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const fast = await fetch(`${base}/healthz`);
      const routed = await get('/healthz');
      expect(reachedApp).toBe(0);
      expect(fast.status).toBe(routed.status);
      expect(fast.headers.get('content-type')).toBe(routed.headers.get('content-type'));
      expect(await fast.text()).toBe(await routed.text());
      expect((await fetch(`${base}/healthz`, { method: 'HEAD' })).status).toBe(200);
      expect(reachedApp).toBe(0);
      // Anything else is the app's: a method the route refuses, a query string.
      expect((await fetch(`${base}/healthz`, { method: 'POST' })).status).toBe(405);
      expect((await fetch(`${base}/healthz?verbose=1`)).status).toBe(200);
      expect(reachedApp).toBe(2);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('GET /readyz', () => {
  it('is ready when the database answers', async () => {
    const response = await get('/readyz');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ready' });
  });

  it('is 503 with the reason when the database is unreachable', async () => {
    const connection = connectTest(`postgresql://postgres@127.0.0.1:${await closedPort()}/none`, 1);
    const down = createTestApp(connection, { READINESS_TIMEOUT_MS: '2000' });
    const response = await down.fetch('http://localhost/readyz');
    expect(response.status).toBe(503);
    const body = (await response.json()) as { status: string; reason: string };
    expect(body.status).toBe('unavailable');
    expect(body.reason).toMatch(/^database: /);
    await connection.close();
  });

  it('is 503 instead of hanging when the database does not answer in time', async () => {
    // A server that accepts connections and never speaks: the query can only time out.
    const { createServer } = await import('node:net');
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    const connection = connectTest(`postgresql://postgres@127.0.0.1:${port}/none`, 1);
    const hung = createTestApp(connection, { READINESS_TIMEOUT_MS: '300' });
    const response = await hung.fetch('http://localhost/readyz');
    expect(response.status).toBe(503);
    expect(((await response.json()) as { reason: string }).reason).toMatch(/did not answer within 300 ms/);
    silent.close();
  });
});

type Row = { id: number; timestamp: number; cpu_load: number; concurrency: number };

describe('GET /api/metrics', () => {
  it('returns the seed shape with epoch-second timestamps, oldest first', async () => {
    const response = await get('/api/metrics?limit=3');
    expect(response.status).toBe(200);
    const rows = (await response.json()) as Row[];
    expect(rows).toHaveLength(3);
    expect(Object.keys(rows[0] as Row).sort()).toEqual(['concurrency', 'cpu_load', 'id', 'timestamp']);
    expect(rows[0]).toMatchObject({ timestamp: T0 / 1000 + 0.25, cpu_load: 0, concurrency: 0 });
    expect(typeof rows[0]?.id).toBe('number');
    expect(rows[1]).toMatchObject({ timestamp: T0 / 1000 + 10, cpu_load: 0.125, concurrency: 1 });
  });

  it('limits to 1000 rows by default and links to the next page', async () => {
    const response = await get('/api/metrics');
    expect(((await response.json()) as Row[]).length).toBe(1000);
    expect(response.headers.get('link')).toMatch(/^<\/api\/metrics\?cursor=[\w-]+>; rel="next"$/);
  });

  it('links with a path, never with the Host header the client chose', async () => {
    const response = await app.fetch('http://evil.example/api/metrics?limit=2', {
      headers: { host: 'evil.example' },
    });
    const link = response.headers.get('link') ?? '';
    expect(link).toMatch(/^<\/api\/metrics\?limit=2&cursor=[\w-]+>; rel="next"$/);
    expect(link).not.toContain('evil');
  });

  it('treats start and end as inclusive, like the seed', async () => {
    // Samples 11 and 19 sit exactly on the bounds.
    const start = T0 / 1000 + 110;
    const end = T0 / 1000 + 190;
    const rows = (await (await get(`/api/metrics?start=${start}&end=${end}`)).json()) as Row[];
    expect(rows.map((row) => row.timestamp)).toEqual(
      samples.slice(11, 20).map((s) => s.timestamp.getTime() / 1000),
    );
    expect(rows[0]?.timestamp).toBe(start);
    expect(rows.at(-1)?.timestamp).toBe(end);
  });

  it('accepts each bound alone and ISO-8601 bounds', async () => {
    const startIso = new Date(T0 + (ROWS - 3) * 10_000).toISOString();
    const tail = (await (await get(`/api/metrics?start=${encodeURIComponent(startIso)}`)).json()) as Row[];
    expect(tail).toHaveLength(3);
    const head = (await (await get(`/api/metrics?end=${T0 / 1000 + 20}`)).json()) as Row[];
    expect(head).toHaveLength(3);
  });

  it('follows Link headers to exhaustion, visiting every row once in order', async () => {
    const seen: number[] = [];
    let next: string | null = '/api/metrics?limit=97';
    let pages = 0;
    while (next) {
      const response: Response = await app.fetch(new URL(next, 'http://localhost'));
      expect(response.status).toBe(200);
      seen.push(...((await response.json()) as Row[]).map((row) => row.timestamp));
      next = response.headers.get('link')?.match(/^<([^>]+)>; rel="next"$/)?.[1] ?? null;
      pages++;
    }
    expect(pages).toBe(Math.ceil(ROWS / 97));
    expect(seen).toEqual(samples.map((s) => s.timestamp.getTime() / 1000));
  });

  it('keeps the filters in the next link', async () => {
    const start = T0 / 1000 + 1010;
    const end = T0 / 1000 + 1490;
    const seen: number[] = [];
    let next: string | null = `/api/metrics?start=${start}&end=${end}&limit=7`;
    while (next) {
      const response: Response = await app.fetch(new URL(next, 'http://localhost'));
      seen.push(...((await response.json()) as Row[]).map((row) => row.timestamp));
      next = response.headers.get('link')?.match(/^<([^>]+)>/)?.[1] ?? null;
    }
    expect(seen).toHaveLength(49);
    expect(seen[0]).toBe(start);
    expect(seen.at(-1)).toBe(end);
  });

  it.each([
    ['start=yesterday', 'start'],
    ['end=2026-01-01T00:00:00', 'end'],
    ['limit=0', 'limit'],
    ['limit=10001', 'limit'],
    ['limit=ten', 'limit'],
    ['limit=2.5', 'limit'],
    ['cursor=abc', 'cursor'],
    [`start=${T0 / 1000 + 10}&end=${T0 / 1000}`, 'start'],
  ])('answers %s with 400 naming the parameter', async (query, parameter) => {
    const response = await get(`/api/metrics?${query}`);
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: string; message: string; parameter: string };
    expect(body).toMatchObject({ error: 'Bad Request', parameter });
    expect(body.message.startsWith(`${parameter}: `)).toBe(true);
  });

  it('allows up to REST_MAX_LIMIT rows', async () => {
    const rows = (await (await get('/api/metrics?limit=10000')).json()) as Row[];
    expect(rows).toHaveLength(ROWS);
  });
});

describe('routing', () => {
  it('answers unknown paths with a JSON 404', async () => {
    const response = await get('/api/nothing-here');
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.json()).toMatchObject({ error: 'Not Found' });
  });

  it('refuses wrong methods on the GraphQL endpoint with 405', async () => {
    const response = await get('/graphql', { method: 'DELETE' });
    expect(response.status).toBe(405);
  });
});
