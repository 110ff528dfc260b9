import { createClient } from 'graphql-sse';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LISTENER_APPLICATION_NAME } from '../src/database/change-listener.js';
import { decodeAddedCursor } from '../src/domain/cursor.js';
import { createTestApp, createTestService } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { runIngest } from './support/ingest.js';
import { type GraphQLEvent, type ServedApp, SseSubscription, serve } from './support/sse.js';

const TOKEN = 'live-test-token-0123456789';
const ADDED = `subscription Added($after: String, $start: DateTime) {
  metricsAdded(after: $after, start: $start) { cursor node { id timestamp unixTime cpuLoad concurrency } }
}`;

const BATCH = `subscription Batch($after: String, $start: DateTime) {
  metricsAddedBatch(after: $after, start: $start) { cursor nodes { id timestamp cpuLoad concurrency } }
}`;

interface BatchEvent {
  metricsAddedBatch: { cursor: string; nodes: { id: string; timestamp: string; cpuLoad: number }[] };
}

interface AddedEvent {
  metricsAdded: {
    cursor: string;
    node: { id: string; timestamp: string; unixTime: number; cpuLoad: number; concurrency: number };
  };
}

const encodedAdded = (position: string) => Buffer.from(`added:${position}`).toString('base64url');

let db: TestDatabase;
let sql: pg.Client;
let a: ServedApp;
let b: ServedApp;
/** Distinct timestamps for every sample written here, one second apart. */
let nextSecond = Date.parse('2026-03-01T00:00:00Z') / 1000;
const sampleTimes = (count: number) =>
  Array.from({ length: count }, () => new Date(nextSecond++ * 1000).toISOString());

const open: SseSubscription[] = [];
function subscribe<Data = AddedEvent>(
  app: ServedApp,
  query: string,
  variables: Record<string, unknown> = {},
) {
  const subscription = new SseSubscription<Data>(app.url, query, variables);
  open.push(subscription as SseSubscription);
  return subscription;
}

/** Ids stored in commit order as the table tells them (ids are commit positions). */
async function storedIds(): Promise<string[]> {
  const { rows } = await sql.query<{ id: string }>('SELECT id::text AS id FROM metrics ORDER BY metrics.id');
  return rows.map((row) => row.id);
}

const idsOf = (subscription: SseSubscription<AddedEvent>) =>
  subscription.events.map((event) => String(decodeAddedCursor(event.data?.metricsAdded.cursor ?? '')));

/** The ids of a batch stream's samples, from their global ids ("Metric:<id>" in base64). */
const batchIdsOf = (subscription: SseSubscription<BatchEvent>) =>
  subscription.events.flatMap((event) =>
    (event.data?.metricsAddedBatch.nodes ?? []).map((node) =>
      Buffer.from(node.id, 'base64').toString().replace('Metric:', ''),
    ),
  );

/** Samples written by one statement, so that the feed reads them together. */
async function insertTogether(timestamps: string[]): Promise<void> {
  await sql.query(
    `INSERT INTO metrics ("timestamp", cpu_load, concurrency) SELECT t, 0.5, 1 FROM unnest($1::timestamptz[]) AS t`,
    [timestamps],
  );
}

function ingestThrough(app: ServedApp, timestamps: string[]) {
  return fetch(`${app.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({
      query: 'mutation($samples: [MetricInput!]!) { ingestMetrics(samples: $samples) { inserted } }',
      variables: { samples: timestamps.map((timestamp) => ({ timestamp, cpuLoad: 0.5, concurrency: 2 })) },
    }),
  }).then((response) => response.json() as Promise<{ data?: { ingestMetrics: { inserted: number } } }>);
}

/** Waits until the listener of each app holds its connection (pg_stat_activity shows it). */
async function listenerPids(count: number): Promise<number[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { rows } = await sql.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1`,
      [LISTENER_APPLICATION_NAME],
    );
    if (rows.length >= count) return rows.map((row) => row.pid);
    if (Date.now() > deadline) throw new Error(`${rows.length} listeners, expected ${count}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  sql = new pg.Client(db.url);
  await sql.connect();
  const env = { INGEST_TOKEN: TOKEN, LIVE_THROTTLE_MS: '100' };
  a = await serve(createTestApp(db, env));
  b = await serve(createTestApp(db, env));
});

afterAll(async () => {
  for (const subscription of open) subscription.close();
  await a?.close();
  await b?.close();
  await sql?.end();
  await db?.drop();
});

describe('metricsAdded across two replicas', () => {
  it('delivers rows from the mutation, the ingest script and plain SQL to both, once each, in commit order', async () => {
    const onA = subscribe(a, ADDED);
    const onB = subscribe(b, ADDED);
    await Promise.all([onA.opened, onB.opened]);
    expect(onA.contentType).toContain('text/event-stream');
    await listenerPids(2);
    const before = (await storedIds()).length;

    expect((await ingestThrough(b, sampleTimes(3))).data?.ingestMetrics.inserted).toBe(3);
    const lines = sampleTimes(4)
      .map((timestamp) => JSON.stringify({ timestamp, cpu_load: 0.25, concurrency: 1 }))
      .join('\n');
    expect((await runIngest(db.url, ['--format', 'ndjson', '-'], lines)).code).toBe(0);
    const [t1, t2] = sampleTimes(2);
    await sql.query(
      `INSERT INTO metrics ("timestamp", cpu_load, concurrency) VALUES ($1, 0.1, 1), ($2, 0.2, 2)`,
      [t1, t2],
    );

    const expected = (await storedIds()).slice(before);
    expect(expected).toHaveLength(9);
    await onA.take(9);
    await onB.take(9);
    expect(idsOf(onA)).toEqual(expected);
    expect(idsOf(onB)).toEqual(expected);
    const first = onA.events[0]?.data?.metricsAdded.node;
    expect(first).toMatchObject({ cpuLoad: 0.5, concurrency: 2 });
    expect(first?.unixTime).toBe(Date.parse(first?.timestamp ?? '') / 1000);
    // Nothing more arrives: each row came once.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(onA.events).toHaveLength(9);
    expect(onB.events).toHaveLength(9);
    onA.close();
    onB.close();
  });

  it('keeps commit order under concurrent writers, and the revision lock is what serialises them', async () => {
    const onA = subscribe(a, ADDED);
    await onA.opened;
    await listenerPids(2);
    const before = (await storedIds()).length;

    // A writer holding the revision lock makes the next writer wait: its ids come after.
    const holder = new pg.Client(db.url);
    await holder.connect();
    await holder.query('BEGIN');
    const [held] = sampleTimes(1);
    await holder.query(`INSERT INTO metrics ("timestamp", cpu_load, concurrency) VALUES ($1, 1, 1)`, [held]);
    const waiting = ingestThrough(b, sampleTimes(2));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const { rows: blocked } = await sql.query<{ waiting: boolean }>(
      `SELECT count(*) > 0 AS waiting FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'`,
    );
    expect(blocked[0]?.waiting).toBe(true);
    await holder.query('COMMIT');
    await holder.end();
    await waiting;

    // Then many writers at once, through both replicas and SQL.
    await Promise.all([
      ...Array.from({ length: 6 }, (_, i) => ingestThrough(i % 2 ? a : b, sampleTimes(5))),
      ...Array.from({ length: 4 }, () => {
        const [timestamp] = sampleTimes(1);
        return sql.query(`INSERT INTO metrics ("timestamp", cpu_load, concurrency) VALUES ($1, 0.3, 3)`, [
          timestamp,
        ]);
      }),
    ]);
    const expected = (await storedIds()).slice(before);
    expect(expected).toHaveLength(1 + 2 + 30 + 4);
    await onA.take(expected.length);
    expect(idsOf(onA)).toEqual(expected);
    const heldId = idsOf(onA)[0];
    expect(onA.events[0]?.data?.metricsAdded.node.timestamp).toBe(held);
    expect(heldId).toBe(expected[0]);
    onA.close();
  });

  it('resumes after a cursor with exactly the events it missed, then goes on live', async () => {
    const first = subscribe(a, ADDED);
    await first.opened;
    await listenerPids(2);
    await ingestThrough(a, sampleTimes(3));
    await first.take(3);
    const cursor = first.events[1]?.data?.metricsAdded.cursor;
    first.close();
    const missedBefore = (await storedIds()).length;
    await ingestThrough(b, sampleTimes(4));

    const resumed = subscribe(b, ADDED, { after: cursor });
    await resumed.take(5);
    const all = await storedIds();
    // The third event of the first stream, then the four written while away.
    expect(idsOf(resumed)).toEqual([idsOf(first)[2], ...all.slice(missedBefore)]);
    await ingestThrough(a, sampleTimes(2));
    await resumed.take(7);
    expect(idsOf(resumed)).toEqual([idsOf(first)[2], ...(await storedIds()).slice(missedBefore)]);
    resumed.close();
  });

  it('filters by sample time with start, back-filled samples included when they are written', async () => {
    const start = new Date(nextSecond * 1000 + 3600_000).toISOString();
    const later = subscribe(a, ADDED, { start });
    await later.opened;
    await listenerPids(2);
    const [early] = sampleTimes(1);
    const late = new Date(Date.parse(start) + 5000).toISOString();
    await ingestThrough(b, [early as string, late]);
    await later.take(1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(later.events.map((event) => event.data?.metricsAdded.node.timestamp)).toEqual([late]);
    later.close();
  });

  it("loses nothing when the listener's connection is killed while writes go on", async () => {
    const onA = subscribe(a, ADDED);
    const onB = subscribe(b, ADDED);
    await Promise.all([onA.opened, onB.opened]);
    const before = (await storedIds()).length;
    let writes = 0;
    const writer = (async () => {
      for (let i = 0; i < 20; i++) {
        await ingestThrough(i % 2 ? a : b, sampleTimes(3));
        writes += 3;
        await new Promise((resolve) => setTimeout(resolve, 15));
      }
    })();
    for (let kill = 0; kill < 3; kill++) {
      await new Promise((resolve) => setTimeout(resolve, 60));
      const pids = await listenerPids(1);
      await sql.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [pids]);
    }
    await writer;
    expect(writes).toBe(60);
    const expected = (await storedIds()).slice(before);
    await onA.take(60, 20_000);
    await onB.take(60, 20_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(idsOf(onA)).toEqual(expected);
    expect(idsOf(onB)).toEqual(expected);
    onA.close();
    onB.close();
  });

  it('refuses arguments it cannot use with BAD_USER_INPUT, before any stream', async () => {
    const refusals = [
      { query: ADDED, variables: { after: 'bm90LWEtY3Vyc29y' }, argument: 'after' },
      // A position past the largest bigint: no read could ever resume there.
      { query: ADDED, variables: { after: encodedAdded('9999999999999999999') }, argument: 'after' },
      { query: BATCH, variables: { after: encodedAdded('9223372036854775808') }, argument: 'after' },
      {
        query: 'subscription { metricSeriesUpdated(window: "7d", bucket: "1s") { start } }',
        variables: {},
        argument: 'bucket',
      },
      { query: 'subscription { metricsSummaryUpdated(window: "soon") { start } }', variables: {} },
    ];
    for (const { query, variables, argument } of refusals) {
      const response = await fetch(`${a.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ query, variables }),
      });
      expect(response.status).toBe(400);
      expect(response.headers.get('content-type')).toBe('application/graphql-response+json; charset=utf-8');
      const body = (await response.json()) as { data?: unknown; errors: GraphQLEvent['errors'] };
      expect(body.data).toBeUndefined();
      expect(body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      if (argument) expect(body.errors?.[0]?.message).toContain(argument);
    }
    // A document that does not parse opens no stream either.
    const unparsed = await fetch(`${a.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: 'subscription {' }),
    });
    expect(unparsed.status).toBe(400);
    expect(((await unparsed.json()) as GraphQLEvent).errors?.[0]?.extensions?.code).toBe(
      'GRAPHQL_PARSE_FAILED',
    );
    // A client that asked for JSON keeps getting JSON, as for any request.
    const asJson = await fetch(`${a.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ query: ADDED, variables: { after: 'nope' } }),
    });
    expect(asJson.headers.get('content-type')).toMatch(/^application\/json/);
    expect(((await asJson.json()) as GraphQLEvent).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});

describe('metricsAddedBatch', () => {
  it('sends what one statement stored as one event, in commit order, on both replicas', async () => {
    const onA = subscribe<BatchEvent>(a, BATCH);
    const onB = subscribe<BatchEvent>(b, BATCH);
    await Promise.all([onA.opened, onB.opened]);
    await listenerPids(2);
    const before = (await storedIds()).length;
    await insertTogether(sampleTimes(5));
    // The second write after the first is out, or one read of the feed could find both.
    await Promise.all([onA.take(1), onB.take(1)]);
    await ingestThrough(b, sampleTimes(2));
    const expected = (await storedIds()).slice(before);
    await onA.until(() => batchIdsOf(onA).length >= 7);
    await onB.until(() => batchIdsOf(onB).length >= 7);
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const stream of [onA, onB]) {
      expect(batchIdsOf(stream)).toEqual(expected);
      expect(stream.events.map((event) => event.data?.metricsAddedBatch.nodes.length)).toEqual([5, 2]);
      // Each batch's cursor is its last sample's.
      const last = stream.events[0]?.data?.metricsAddedBatch.cursor ?? '';
      expect(String(decodeAddedCursor(last))).toBe(expected[4]);
    }
    onA.close();
    onB.close();
  });

  it("resumes from a batch's cursor with metricsAdded, and from metricsAdded's with a batch", async () => {
    const batches = subscribe<BatchEvent>(a, BATCH);
    await batches.opened;
    await insertTogether(sampleTimes(3));
    await batches.take(1);
    const batchCursor = batches.events[0]?.data?.metricsAddedBatch.cursor;
    batches.close();
    const missedFrom = (await storedIds()).length;
    await insertTogether(sampleTimes(4));

    const samples = subscribe(b, ADDED, { after: batchCursor });
    await samples.take(4);
    expect(idsOf(samples)).toEqual((await storedIds()).slice(missedFrom));
    const sampleCursor = samples.events[1]?.data?.metricsAdded.cursor;
    samples.close();

    const resumed = subscribe<BatchEvent>(a, BATCH, { after: sampleCursor });
    await resumed.until(() => batchIdsOf(resumed).length >= 2);
    expect(batchIdsOf(resumed)).toEqual((await storedIds()).slice(missedFrom + 2));
    resumed.close();
  });

  it('keeps only samples taken from start on', async () => {
    const start = new Date(nextSecond * 1000 + 3600_000).toISOString();
    const later = subscribe<BatchEvent>(a, BATCH, { start });
    await later.opened;
    const late = new Date(Date.parse(start) + 5000).toISOString();
    await insertTogether([...sampleTimes(2), late]);
    await later.take(1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(
      later.events.map((event) => event.data?.metricsAddedBatch.nodes.map((node) => node.timestamp)),
    ).toEqual([[late]]);
    later.close();
  });
});

describe('events shared between subscribers, and written together', () => {
  it('gives each subscriber the selection its own variables ask for', async () => {
    const query = `subscription Shaped($after: String, $withLoad: Boolean!) {
      metricsAdded(after: $after) { cursor node { timestamp cpuLoad @include(if: $withLoad) } }
    }`;
    type Shaped = { metricsAdded: { cursor: string; node: { timestamp: string; cpuLoad?: number } } };
    // A stream opens once its replica listens: nothing written after `opened` can be missed.
    const withLoad = subscribe<Shaped>(a, query, { withLoad: true });
    const withoutLoad = subscribe<Shaped>(a, query, { withLoad: false });
    await Promise.all([withLoad.opened, withoutLoad.opened]);
    await insertTogether(sampleTimes(1));
    await withLoad.take(1);
    await withoutLoad.take(1);
    const cursor = withLoad.events[0]?.data?.metricsAdded.cursor;
    // A resume cursor only shapes the stream: this subscriber shares the events of the first one.
    const resumed = subscribe<Shaped>(a, query, { after: cursor, withLoad: true });
    await resumed.opened;
    const [timestamp] = sampleTimes(1);
    await insertTogether([timestamp as string]);
    await withLoad.take(2);
    await withoutLoad.take(2);
    await resumed.take(1);
    expect(withLoad.events[1]?.data?.metricsAdded.node).toEqual({ timestamp, cpuLoad: 0.5 });
    expect(withoutLoad.events[1]?.data?.metricsAdded.node).toEqual({ timestamp });
    expect(resumed.events[0]).toEqual(withLoad.events[1]);
    for (const stream of [withLoad, withoutLoad, resumed]) stream.close();
  });

  it('writes the events of one statement in one chunk, framed as Yoga frames them', async () => {
    // In process, so that the response body's chunks are the writes the socket would get.
    const app = createTestApp(db, { INGEST_TOKEN: TOKEN });
    try {
      const response = await app.fetch('http://localhost/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ query: ADDED }),
      });
      expect(response.headers.get('content-type')).toBe('text/event-stream');
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      const decoder = new TextDecoder();
      const chunk = async () => decoder.decode((await reader.read()).value);
      expect(await chunk()).toBe(':\n\n');
      await insertTogether(sampleTimes(3));
      const events = (await chunk()).split('\n\n');
      expect(events.pop()).toBe('');
      expect(events).toHaveLength(3);
      for (const event of events) {
        expect(event).toMatch(
          /^event: next\ndata: \{"data":\{"metricsAdded":\{"cursor":"[\w-]+","node":\{"id":/,
        );
      }
      await reader.cancel();
    } finally {
      await app.dispose();
    }
  });
});

describe('a subscriber that does not read', () => {
  it('is held back, the server taking only what its response stream queues, and then gets every sample once, in order', async () => {
    // In process, so that the response body is read (or not) with nothing buffering in between.
    const { app, live } = createTestService(db, { INGEST_TOKEN: TOKEN });
    try {
      const response = await app.fetch('http://localhost/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ query: ADDED }),
      });
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      const decoder = new TextDecoder();
      expect(decoder.decode((await reader.read()).value)).toBe(':\n\n');
      const before = (await storedIds()).length;
      const published = live.feed.counts.rows;
      // More than a stream queues (10,000 rows), none of it read by the client; each statement read
      // by the feed before the next, so that a chunk is one statement's rows. Times of their own,
      // apart from the other tests' back-filled ones.
      const first = Date.parse('2020-01-01T00:00:00Z');
      for (let statement = 0; statement < 12; statement++) {
        await insertTogether(
          Array.from({ length: 1000 }, (_, i) =>
            new Date(first + (statement * 1000 + i) * 1000).toISOString(),
          ),
        );
        await expect.poll(() => live.feed.counts.rows).toBe(published + (statement + 1) * 1000);
      }
      // A chunk per queue between the stream and the reader: two of them here.
      expect(live.samples.counts.delivered).toBeLessThanOrEqual(3000);
      const expected = (await storedIds()).slice(before);
      let text = '';
      let events = 0;
      while (events < expected.length) {
        const chunk = decoder.decode((await reader.read()).value);
        events += (chunk.match(/^event: next$/gm) ?? []).length;
        text += chunk;
      }
      const ids = [...text.matchAll(/"cursor":"([\w-]+)"/g)].map((match) =>
        String(decodeAddedCursor(match[1] ?? '')),
      );
      expect(ids).toEqual(expected);
      expect(live.samples.counts.delivered).toBe(expected.length);
      await reader.cancel();
    } finally {
      await app.dispose();
    }
  });
});

describe('GraphQL over SSE, single-connection mode', () => {
  it('holds several subscriptions on one connection', async () => {
    const client = createClient({ url: `${a.url}/graphql/stream`, singleConnection: true, retryAttempts: 0 });
    const added: unknown[] = [];
    const summaries: { metricsSummaryUpdated: { summary: { count: number } } }[] = [];
    const errors: unknown[] = [];
    const sink = <T>(into: T[]) => ({
      next: (result: { data?: unknown }) => into.push(result.data as T),
      error: (error: unknown) => errors.push(error),
      complete: () => {},
    });
    const stopAdded = client.subscribe({ query: 'subscription { metricsAdded { cursor } }' }, sink(added));
    const stopSummary = client.subscribe(
      { query: 'subscription { metricsSummaryUpdated(window: "3650d") { summary { count } } }' },
      sink(summaries),
    );
    const deadline = Date.now() + 10_000;
    while (summaries.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(errors).toEqual([]);
    const before = summaries[0]?.metricsSummaryUpdated.summary.count ?? -1;
    expect(before).toBe((await storedIds()).length);
    await ingestThrough(b, sampleTimes(2));
    while (
      (added.length < 2 || summaries.at(-1)?.metricsSummaryUpdated.summary.count !== before + 2) &&
      Date.now() < deadline
    ) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(added).toHaveLength(2);
    expect(summaries.at(-1)?.metricsSummaryUpdated.summary.count).toBe(before + 2);
    stopAdded();
    stopSummary();
    client.dispose();
  });
});
