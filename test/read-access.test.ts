import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { type ServedApp, serve } from './support/sse.js';

const READ_TOKENS = ['first-read-token-0123456789', 'second-read-token-012345678'];
const INGEST_TOKEN = 'ingest-token-0123456789abcdef';
const SUMMARY = '{ metricsSummary { count } }';
const SUBSCRIPTION = 'subscription { metricsSummaryUpdated(window: "1h") { summary { count } } }';

let db: TestDatabase;
let served: ServedApp;
beforeAll(async () => {
  db = await createTestDatabase();
  await db.prisma.metric.createMany({
    data: [0, 1, 2].map((i) => ({
      timestamp: new Date(Date.UTC(2026, 5, 1, 0, i)),
      cpuLoad: i,
      concurrency: i,
    })),
  });
  served = await serve(
    createTestApp(db, {
      READ_TOKEN: READ_TOKENS.join(','),
      INGEST_TOKEN,
      METRICS_TOKEN: 'metrics-token-0123456789',
    }),
  );
});
afterAll(async () => {
  await served?.close();
  await db?.drop();
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

function post(body: unknown, headers: Record<string, string> = {}, path = '/graphql') {
  return fetch(`${served.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

interface Refusal {
  errors: { message: string; extensions: { code: string } }[];
}

async function expectGraphQLRefusal(response: Response, challenge: RegExp): Promise<void> {
  expect(response.status).toBe(401);
  expect(response.headers.get('www-authenticate')).toMatch(challenge);
  const body = (await response.json()) as Refusal;
  expect(body.errors[0]?.extensions.code).toBe('UNAUTHENTICATED');
  expect(body.errors[0]?.message).toMatch(/Bearer|token/);
}

/** Opens a stream, reads its status and first event when it has one, and closes it. */
async function openStream(url: string, init: RequestInit): Promise<{ status: number; first: string }> {
  const abort = new AbortController();
  const response = await fetch(url, { ...init, signal: abort.signal });
  let first = '';
  if (response.ok && response.body) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    while (!first.includes('"data"')) {
      const { value, done } = await reader.read();
      if (done) break;
      first += decoder.decode(value, { stream: true });
    }
  }
  abort.abort();
  return { status: response.status, first };
}

describe('READ_TOKEN', () => {
  it('refuses GraphQL reads without a token or with a wrong one, with 401, UNAUTHENTICATED and a Bearer challenge', async () => {
    await expectGraphQLRefusal(await post({ query: SUMMARY }), /^Bearer$/);
    await expectGraphQLRefusal(
      await post({ query: SUMMARY }, bearer('not-a-token-of-this-server-at-all')),
      /^Bearer error="invalid_token"$/,
    );
    await expectGraphQLRefusal(
      await post({ query: SUMMARY }, { authorization: READ_TOKENS[0] as string }),
      /^Bearer/,
    );
    const get = await fetch(`${served.url}/graphql?query=${encodeURIComponent(SUMMARY)}`, {
      headers: { accept: 'application/json' },
    });
    await expectGraphQLRefusal(get, /^Bearer$/);
  });

  it('answers reads with any of the read tokens, and with the write token', async () => {
    for (const token of [...READ_TOKENS, INGEST_TOKEN]) {
      const response = await post({ query: SUMMARY }, bearer(token));
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({
        data: { metricsSummary: { count: expect.any(Number) } },
      });
    }
  });

  it('keeps writes to the write token', async () => {
    const write = {
      query: 'mutation($s: [MetricInput!]!) { ingestMetrics(samples: $s) { inserted } }',
      variables: { s: [{ timestamp: '2026-06-01T01:00:00Z', cpuLoad: 1, concurrency: 1 }] },
    };
    const refused = (await (await post(write, bearer(READ_TOKENS[0] as string))).json()) as Refusal;
    expect(refused.errors[0]?.extensions.code).toBe('UNAUTHENTICATED');
    const written = await (await post(write, bearer(INGEST_TOKEN))).json();
    expect(written).toEqual({ data: { ingestMetrics: { inserted: 1 } } });
  });

  it('guards subscriptions on /graphql and both modes of /graphql/stream', async () => {
    const subscribe = (path: string, headers: Record<string, string>) =>
      openStream(`${served.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers },
        body: JSON.stringify({ query: SUBSCRIPTION }),
      });
    for (const path of ['/graphql', '/graphql/stream']) {
      expect((await subscribe(path, {})).status).toBe(401);
      const open = await subscribe(path, bearer(READ_TOKENS[1] as string));
      expect(open.status).toBe(200);
      expect(open.first).toContain('"count"');
    }
    // Single-connection mode's reservation: refused before anything is reserved.
    const reservation = await fetch(`${served.url}/graphql/stream`, { method: 'PUT' });
    expect(reservation.status).toBe(401);
    expect(reservation.headers.get('www-authenticate')).toBe('Bearer');
    const reserved = await fetch(`${served.url}/graphql/stream`, {
      method: 'PUT',
      headers: bearer(READ_TOKENS[0] as string),
    });
    expect(reserved.status).toBe(201);
  });

  it('refuses REST reads with a REST-shaped 401', async () => {
    const refused = await fetch(`${served.url}/api/metrics`);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toBe('Bearer');
    expect(await refused.json()).toMatchObject({ error: 'Unauthorized', code: 'UNAUTHENTICATED' });
    const rows = await fetch(`${served.url}/api/metrics`, { headers: bearer(READ_TOKENS[0] as string) });
    expect(rows.status).toBe(200);
    expect(((await rows.json()) as unknown[]).length).toBeGreaterThanOrEqual(3);
  });

  it('leaves health, readiness, pages and the index open, and /metrics to its own token', async () => {
    const open = async (path: string, accept = 'application/json') =>
      (await fetch(`${served.url}${path}`, { headers: { accept }, redirect: 'manual' })).status;
    expect(await open('/healthz')).toBe(200);
    expect(await open('/readyz')).toBe(200);
    expect(await open('/')).toBe(200);
    expect(await open('/', 'text/html')).toBe(302);
    expect(await open('/dashboard', 'text/html')).toBe(200);
    expect(await open('/dashboard/dashboard.js', '*/*')).toBe(200);
    expect(await open('/graphql', 'text/html')).toBe(200);
    expect(await open('/metrics')).toBe(401);
    const readTokenOnMetrics = await fetch(`${served.url}/metrics`, {
      headers: bearer(READ_TOKENS[0] as string),
    });
    expect(readTokenOnMetrics.status).toBe(401);
    const scraped = await fetch(`${served.url}/metrics`, { headers: bearer('metrics-token-0123456789') });
    expect(scraped.status).toBe(200);
  });
});
