import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { PostgresChangeListener } from '../src/database/change-listener.js';
import type { StoredMetric } from '../src/domain/metric.js';
import { createLiveUpdates, type LiveUpdates } from '../src/live/live-updates.js';
import { type StreamFailure, unlessFailed } from '../src/live/stream-failure.js';
import { createLogger } from '../src/observability/logger.js';
import { MetricStore } from '../src/store/metric-store.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

const logger = createLogger(parseConfig({ LOG_LEVEL: 'silent' }), { service: 'test' });

let db: TestDatabase;
let sql: pg.Client;
let live: LiveUpdates;
/** Distinct sample times for every row written here, a millisecond apart. */
let nextMs = Date.parse('2026-04-01T00:00:00Z');

/** `count` samples written by one statement, in one transaction. */
async function write(count: number): Promise<void> {
  const times = Array.from({ length: count }, () => nextMs++);
  await sql.query(
    `INSERT INTO metrics ("timestamp", cpu_load, concurrency)
     SELECT to_timestamp(t / 1000.0), 0.5, 1 FROM unnest($1::float8[]) AS t`,
    [times],
  );
}

async function storedIdsAfter(id: bigint): Promise<bigint[]> {
  const { rows } = await sql.query<{ id: string }>(
    'SELECT id::text FROM metrics WHERE metrics.id > $1 ORDER BY metrics.id',
    [id.toString()],
  );
  return rows.map((row) => BigInt(row.id));
}

/** Reads until `count` rows have come, in whatever shape the stream gives them. */
/** `count` rows' worth of items; a stream's StreamFailure is thrown. */
async function take<T>(
  stream: AsyncIterator<T | StreamFailure>,
  count: number,
  rowsOf: (item: T) => StoredMetric[],
) {
  const rows: StoredMetric[] = [];
  const items: T[] = [];
  while (rows.length < count) {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no row after ${rows.length} of ${count}`)), 5000);
    });
    const step = await Promise.race([stream.next(), late]).finally(() => clearTimeout(timer));
    if (step.done) throw new Error(`the stream ended after ${rows.length} rows`);
    const item = unlessFailed(step.value);
    items.push(item);
    rows.push(...rowsOf(item));
  }
  return { rows, items };
}

beforeAll(async () => {
  db = await createTestDatabase();
  sql = new pg.Client(db.url);
  await sql.connect();
  live = createLiveUpdates(
    new MetricStore(db),
    new PostgresChangeListener(db.url, { logger, connectTimeoutMs: 2000 }),
    { logger, throttleMs: 300, readyTimeoutMs: 2000, maxCatchUpReads: 2, readIntervalMs: 20 },
  );
});
afterAll(async () => {
  await live?.close();
  await sql?.end();
  await db?.drop();
});

describe('streams of added samples', () => {
  it('gives a subscriber that fell far behind every row once, in order, read from the database', async () => {
    const samples = (await live.samples.subscribe({}))[Symbol.asyncIterator]();
    const batches = (await live.samples.subscribeBatches({}))[Symbol.asyncIterator]();
    const from = live.feed.position;
    const published = live.feed.counts.rows;
    // More than a stream queues (10,000 rows): neither reads while they are written.
    await write(6000);
    await write(6000);
    await write(500);
    await expect.poll(() => live.feed.counts.rows).toBe(published + 12_500);
    // Each now reads its first 1,000 rows from the database; rows written meanwhile must wait
    // their turn behind the 11,500 not read yet, not come straight after the 1,000.
    const firstSample = await samples.next();
    const firstBatch = await batches.next();
    await write(5);
    await expect.poll(() => live.feed.counts.rows).toBe(published + 12_505);
    const expected = await storedIdsAfter(from);
    expect(expected).toHaveLength(12_505);
    const bySample = await take(samples, expected.length - 1, (row) => [row]);
    expect([firstSample.value?.id, ...bySample.rows.map((row) => row.id)]).toEqual(expected);
    const firstRows = [...(firstBatch.value ?? [])];
    const byBatch = await take(batches, expected.length - firstRows.length, (batch) => [...batch]);
    expect([...firstRows, ...byBatch.rows].map((row) => row.id)).toEqual(expected);
    expect(Math.max(firstRows.length, ...byBatch.items.map((batch) => batch.length))).toBeLessThanOrEqual(
      1000,
    );

    // Caught up, both go on live.
    await write(3);
    expect((await take(samples, 3, (row) => [row])).rows.map((row) => row.id)).toEqual(
      await storedIdsAfter(expected.at(-1) as bigint),
    );
    expect((await batches.next()).value).toHaveLength(3);
    await samples.return?.();
    await batches.return?.();
  });

  it('reads once per LIVE_READ_INTERVAL_MS under a stream of commits, and still hands every row once, in order', async () => {
    const spaced = createLiveUpdates(
      new MetricStore(db),
      new PostgresChangeListener(db.url, { logger, connectTimeoutMs: 2000 }),
      { logger, throttleMs: 300, readyTimeoutMs: 2000, maxCatchUpReads: 2, readIntervalMs: 250 },
    );
    try {
      const batches = (await spaced.samples.subscribeBatches({}))[Symbol.asyncIterator]();
      const from = spaced.feed.position;
      const readsBefore = spaced.feed.counts.reads;
      const started = performance.now();
      // 40 commits of one sample each, as fast as one connection makes them.
      for (let commit = 0; commit < 40; commit++) await write(1);
      const expected = await storedIdsAfter(from);
      const { rows, items } = await take(batches, expected.length, (batch) => [...batch]);
      const elapsed = performance.now() - started;
      expect(rows.map((row) => row.id)).toEqual(expected);
      // A read at the first notification, then at most one per interval: fewer events than commits.
      const reads = spaced.feed.counts.reads - readsBefore;
      expect(reads).toBeLessThanOrEqual(Math.ceil(elapsed / 250) + 1);
      expect(items.length).toBeLessThan(40);
      await batches.return?.();
    } finally {
      await spaced.close();
    }
  });

  it('hands every batch stream that takes a whole read the same array, and each row as the same object', async () => {
    const [first, second] = await Promise.all([
      live.samples.subscribeBatches({}),
      live.samples.subscribeBatches({}),
    ]);
    const one = first[Symbol.asyncIterator]();
    const other = second[Symbol.asyncIterator]();
    const sample = (await live.samples.subscribe({}))[Symbol.asyncIterator]();
    await write(4);
    const [a, b, row] = await Promise.all([one.next(), other.next(), sample.next()]);
    expect(a.value).toHaveLength(4);
    expect(a.value).toBe(b.value);
    expect(row.value).toBe(a.value?.[0]);
    for (const stream of [one, other, sample]) await stream.return?.();
  });

  it("hands a sample stream's rows a read at a time through nextBatch, in order and once, mixed with next()", async () => {
    const batchStream = (await live.samples.subscribeBatches({}))[Symbol.asyncIterator]();
    const samples = await live.samples.subscribe({});
    const from = live.feed.position;
    const published = live.feed.counts.rows;
    // Apart, so that the feed reads them in two reads.
    await write(4);
    await expect.poll(() => live.feed.counts.rows).toBe(published + 4);
    await write(3);
    await expect.poll(() => live.feed.counts.rows).toBe(published + 7);
    const first = await samples.next();
    // The rest of the first read, then the second read whole: the same array the batch stream gets.
    const rest = await samples.nextBatch();
    const second = await samples.nextBatch();
    expect([first.value, ...(rest.value ?? [])]).toHaveLength(4);
    await batchStream.next();
    expect(second.value).toBe((await batchStream.next()).value);
    const waiting = samples.nextBatch();
    await write(2);
    const rows: (StoredMetric | undefined)[] = [
      first.value,
      ...(rest.value ?? []),
      ...(second.value ?? []),
      ...((await waiting).value ?? []),
    ];
    const ids = rows.map((row) => row?.id);
    expect(ids).toEqual(await storedIdsAfter(from));
    await samples.return?.();
    expect(await samples.nextBatch()).toEqual({ done: true, value: undefined });
    await batchStream.return?.();
  });

  it('ends a waiting next() when the subscriber leaves, and lets go of the feed', async () => {
    const before = live.samples.counts.open;
    const stream = (await live.samples.subscribe({}))[Symbol.asyncIterator]();
    expect(live.samples.counts.open).toBe(before + 1);
    const waiting = stream.next();
    await stream.return?.();
    expect(await waiting).toEqual({ done: true, value: undefined });
    expect(live.samples.counts.open).toBe(before);
    expect(await stream.next()).toEqual({ done: true, value: undefined });
  });
});
