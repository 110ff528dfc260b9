import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createClient, type ExecutionResult, NetworkError } from 'graphql-sse';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LiveUpdates } from '../src/live/live-updates.js';
import { createTestService } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { type ServedApp, serve } from './support/sse.js';

// What stays reachable after a flood of reservations, not garbage not yet collected.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

const TTL_MS = 400;
const PER_CLIENT = 4;
const TOTAL = 12;
const TOKEN_HEADER = 'x-graphql-event-stream-token';
const FLOOD = 2000;
const OPERATIONS = 3;

let db: TestDatabase;
let served: ServedApp;
let live: LiveUpdates;
let nextSecond = Date.parse('2026-04-01T00:00:00Z') / 1000;

beforeAll(async () => {
  db = await createTestDatabase();
  const service = createTestService(db, {
    STREAM_RESERVATION_TTL_MS: String(TTL_MS),
    MAX_STREAM_RESERVATIONS: String(TOTAL),
    MAX_STREAM_RESERVATIONS_PER_CLIENT: String(PER_CLIENT),
    MAX_STREAM_OPERATIONS: String(OPERATIONS),
    // So that one test can be many clients.
    CLIENT_ADDRESS_HEADER: 'x-forwarded-for',
  });
  live = service.live;
  served = await serve(service.app);
});

afterAll(async () => {
  await served?.close();
  await db?.drop();
});

const stream = (init: RequestInit = {}, query = '') => fetch(`${served.url}/graphql/stream${query}`, init);
const reserve = (client: string, headers: Record<string, string> = {}) =>
  stream({ method: 'PUT', headers: { 'x-forwarded-for': client, ...headers } });

async function reservationsWaiting(): Promise<number> {
  const text = await (await fetch(`${served.url}/metrics`)).text();
  const line = text
    .split('\n')
    .find((candidate) => candidate.startsWith('metrics_api_live_stream_reservations '));
  return Number(line?.split(' ')[1]);
}

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function insertSamples(count: number): Promise<void> {
  const times = Array.from({ length: count }, () => new Date(nextSecond++ * 1000).toISOString());
  await db.pool.query(
    `INSERT INTO metrics ("timestamp", cpu_load, concurrency) SELECT t, 0.5, 1 FROM unnest($1::timestamptz[]) AS t`,
    [times],
  );
}

interface Collected {
  results: ExecutionResult<Record<string, unknown>>[];
  error: unknown;
  completed: boolean;
}

function collect(
  client: ReturnType<typeof createClient>,
  query: string,
  variables: Record<string, unknown> = {},
) {
  const collected: Collected = { results: [], error: undefined, completed: false };
  const stop = client.subscribe(
    { query, variables },
    {
      next: (result) => collected.results.push(result as ExecutionResult<Record<string, unknown>>),
      error: (error) => {
        collected.error = error;
      },
      complete: () => {
        collected.completed = true;
      },
    },
  );
  return { collected, stop };
}

const BAD_ARGUMENTS = [
  {
    query: 'subscription($after: String) { metricsAdded(after: $after) { cursor } }',
    variables: { after: 'nope' },
  },
  { query: 'subscription { metricSeriesUpdated(window: "7d", bucket: "1s") { start } }', variables: {} },
];

describe('the official graphql-sse client', () => {
  it('reserves, connects and subscribes in single-connection mode (PUT, GET, POST), and the reservation ends with its stream', async () => {
    const client = createClient({
      url: `${served.url}/graphql/stream`,
      singleConnection: true,
      retryAttempts: 0,
    });
    const { collected, stop } = collect(client, 'subscription { metricsAdded { cursor node { cpuLoad } } }');
    await until(() => live.samples.counts.open === 1, 'the subscription to open');
    // Claimed by its stream: no longer waiting.
    expect(await reservationsWaiting()).toBe(0);
    await insertSamples(2);
    await until(() => collected.results.length === 2, 'two events');
    expect(collected.error).toBeUndefined();
    expect(collected.results[0]?.data).toMatchObject({ metricsAdded: { node: { cpuLoad: 0.5 } } });
    stop();
    client.dispose();
    await until(() => live.samples.counts.open === 0, 'the subscription to end');
  });

  it('gets a bad argument as a coded error over a single connection (the operation’s one event), not a 400', async () => {
    const client = createClient({
      url: `${served.url}/graphql/stream`,
      singleConnection: true,
      retryAttempts: 0,
    });
    for (const { query, variables } of BAD_ARGUMENTS) {
      const { collected } = collect(client, query, variables);
      await until(() => collected.completed || collected.error !== undefined, 'the refusal');
      expect(collected.error).toBeUndefined();
      expect(collected.results).toHaveLength(1);
      expect(collected.results[0]?.data).toBeNull();
      expect(collected.results[0]?.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT' });
    }
    client.dispose();
  });

  it('runs at most MAX_STREAM_OPERATIONS subscriptions on one stream, refusing the next with a coded event until one ends', async () => {
    const client = createClient({
      url: `${served.url}/graphql/stream`,
      singleConnection: true,
      retryAttempts: 0,
    });
    const query = 'subscription { metricsAdded { cursor } }';
    const running = Array.from({ length: OPERATIONS }, () => collect(client, query));
    await until(() => live.samples.counts.open === OPERATIONS, 'the subscriptions to open');
    const refused = collect(client, query);
    await until(() => refused.collected.completed, 'the refusal');
    expect(refused.collected.results).toHaveLength(1);
    expect(refused.collected.results[0]?.data).toBeNull();
    expect(refused.collected.results[0]?.errors?.[0]?.extensions).toMatchObject({
      code: 'TOO_MANY_STREAM_OPERATIONS',
    });
    // One ends (the client stops it): there is room for another, which gets events.
    running[0]?.stop();
    await until(() => live.samples.counts.open === OPERATIONS - 1, 'one subscription to end');
    const next = collect(client, query);
    await until(() => live.samples.counts.open === OPERATIONS, 'the next subscription to open');
    await insertSamples(1);
    await until(() => next.collected.results.length === 1, 'its event');
    expect(next.collected.results[0]?.errors).toBeUndefined();
    client.dispose();
    await until(() => live.samples.counts.open === 0, 'every subscription to end');
  });

  it('gets a bad argument as a coded refusal before any stream in distinct-connections mode, at /graphql and /graphql/stream', async () => {
    for (const path of ['/graphql', '/graphql/stream']) {
      const client = createClient({ url: `${served.url}${path}`, retryAttempts: 0 });
      for (const { query, variables } of BAD_ARGUMENTS) {
        const { collected } = collect(client, query, variables);
        await until(() => collected.error !== undefined || collected.completed, `the refusal at ${path}`);
        expect(collected.results).toEqual([]);
        expect(collected.error).toBeInstanceOf(NetworkError);
        const response = (collected.error as NetworkError<Response>).response as Response;
        expect(response.status).toBe(400);
        expect(response.headers.get('content-type')).toMatch(/^application\/graphql-response\+json/);
        const body = (await response.json()) as ExecutionResult;
        expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT' });
      }
      client.dispose();
    }
  });
});

describe('stream reservations (PUT /graphql/stream)', () => {
  it('expire when no stream claims them in time: their token is then refused with 404 STREAM_NOT_FOUND', async () => {
    const put = await reserve('10.0.0.1');
    expect(put.status).toBe(201);
    const token = await put.text();
    expect(token).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(await reservationsWaiting()).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, TTL_MS + 300));
    expect(await reservationsWaiting()).toBe(0);
    const get = await stream({ headers: { accept: 'text/event-stream', [TOKEN_HEADER]: token } });
    expect(get.status).toBe(404);
    expect(get.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await get.json()).toMatchObject({ errors: [{ extensions: { code: 'STREAM_NOT_FOUND' } }] });
  });

  it('end the operations an unclaimed reservation started when it expires', async () => {
    const token = await (await reserve('10.0.0.2')).text();
    const post = await stream({
      method: 'POST',
      headers: { 'content-type': 'application/json', [TOKEN_HEADER]: token },
      body: JSON.stringify({
        query: 'subscription { metricsAdded { cursor } }',
        extensions: { operationId: 'a' },
      }),
    });
    expect(post.status).toBe(202);
    await until(() => live.samples.counts.open === 1, 'the operation to start');
    await until(
      () => live.samples.counts.open === 0,
      'the operation to end with its reservation',
      TTL_MS + 5000,
    );
  });

  it('are capped per client and in total, with 429 TOO_MANY_STREAM_RESERVATIONS and Retry-After past either', async () => {
    await until(async () => (await reservationsWaiting()) === 0, 'earlier reservations to expire');
    const statuses = [];
    for (let i = 0; i < PER_CLIENT + 2; i++) statuses.push((await reserve('10.0.1.1')).status);
    expect(statuses).toEqual([...Array(PER_CLIENT).fill(201), 429, 429]);
    const refused = await reserve('10.0.1.1');
    expect(refused.headers.get('retry-after')).toBe(String(Math.ceil(TTL_MS / 1000)));
    expect(await refused.json()).toMatchObject({
      errors: [{ extensions: { code: 'TOO_MANY_STREAM_RESERVATIONS' } }],
    });
    // Other clients, up to the total.
    const others = [];
    for (let i = 0; i < TOTAL; i++) others.push((await reserve(`10.0.2.${i}`)).status);
    expect(others.filter((status) => status === 201)).toHaveLength(TOTAL - PER_CLIENT);
    expect(others.slice(TOTAL - PER_CLIENT).every((status) => status === 429)).toBe(true);
    expect(await reservationsWaiting()).toBe(TOTAL);
    // Once they expire, the same client reserves again.
    await until(async () => (await reservationsWaiting()) === 0, 'the reservations to expire');
    expect((await reserve('10.0.1.1')).status).toBe(201);
  });

  it('refuse a client-chosen token that is not of the server’s form (400 BAD_STREAM_TOKEN) and issue their own on PUT', async () => {
    const long = 'x'.repeat(15 * 1024);
    for (const token of [long, 'short', `${'a'.repeat(31)}!`]) {
      for (const init of [
        { method: 'PUT' },
        { method: 'GET', headers: { accept: 'text/event-stream' } },
        { method: 'DELETE' },
      ]) {
        const response = await stream({ ...init, headers: { ...init.headers, [TOKEN_HEADER]: token } });
        expect(response.status).toBe(400);
        expect(await response.json()).toMatchObject({
          errors: [{ extensions: { code: 'BAD_STREAM_TOKEN' } }],
        });
      }
    }
    const byQuery = await stream(
      { headers: { accept: 'text/event-stream' } },
      `?token=${long.slice(0, 2000)}`,
    );
    expect(byQuery.status).toBe(400);
    // A well-formed token of the client's own choosing: the server still chooses.
    const chosen = 'c'.repeat(32);
    const put = await reserve('10.0.3.1', { [TOKEN_HEADER]: chosen });
    expect(put.status).toBe(201);
    expect(await put.text()).not.toBe(chosen);
    const unknown = await stream({ headers: { accept: 'text/event-stream', [TOKEN_HEADER]: chosen } });
    expect(unknown.status).toBe(404);
  });

  it('stay bounded in count and memory under a flood of PUTs, 16 at a time, with and without 15 KB tokens', async () => {
    await until(async () => (await reservationsWaiting()) === 0, 'earlier reservations to expire');
    collectGarbage();
    const baseline = process.memoryUsage().heapUsed;
    const long = 'y'.repeat(15 * 1024);
    const counts = new Map<number, number>();
    let sent = 0;
    const worker = async () => {
      while (sent < FLOOD) {
        const i = sent++;
        const headers: Record<string, string> = { 'x-forwarded-for': `10.1.${(i >> 8) & 255}.${i & 255}` };
        if (i % 2) headers[TOKEN_HEADER] = long;
        const response = await stream({ method: 'PUT', headers });
        await response.arrayBuffer();
        counts.set(response.status, (counts.get(response.status) ?? 0) + 1);
        if (i % 250 === 0) expect(await reservationsWaiting()).toBeLessThanOrEqual(TOTAL);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    expect(counts.get(400)).toBe(FLOOD / 2);
    expect((counts.get(201) ?? 0) + (counts.get(429) ?? 0)).toBe(FLOOD / 2);
    expect(await reservationsWaiting()).toBeLessThanOrEqual(TOTAL);
    collectGarbage();
    const grown = process.memoryUsage().heapUsed - baseline;
    // Loose: 1,000 kept 15 KB tokens alone would be 15 MB.
    expect(grown).toBeLessThan(8 * 1024 * 1024);
  }, 60_000);

  it('answers requests without a token that need one, and what graphql-sse refuses bodiless, in coded JSON', async () => {
    const noToken = await stream({
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(noToken.status).toBe(404);
    expect(await noToken.json()).toMatchObject({ errors: [{ extensions: { code: 'STREAM_NOT_FOUND' } }] });
    // Past the caps a PUT is refused before anything else is looked at: the flood's must be gone.
    await until(async () => (await reservationsWaiting()) === 0, 'earlier reservations to expire');
    const notAcceptable = await reserve('10.0.4.1', { accept: 'application/json' });
    expect(notAcceptable.status).toBe(406);
    expect(await notAcceptable.json()).toMatchObject({
      errors: [{ extensions: { code: 'NOT_ACCEPTABLE' } }],
    });
  });
});
