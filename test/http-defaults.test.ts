import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../src/http/app.js';
import { metricsServer } from '../src/http/metrics-endpoint.js';
import { createTestApp } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

/** What Chromium sends when it opens a page. */
const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
const QUERY = JSON.stringify({ query: '{ metricsSummary { count } }' });

let db: TestDatabase;
const apps: App[] = [];
beforeAll(async () => {
  db = await createTestDatabase();
  await db.prisma.metric.createMany({
    data: Array.from({ length: 5 }, (_, i) => ({
      timestamp: new Date(Date.UTC(2026, 5, 1, 0, i)),
      cpuLoad: i,
      concurrency: i,
    })),
  });
});
afterAll(async () => {
  await Promise.all(apps.map((app) => app.dispose()));
  await db.drop();
});

function appWith(env: Record<string, string> = {}): App {
  const app = createTestApp(db, env);
  apps.push(app);
  return app;
}

const at = (path: string) => `http://localhost${path}`;

function postQuery(app: App, headers: Record<string, string> = {}, path = '/graphql') {
  return app.fetch(at(path), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
    body: QUERY,
  });
}

function preflight(app: App, origin: string, path = '/graphql') {
  return app.fetch(at(path), {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'content-type, authorization',
    },
  });
}

const corsHeaders = (response: Response) =>
  [...response.headers.keys()].filter((name) => name.startsWith('access-control-'));

describe('CORS', () => {
  it('allows no cross-origin access by default: no CORS header anywhere, preflights refused', async () => {
    const app = appWith();
    for (const origin of ['https://evil.example', 'null']) {
      const responses = [
        await postQuery(app, { origin }),
        await app.fetch(at('/api/metrics'), { headers: { origin } }),
        await app.fetch(at('/metrics'), { headers: { origin } }),
      ];
      for (const response of responses) {
        expect(response.status).toBe(200);
        expect(corsHeaders(response)).toEqual([]);
      }
      const refused = await preflight(app, origin);
      expect(refused.status).toBe(403);
      expect(corsHeaders(refused)).toEqual([]);
      expect(await refused.json()).toMatchObject({ error: 'Forbidden', message: /CORS_ORIGINS/ });
    }
  });

  it('allows exactly the listed origins, without credentials, and never null', async () => {
    const app = appWith({ CORS_ORIGINS: 'https://a.example, https://b.example:8443' });
    for (const origin of ['https://a.example', 'https://b.example:8443']) {
      for (const response of [
        await postQuery(app, { origin }),
        await app.fetch(at('/api/metrics?limit=1'), { headers: { origin } }),
      ]) {
        expect(response.headers.get('access-control-allow-origin')).toBe(origin);
        expect(response.headers.get('access-control-allow-credentials')).toBeNull();
        expect(response.headers.get('vary')).toMatch(/origin/i);
      }
      const allowed = await preflight(app, origin);
      expect(allowed.status).toBe(204);
      expect(allowed.headers.get('access-control-allow-origin')).toBe(origin);
      expect(allowed.headers.get('access-control-allow-methods')).toContain('POST');
      expect(allowed.headers.get('access-control-allow-headers')).toMatch(/authorization/);
      expect(allowed.headers.get('access-control-allow-headers')).toMatch(/content-type/);
      expect(allowed.headers.get('access-control-allow-credentials')).toBeNull();
    }
    // The REST Link header is readable by an allowed page.
    const rest = await app.fetch(at('/api/metrics?limit=1'), { headers: { origin: 'https://a.example' } });
    expect(rest.headers.get('access-control-expose-headers')).toContain('link');

    for (const origin of [
      'https://c.example',
      'https://a.example.evil.example',
      'http://a.example',
      'null',
    ]) {
      const response = await postQuery(app, { origin });
      expect(response.status).toBe(200);
      expect(corsHeaders(response)).toEqual([]);
      expect((await preflight(app, origin)).status).toBe(403);
    }
  });

  it('allows any origin with *, as *, never with credentials nor for null', async () => {
    const app = appWith({ CORS_ORIGINS: '*' });
    for (const origin of ['https://anyone.example', 'http://localhost:3000']) {
      const response = await postQuery(app, { origin });
      expect(response.headers.get('access-control-allow-origin')).toBe('*');
      expect(response.headers.get('access-control-allow-credentials')).toBeNull();
      const allowed = await preflight(app, origin, '/api/metrics');
      expect(allowed.status).toBe(204);
      expect(allowed.headers.get('access-control-allow-credentials')).toBeNull();
    }
    expect(corsHeaders(await postQuery(app, { origin: 'null' }))).toEqual([]);
    expect((await preflight(app, 'null')).status).toBe(403);
  });
});

describe('security headers', () => {
  it('marks every answer nosniff: JSON, errors and pages', async () => {
    const app = appWith();
    for (const response of [
      await postQuery(app),
      await app.fetch(at('/api/metrics?limit=1')),
      await app.fetch(at('/api/nothing')),
      await app.fetch(at('/')),
      await app.fetch(at('/dashboard')),
      await app.fetch(at('/dashboard/dashboard.js')),
    ]) {
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    }
  });

  it('marks the answers of the metrics port (METRICS_PORT) nosniff too', async () => {
    const server = metricsServer({ scrape: async () => 'up 1\n', token: undefined });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      for (const path of ['/metrics', '/graphql']) {
        expect((await fetch(`${base}${path}`)).headers.get('x-content-type-options')).toBe('nosniff');
      }
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('gives the dashboard a self-only policy and forbids framing every page', async () => {
    const app = appWith();
    const dashboard = await app.fetch(at('/dashboard'), { headers: { accept: BROWSER_ACCEPT } });
    const policy = dashboard.headers.get('content-security-policy') ?? '';
    expect(policy).toContain("default-src 'self'");
    expect(policy).not.toContain('unsafe');
    for (const page of [
      dashboard,
      await app.fetch(at('/graphql'), { headers: { accept: BROWSER_ACCEPT } }),
      await appWith({ GRAPHIQL: 'false' }).fetch(at('/graphql'), { headers: { accept: BROWSER_ACCEPT } }),
    ]) {
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      expect(page.headers.get('x-frame-options')).toBe('DENY');
    }
  });
});

describe('POST media types', () => {
  const cases: [string, string | undefined, BodyInit][] = [
    [
      'a form (urlencoded)',
      'application/x-www-form-urlencoded',
      'query=%7B%20metricsSummary%20%7B%20count%20%7D%20%7D',
    ],
    ['multipart/form-data', 'multipart/form-data; boundary=x', multipartBody()],
    ['text/plain', 'text/plain', QUERY],
    ['no content type', undefined, new Blob([QUERY])],
  ];

  function multipartBody(): string {
    return [
      '--x',
      'Content-Disposition: form-data; name="operations"',
      '',
      QUERY,
      '--x',
      'Content-Disposition: form-data; name="map"',
      '',
      '{}',
      '--x--',
      '',
    ].join('\r\n');
  }

  it.each(cases)('refuses %s with 415 and a JSON body, running nothing', async (_, type, body) => {
    const app = appWith();
    const response = await app.fetch(at('/graphql'), {
      method: 'POST',
      headers: type === undefined ? {} : { 'content-type': type },
      body,
    });
    expect(response.status).toBe(415);
    const answer = (await response.json()) as { error: string; message: string };
    expect(answer.error).toBe('Unsupported Media Type');
    expect(answer.message).toContain('application/json');
    expect(answer.message).not.toContain('graphql-response+json');
    expect(answer.message).toContain(type === undefined ? 'without a content type' : type.split(';')[0]);
  });

  it('runs JSON and application/graphql', async () => {
    const app = appWith();
    const json = await postQuery(app, { 'content-type': 'application/json; charset=utf-8' });
    expect(((await json.json()) as { data: unknown }).data).toEqual({ metricsSummary: { count: 5 } });
    const graphql = await app.fetch(at('/graphql'), {
      method: 'POST',
      headers: { 'content-type': 'application/graphql', accept: 'application/json' },
      body: '{ metricsSummary { count } }',
    });
    expect(((await graphql.json()) as { data: unknown }).data).toEqual({ metricsSummary: { count: 5 } });
  });
});

describe('GraphiQL, /, and a browser on /graphql', () => {
  const production = { NODE_ENV: 'production', METRICS_PUBLIC: 'true' };

  it('is off in production: a browser gets a page saying so and how to turn it on, not an empty 406', async () => {
    const app = appWith(production);
    const response = await app.fetch(at('/graphql'), { headers: { accept: BROWSER_ACCEPT } });
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    const page = await response.text();
    expect(page).toContain('GraphiQL is off');
    expect(page).toContain('GRAPHIQL=true');
    // The API itself still answers, and / tells a JSON client where things are, GraphiQL not among them.
    expect(((await (await postQuery(app)).json()) as { data: unknown }).data).toEqual({
      metricsSummary: { count: 5 },
    });
    const index = (await (await app.fetch(at('/'))).json()) as Record<string, string>;
    expect(index).toMatchObject({ graphql: '/graphql', dashboard: '/dashboard' });
    expect(index.graphiql).toBeUndefined();
  });

  it('sends a browser on / to the dashboard, a JSON client to the index', async () => {
    const app = appWith();
    const browser = await app.fetch(at('/'), { headers: { accept: BROWSER_ACCEPT }, redirect: 'manual' });
    expect(browser.status).toBe(302);
    expect(browser.headers.get('location')).toBe('/dashboard');
    const json = await app.fetch(at('/'), { headers: { accept: 'application/json' } });
    expect(await json.json()).toMatchObject({ graphql: '/graphql', graphiql: '/graphql' });
  });

  it('serves GraphiQL, where on, made once: compressed by Accept-Encoding and revalidated with its ETag', async () => {
    const app = appWith({ ...production, GRAPHIQL: 'true' });
    const open = (headers: Record<string, string> = {}) =>
      app.fetch(at('/graphql'), { headers: { accept: BROWSER_ACCEPT, ...headers } });
    const plain = await open({ 'accept-encoding': 'identity' });
    expect(plain.status).toBe(200);
    expect(plain.headers.get('content-encoding')).toBeNull();
    const html = Buffer.from(await plain.arrayBuffer());
    expect(html.toString()).toContain('YogaGraphiQL');

    const brotli = await open({ 'accept-encoding': 'gzip, deflate, br' });
    expect(brotli.headers.get('content-encoding')).toBe('br');
    const brotliBytes = Buffer.from(await brotli.arrayBuffer());
    expect(brotliBytes.length).toBeLessThan(html.length / 3);
    expect(brotliDecompressSync(brotliBytes).equals(html)).toBe(true);

    const gzipped = await open({ 'accept-encoding': 'gzip' });
    expect(gzipped.headers.get('content-encoding')).toBe('gzip');
    expect(gunzipSync(Buffer.from(await gzipped.arrayBuffer())).equals(html)).toBe(true);
    expect((await open({ 'accept-encoding': 'br;q=0, gzip' })).headers.get('content-encoding')).toBe('gzip');

    for (const response of [plain, brotli, gzipped]) {
      expect(response.headers.get('cache-control')).toBe('no-cache');
      expect(response.headers.get('vary')).toMatch(/accept-encoding/);
    }
    const etag = brotli.headers.get('etag') ?? '';
    expect(etag).toMatch(/^"[\w-]+"$/);
    expect(etag).not.toBe(plain.headers.get('etag'));
    const revalidated = await open({ 'accept-encoding': 'br', 'if-none-match': etag });
    expect(revalidated.status).toBe(304);
    expect(revalidated.headers.get('etag')).toBe(etag);
    expect((await revalidated.arrayBuffer()).byteLength).toBe(0);

    // Rendering the 9 MB page cost ~150 ms of CPU a request: now it is a lookup.
    const started = performance.now();
    for (let i = 0; i < 20; i++) await (await open({ 'accept-encoding': 'br' })).arrayBuffer();
    expect(performance.now() - started).toBeLessThan(1500);
  });

  it('serves the dashboard and its assets compressed and revalidated with their ETags', async () => {
    const app = appWith();
    for (const path of ['/dashboard', '/dashboard/dashboard.js', '/dashboard/uPlot.iife.min.js']) {
      const response = await app.fetch(at(path), { headers: { 'accept-encoding': 'gzip, br' } });
      expect(response.headers.get('content-encoding')).toBe('br');
      expect(response.headers.get('cache-control')).toBe('no-cache');
      const etag = response.headers.get('etag') ?? '';
      const again = await app.fetch(at(path), {
        headers: { 'accept-encoding': 'gzip, br', 'if-none-match': etag },
      });
      expect(again.status).toBe(304);
    }
  });
});
