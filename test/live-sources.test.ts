import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeAddedCursor } from '../src/domain/cursor.js';
import type { StoredMetric } from '../src/domain/metric.js';
import type { LiveUpdates } from '../src/live/live-updates.js';
import { type StreamFailure, unlessFailed } from '../src/live/stream-failure.js';
import type { MetricStore } from '../src/store/metric-store.js';
import { createTestService } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { type GraphQLEvent, type ServedApp, SseSubscription, serve } from './support/sse.js';

const FILTER_VARIABLES = '$source: String, $sources: [String!], $labels: [LabelMatcher!]';
const FILTER_ARGUMENTS = 'source: $source, sources: $sources, labels: $labels';
const ADDED = `subscription Added($after: String, ${FILTER_VARIABLES}) {
  metricsAdded(after: $after, ${FILTER_ARGUMENTS}) { cursor node { timestamp cpuLoad } }
}`;
const BATCH = `subscription Batch($after: String, ${FILTER_VARIABLES}) {
  metricsAddedBatch(after: $after, ${FILTER_ARGUMENTS}) { cursor nodes { id timestamp } }
}`;
const SUMMARY = `subscription Summary($window: Duration!, ${FILTER_VARIABLES}) {
  metricsSummaryUpdated(window: $window, ${FILTER_ARGUMENTS}) { end summary { count cpuLoad { max } } }
}`;
const SERIES = `subscription Series($window: Duration!, $bucket: Duration!, ${FILTER_VARIABLES}) {
  metricSeriesUpdated(window: $window, bucket: $bucket, ${FILTER_ARGUMENTS}) { end buckets { count } }
}`;

const TOKEN = 'live-sources-token-0123456789';

/** Samples written through the mutation, each naming its source and that source's labels. */
async function ingest(samples: { source: string; labels: Record<string, string> }[]): Promise<void> {
  const response = await fetch(`${served.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({
      query: 'mutation($samples: [MetricInput!]!) { ingestMetrics(samples: $samples) { inserted } }',
      variables: {
        samples: samples.map(({ source, labels }) => ({
          timestamp: new Date(nextSecond++ * 1000).toISOString(),
          cpuLoad: 0.5,
          source,
          labels: Object.entries(labels).map(([name, value]) => ({ name, value })),
        })),
      },
    }),
  });
  const body = (await response.json()) as { data?: { ingestMetrics: { inserted: number } } };
  expect(body.data?.ingestMetrics.inserted).toBe(samples.length);
}

interface AddedEvent {
  metricsAdded: { cursor: string; node: { timestamp: string; cpuLoad: number } };
}
interface BatchEvent {
  metricsAddedBatch: { cursor: string; nodes: { id: string; timestamp: string }[] };
}
interface SummaryEvent {
  metricsSummaryUpdated: { end: string; summary: { count: number; cpuLoad: { max: number | null } } };
}
interface SeriesEvent {
  metricSeriesUpdated: { end: string; buckets: { count: number }[] };
}

let db: TestDatabase;
let sql: pg.Client;
let served: ServedApp;
let live: LiveUpdates;
let store: MetricStore;
/** Distinct past timestamps for the samples of the stream tests, a second apart. */
let nextSecond = Date.parse('2026-05-01T00:00:00Z') / 1000;

const open: SseSubscription[] = [];
function subscribe<Data = AddedEvent>(query: string, variables: Record<string, unknown> = {}) {
  const subscription = new SseSubscription<Data>(served.url, query, variables);
  open.push(subscription as SseSubscription);
  return subscription;
}

async function createSource(name: string, labels: Record<string, string> = {}): Promise<number> {
  const { rows } = await sql.query<{ id: number }>(
    'INSERT INTO sources (name, labels) VALUES ($1, $2::jsonb) RETURNING id',
    [name, JSON.stringify(labels)],
  );
  return rows[0]?.id as number;
}

/**
 * One statement writing `rounds` samples for each of `sourceIds`, interleaved (a, b, a, b, ...):
 * each round shares one timestamp, which (source, timestamp) keys allow.
 */
async function writeInterleaved(sourceIds: readonly number[], rounds = 2, cpuLoad = 0.5): Promise<void> {
  const sources: number[] = [];
  const times: string[] = [];
  for (let round = 0; round < rounds; round++) {
    const time = new Date(nextSecond++ * 1000).toISOString();
    for (const id of sourceIds) {
      sources.push(id);
      times.push(time);
    }
  }
  await db.pool.query(
    `INSERT INTO metrics (source_id, "timestamp", cpu_load, concurrency)
     SELECT s, t, $3, 1 FROM unnest($1::int[], $2::timestamptz[]) WITH ORDINALITY AS w(s, t, n) ORDER BY n`,
    [sources, times, cpuLoad],
  );
}

/** Samples taken `secondsAgo` before now, one per source, and read by the change feed. */
async function writeRecent(sourceIds: readonly number[], secondsAgo: number, cpuLoad = 0.5): Promise<void> {
  const published = live.feed.counts.rows;
  await db.pool.query(
    `INSERT INTO metrics (source_id, "timestamp", cpu_load, concurrency)
     SELECT s, date_trunc('milliseconds', now()) - make_interval(secs => $2), $3, 1 FROM unnest($1::int[]) AS s`,
    [sourceIds, secondsAgo, cpuLoad],
  );
  await expect.poll(() => live.feed.counts.rows).toBe(published + sourceIds.length);
}

async function lastId(): Promise<string> {
  const { rows } = await sql.query<{ id: string }>('SELECT coalesce(max(id), 0)::text AS id FROM metrics');
  return rows[0]?.id ?? '0';
}

/** Ids after `after` in commit order, of the sources `where` (a condition on `sources`) selects. */
async function storedIds(after: string, where = 'true'): Promise<string[]> {
  const { rows } = await sql.query<{ id: string }>(
    `SELECT m.id::text AS id FROM metrics m JOIN sources ON sources.id = m.source_id
      WHERE m.id > $1 AND ${where} ORDER BY m.id`,
    [after],
  );
  return rows.map((row) => row.id);
}

const idsOf = (subscription: SseSubscription<AddedEvent>) =>
  subscription.events.map((event) => String(decodeAddedCursor(event.data?.metricsAdded.cursor ?? '')));

const batchIdsOf = (subscription: SseSubscription<BatchEvent>) =>
  subscription.events.flatMap((event) =>
    (event.data?.metricsAddedBatch.nodes ?? []).map((node) =>
      Buffer.from(node.id, 'base64').toString().replace('Metric:', ''),
    ),
  );

/** Waits until the stream has `expected.length` ids, then a little more: any extra would show. */
async function settle(count: () => number, expected: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (count() < expected && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
  await new Promise((resolve) => setTimeout(resolve, 300));
}

/** The next value of a live stream, failing after `timeoutMs`; a StreamFailure is thrown. */
async function next<T>(iterator: AsyncIterator<T | StreamFailure>, timeoutMs = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no value within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const step = await Promise.race([iterator.next(), late]);
    if (step.done) throw new Error('the stream ended');
    return unlessFailed(step.value);
  } finally {
    clearTimeout(timer);
  }
}

let a: number;
let b: number;

beforeAll(async () => {
  db = await createTestDatabase();
  sql = new pg.Client(db.url);
  await sql.connect();
  const service = createTestService(db, { LIVE_THROTTLE_MS: '100', INGEST_TOKEN: TOKEN });
  live = service.live;
  store = service.store.primary;
  served = await serve(service.app);
  a = await createSource('web-1', { region: 'eu', tier: 'web' });
  b = await createSource('db-1', { region: 'us', tier: 'db' });
});

afterAll(async () => {
  for (const subscription of open) subscription.close();
  await served?.close();
  await sql?.end();
  await db?.drop();
});

describe('metricsAdded and metricsAddedBatch filtered by source', () => {
  it('give a subscriber of one source its rows only, in commit order, once each; an unfiltered one every row', async () => {
    const onlyA = subscribe(ADDED, { source: 'web-1' });
    const everything = subscribe(ADDED);
    const batchesOfB = subscribe<BatchEvent>(BATCH, { sources: ['db-1'] });
    await Promise.all([onlyA.opened, everything.opened, batchesOfB.opened]);
    const before = await lastId();

    await writeInterleaved([a, b], 3);
    await writeInterleaved([b, a], 2);
    // Concurrent writers of both sources, each on a connection of its own.
    await Promise.all(Array.from({ length: 6 }, (_, i) => writeInterleaved(i % 2 ? [a] : [b, a], 1)));

    const ofA = await storedIds(before, `sources.name = 'web-1'`);
    const ofB = await storedIds(before, `sources.name = 'db-1'`);
    const all = await storedIds(before);
    expect(ofA).toHaveLength(3 + 2 + 6);
    expect(ofB).toHaveLength(3 + 2 + 3);
    await settle(() => onlyA.events.length, ofA.length);
    await settle(() => batchIdsOf(batchesOfB).length, ofB.length);
    await settle(() => everything.events.length, all.length);
    expect(idsOf(onlyA)).toEqual(ofA);
    expect(batchIdsOf(batchesOfB)).toEqual(ofB);
    expect(idsOf(everything)).toEqual(all);
    // A batch holds the share of one feed read: never more events than statements.
    expect(batchesOfB.events.length).toBeLessThanOrEqual(2 + 6);
    for (const stream of [onlyA, everything, batchesOfB]) stream.close();
  });

  it('select by labels, with each operator, and take in a source that appears after the subscription', async () => {
    const eu = subscribe(ADDED, { labels: [{ name: 'region', value: 'eu' }] });
    const notDb = subscribe(ADDED, { labels: [{ name: 'tier', operator: 'NOT_EQUAL', value: 'db' }] });
    const regex = subscribe(ADDED, { labels: [{ name: 'region', operator: 'MATCHES', value: 'e.*' }] });
    const notRegex = subscribe(ADDED, {
      labels: [{ name: 'region', operator: 'NOT_MATCHES', value: 'e.*' }],
    });
    const named = subscribe(ADDED, {
      sources: ['web-1', 'cache-1'],
      labels: [{ name: 'region', value: 'eu' }],
    });
    const streams = [eu, notDb, regex, notRegex, named];
    await Promise.all(streams.map((stream) => stream.opened));
    const before = await lastId();

    await writeInterleaved([a, b], 2);
    // Created now: none of the filters knew them when they subscribed.
    const c = await createSource('cache-1', { region: 'eu', tier: 'cache' });
    const d = await createSource('web-2', { region: 'europe' });
    const e = await createSource('web-3', {});
    await writeInterleaved([c, a, d, b, e], 2);
    await writeInterleaved([e, d, c], 1);

    const expected = await Promise.all([
      storedIds(before, `labels->>'region' = 'eu'`),
      storedIds(before, `coalesce(labels->>'tier', '') <> 'db'`),
      storedIds(before, `coalesce(labels->>'region', '') ~ '^(?:e.*)$'`),
      storedIds(before, `coalesce(labels->>'region', '') !~ '^(?:e.*)$'`),
      storedIds(before, `name IN ('web-1', 'cache-1') AND labels->>'region' = 'eu'`),
    ]);
    expect(expected.map((ids) => ids.length)).toEqual([
      2 + 4 + 1,
      2 + 8 + 3,
      2 + 6 + 2,
      2 + 4 + 1,
      2 + 4 + 1,
    ]);
    for (const [index, stream] of streams.entries()) {
      await settle(() => stream.events.length, expected[index]?.length ?? 0);
      expect(idsOf(stream)).toEqual(expected[index]);
    }
    for (const stream of streams) stream.close();
  });

  it('take in a source the mutation creates with its first samples, and one whose labels come to match', async () => {
    const blue = subscribe(ADDED, { labels: [{ name: 'team', value: 'blue' }] });
    await blue.opened;
    const before = await lastId();
    const asBlue = { team: 'blue' };
    const asRed = { team: 'red' };
    await ingest([
      { source: 'blue-1', labels: asBlue },
      { source: 'red-1', labels: asRed },
      { source: 'blue-1', labels: asBlue },
      { source: 'red-1', labels: asRed },
    ]);
    // red-1 joins the team: its next samples are blue ones.
    const joined = await lastId();
    await ingest([
      { source: 'red-1', labels: asBlue },
      { source: 'blue-1', labels: asBlue },
    ]);
    const ofBlue = await storedIds(before, `name = 'blue-1'`);
    const sinceJoined = await storedIds(joined);
    const expected = [...new Set([...ofBlue, ...sinceJoined])].sort((x, y) => Number(BigInt(x) - BigInt(y)));
    expect(expected).toHaveLength(2 + 2);
    await settle(() => blue.events.length, expected.length);
    expect(idsOf(blue)).toEqual(expected);
    blue.close();
  });

  it('resumes from a cursor with exactly the filtered rows it missed, sources created meanwhile included, then goes on live', async () => {
    const labels = [{ name: 'tier', value: 'worker' }];
    const worker = await createSource('worker-1', { tier: 'worker' });
    const first = subscribe(ADDED, { labels });
    await first.opened;
    const before = await lastId();
    await writeInterleaved([a, worker, b], 3);
    await first.take(3);
    const cursor = first.events[0]?.data?.metricsAdded.cursor;
    first.close();

    // While away: more rows of the worker, of others, and of a worker that did not exist.
    const another = await createSource('worker-2', { tier: 'worker' });
    await writeInterleaved([another, a, worker], 2);
    const resumed = subscribe(ADDED, { after: cursor, labels });
    const missed = (await storedIds(before, `labels->>'tier' = 'worker'`)).slice(1);
    expect(missed).toHaveLength(2 + 4);
    await settle(() => resumed.events.length, missed.length);
    expect(idsOf(resumed)).toEqual(missed);

    // Live again, the batches' cursors interchangeable with the samples'.
    await writeInterleaved([b, another], 1);
    const all = (await storedIds(before, `labels->>'tier' = 'worker'`)).slice(1);
    await settle(() => resumed.events.length, all.length);
    expect(idsOf(resumed)).toEqual(all);
    const batches = subscribe<BatchEvent>(BATCH, { after: cursor, labels });
    await settle(() => batchIdsOf(batches).length, all.length);
    expect(batchIdsOf(batches)).toEqual(all);
    resumed.close();
    batches.close();
  });

  it('never shares events between subscribers of different filters, and shares one share between those of the same', async () => {
    // Over HTTP, the same document with different filters: each gets its own rows.
    const ofA = subscribe<BatchEvent>(BATCH, { source: 'web-1' });
    const ofB = subscribe<BatchEvent>(BATCH, { source: 'db-1' });
    await Promise.all([ofA.opened, ofB.opened]);
    const before = await lastId();
    await writeInterleaved([a, b], 2);
    const [expectedA, expectedB] = await Promise.all([
      storedIds(before, `sources.id = ${a}`),
      storedIds(before, `sources.id = ${b}`),
    ]);
    await settle(() => batchIdsOf(ofA).length, 2);
    await settle(() => batchIdsOf(ofB).length, 2);
    expect(batchIdsOf(ofA)).toEqual(expectedA);
    expect(batchIdsOf(ofB)).toEqual(expectedB);
    ofA.close();
    ofB.close();

    // In process: streams of one filter get the same array (its result is made once for all),
    // and a read whose rows all match is handed over as the unfiltered streams get it.
    const same = { names: ['web-1'] };
    const streams = await Promise.all([
      live.samples.subscribeBatches({ filter: same }),
      live.samples.subscribeBatches({ filter: { names: ['web-1', 'web-1'] } }),
      live.samples.subscribeBatches({}),
    ]);
    const [first, second, unfiltered] = streams.map((stream) => stream[Symbol.asyncIterator]());
    await writeInterleaved([a, b], 1);
    const [x, y] = await Promise.all([
      next(first as AsyncIterator<readonly StoredMetric[]>),
      next(second as AsyncIterator<readonly StoredMetric[]>),
    ]);
    expect(x).toBe(y);
    expect(x.map((row) => row.sourceId)).toEqual([a]);
    await next(unfiltered as AsyncIterator<readonly StoredMetric[]>);
    await writeInterleaved([a], 2);
    const [onlyA, all] = await Promise.all([
      next(first as AsyncIterator<readonly StoredMetric[]>),
      next(unfiltered as AsyncIterator<readonly StoredMetric[]>),
    ]);
    expect(onlyA).toBe(all);
    for (const iterator of [first, second, unfiltered]) await iterator?.return?.();
  });

  it('sorts each feed read with one statement for a hundred subscribers of ten filters, none reading on its own', async () => {
    const names = Array.from({ length: 10 }, (_, i) => `pod-${i}`);
    const ids = await Promise.all(names.map((name, i) => createSource(name, { shard: String(i % 2) })));
    const sorting = store.sourcesSelectedBy.bind(store);
    const catchingUp = store.addedSince.bind(store);
    let sorts = 0;
    let ownReads = 0;
    store.sourcesSelectedBy = (...args) => {
      sorts++;
      return sorting(...args);
    };
    store.addedSince = (...args) => {
      ownReads++;
      return catchingUp(...args);
    };
    try {
      const filters = Array.from({ length: 100 }, (_, i) =>
        i % 10 === 9
          ? { labels: [{ name: 'shard', operator: '=' as const, value: '1' }] }
          : { names: [names[i % 10] as string] },
      );
      const streams = await Promise.all(filters.map((filter) => live.samples.subscribeBatches({ filter })));
      const before = await lastId();
      const readsBefore = live.feed.counts.reads;
      const publishedBefore = live.feed.counts.rows;
      for (let statement = 1; statement <= 4; statement++) {
        await writeInterleaved(ids, 2);
        // Published once sorted: each statement's rows read and sorted before the next is written.
        await expect.poll(() => live.feed.counts.rows).toBe(publishedBefore + statement * ids.length * 2);
      }
      expect(live.feed.counts.reads).toBe(readsBefore + 4);
      expect(sorts).toBe(4);
      expect(ownReads).toBe(0);
      const iterators = streams.map((stream) => stream[Symbol.asyncIterator]());
      for (const [index, iterator] of iterators.entries()) {
        const filter = filters[index];
        const where = filter?.names ? `name = '${filter.names[0]}'` : `labels->>'shard' = '1'`;
        const expected = await storedIds(before, where);
        const got: string[] = [];
        while (got.length < expected.length) {
          got.push(
            ...(await next(iterator as AsyncIterator<readonly StoredMetric[]>)).map((row) => String(row.id)),
          );
        }
        expect(got).toEqual(expected);
        await iterator.return?.();
      }
    } finally {
      store.sourcesSelectedBy = sorting;
      store.addedSince = catchingUp;
    }
  });

  it('refuses a regular expression the database cannot compile, and a filter out of bounds, before any stream', async () => {
    const refusals = [
      {
        query: ADDED,
        variables: { labels: [{ name: 'region', operator: 'MATCHES', value: '(' }] },
        argument: 'labels',
      },
      // After a name no source has, as a shared statement would have met it only later.
      {
        query: BATCH,
        variables: {
          sources: ['nobody'],
          labels: [{ name: 'region', operator: 'NOT_MATCHES', value: 'a{2,1}' }],
        },
        argument: 'labels',
      },
      {
        query: SUMMARY,
        variables: { window: '1h', labels: [{ name: 'region', operator: 'MATCHES', value: '[' }] },
        argument: 'labels',
      },
      {
        query: SERIES,
        variables: { window: '1h', bucket: '1m', sources: Array.from({ length: 101 }, (_, i) => `s${i}`) },
        argument: 'sources',
      },
    ];
    for (const { query, variables, argument } of refusals) {
      const response = await fetch(`${served.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ query, variables }),
      });
      expect(response.status).toBe(400);
      const body = (await response.json()) as { errors: GraphQLEvent['errors'] };
      expect(body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(body.errors?.[0]?.message).toContain(argument);
    }
  });
});

describe('live summaries and series filtered by source', () => {
  it('are computed again only when rows of their sources are written, over those sources alone', async () => {
    const recentA = await createSource('live-a', { role: 'front' });
    const recentB = await createSource('live-b', { role: 'back' });
    await writeRecent([recentA, recentB], 30);
    const ofA = subscribe<SummaryEvent>(SUMMARY, { window: '10m', source: 'live-a' });
    const byLabel = subscribe<SeriesEvent>(SERIES, {
      window: '10m',
      bucket: '1m',
      labels: [{ name: 'role', value: 'front' }],
    });
    const everything = subscribe<SummaryEvent>(SUMMARY, { window: '10m' });
    await ofA.take(1);
    await byLabel.take(1);
    await everything.take(1);
    const seriesCount = (event?: GraphQLEvent<SeriesEvent>) =>
      (event?.data?.metricSeriesUpdated.buckets ?? []).reduce((sum, bucket) => sum + bucket.count, 0);
    expect(ofA.events[0]?.data?.metricsSummaryUpdated.summary.count).toBe(1);
    expect(seriesCount(byLabel.events[0])).toBe(1);
    const total = everything.events[0]?.data?.metricsSummaryUpdated.summary.count ?? 0;

    // Rows of another source: the unfiltered summary moves, the filtered questions stay still.
    await writeRecent([recentB], 20, 3);
    await everything.until(
      () => everything.events.at(-1)?.data?.metricsSummaryUpdated.summary.count === total + 1,
    );
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(ofA.events).toHaveLength(1);
    expect(byLabel.events).toHaveLength(1);

    // A row of the source: both filtered questions are answered again, with it alone added.
    await writeRecent([recentA], 10, 2);
    await ofA.until(() => ofA.events.length >= 2);
    await byLabel.until(() => byLabel.events.length >= 2);
    expect(ofA.events[1]?.data?.metricsSummaryUpdated.summary).toEqual({ count: 2, cpuLoad: { max: 2 } });
    expect(seriesCount(byLabel.events[1])).toBe(2);

    // A source created now that matches the labels counts from its first row.
    const later = await createSource('live-c', { role: 'front' });
    await writeRecent([later], 5);
    await byLabel.until(() => seriesCount(byLabel.events.at(-1)) === 3);
    expect(ofA.events).toHaveLength(2);
    for (const stream of [ofA, byLabel, everything]) stream.close();
  });
});
