import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { PostgresChangeListener } from '../src/database/change-listener.js';
import { createLiveUpdates, type LiveUpdates } from '../src/live/live-updates.js';
import { type StreamFailure, unlessFailed } from '../src/live/stream-failure.js';
import { createLogger } from '../src/observability/logger.js';
import { MetricStore } from '../src/store/metric-store.js';
import { createTestService } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { type ServedApp, SseSubscription, serve } from './support/sse.js';

// A real collection before each heap reading, whatever flags vitest's workers run with: the leak
// check below is about what stays reachable, not about garbage not yet collected.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

const logger = createLogger(parseConfig({ LOG_LEVEL: 'silent' }), { service: 'test' });

let db: TestDatabase;
let sql: pg.Client;

beforeAll(async () => {
  db = await createTestDatabase();
  sql = new pg.Client(db.url);
  await sql.connect();
});
afterAll(async () => {
  await sql?.end();
  await db?.drop();
});

/** Inserts one sample `secondsAgo` before now. */
const insertAgo = (secondsAgo: number, cpuLoad = 1) =>
  sql.query(
    `INSERT INTO metrics ("timestamp", cpu_load, concurrency) VALUES (now() - make_interval(secs => $1), $2, 1)`,
    [secondsAgo, cpuLoad],
  );

/** The next value of an iterator, failing after `timeoutMs`. */
/** The next answer; a stream's StreamFailure is thrown. */
async function next<T>(iterator: AsyncIterator<T | StreamFailure>, timeoutMs = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no value within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const result = await Promise.race([iterator.next(), timeout]);
    if (result.done) throw new Error('the stream ended');
    return unlessFailed(result.value);
  } finally {
    clearTimeout(timer);
  }
}

describe('live series and summaries', () => {
  let live: LiveUpdates;
  let seriesComputations = 0;
  let summaryComputations = 0;

  beforeAll(() => {
    const store = new MetricStore(db);
    // The store as the live side sees it, counting how often each question is computed.
    const counting = {
      series: (...args: Parameters<MetricStore['series']>) => {
        seriesComputations++;
        return store.series(...args);
      },
      summary: (...args: Parameters<MetricStore['summary']>) => {
        summaryComputations++;
        return store.summary(...args);
      },
      addedSince: store.addedSince.bind(store),
      announcedSince: store.announcedSince.bind(store),
      lastId: store.lastId.bind(store),
    } as unknown as MetricStore;
    live = createLiveUpdates(
      counting,
      new PostgresChangeListener(db.url, { logger, connectTimeoutMs: 2000 }),
      {
        logger,
        throttleMs: 300,
        readyTimeoutMs: 2000,
        maxCatchUpReads: 2,
        readIntervalMs: 20,
      },
    );
  });
  afterAll(() => live?.close());

  it('computes a question once for all its subscribers, and again when a write touches its window', async () => {
    await insertAgo(30, 0.5);
    const streams = await Promise.all(Array.from({ length: 5 }, () => live.aggregates.series(3600, 60)));
    const iterators = streams.map((stream) => stream[Symbol.asyncIterator]());
    const firsts = await Promise.all(iterators.map((iterator) => next(iterator)));
    expect(live.aggregates.questions).toBe(1);
    expect(seriesComputations).toBe(1);
    for (const first of firsts) {
      expect(first.buckets.reduce((sum, bucket) => sum + bucket.count, 0)).toBe(1);
      expect(first.end.getTime() - first.start.getTime()).toBe(3600_000);
    }

    // A burst of writes: at most one computation per throttle period, all subscribers updated.
    for (let i = 0; i < 10; i++) await insertAgo(20 - i);
    const counts = await Promise.all(
      iterators.map(async (iterator) => {
        for (;;) {
          const value = await next(iterator);
          const count = value.buckets.reduce((sum, bucket) => sum + bucket.count, 0);
          if (count === 11) return count;
        }
      }),
    );
    expect(counts).toEqual([11, 11, 11, 11, 11]);
    expect(seriesComputations).toBeLessThanOrEqual(4);

    // A write outside the window changes nothing and computes nothing.
    const before = seriesComputations;
    await insertAgo(7200);
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(seriesComputations).toBe(before);

    for (const iterator of iterators) await iterator.return?.();
    expect(live.aggregates.questions).toBe(0);
  });

  it('follows updates, deletes and truncates', async () => {
    const stream = (await live.aggregates.summary(600))[Symbol.asyncIterator]();
    const until = async (count: number) => {
      for (;;) if ((await next(stream)).summary.count === count) return;
    };
    const { rows } = await sql.query<{ count: number }>(
      `SELECT count(*)::int AS count FROM metrics WHERE "timestamp" >= now() - interval '600 seconds'`,
    );
    await until(rows[0]?.count ?? -1);
    await sql.query(`UPDATE metrics SET cpu_load = 9 WHERE "timestamp" >= now() - interval '25 seconds'`);
    for (;;) if ((await next(stream)).summary.cpuLoad.max === 9) break;
    await sql.query(`DELETE FROM metrics WHERE "timestamp" >= now() - interval '15 seconds'`);
    const { rows: left } = await sql.query<{ count: number }>(
      `SELECT count(*)::int AS count FROM metrics WHERE "timestamp" >= now() - interval '600 seconds'`,
    );
    await until(left[0]?.count ?? -1);
    await sql.query('TRUNCATE metrics');
    await until(0);
    expect(summaryComputations).toBeGreaterThanOrEqual(4);
    await stream.return?.();
  });
});

describe('subscriptions over HTTP', () => {
  let served: ServedApp;
  let live: LiveUpdates;

  beforeAll(async () => {
    const service = createTestService(db, { LIVE_THROTTLE_MS: '100' });
    live = service.live;
    served = await serve(service.app);
  });
  afterAll(() => served?.close());

  it('frees everything when clients go: no handler left after 1,000 connect and disconnect cycles', async () => {
    const first = new SseSubscription(served.url, 'subscription { metricsAdded { cursor } }');
    await first.opened;
    first.close();
    await first.done;
    collectGarbage();
    const baseline = process.memoryUsage().heapUsed;
    const queries = [
      'subscription { metricsAdded { cursor } }',
      'subscription { metricSeriesUpdated(window: "1h", bucket: "1m") { start } }',
      'subscription { metricsSummaryUpdated(window: "1h") { summary { count } } }',
    ];
    for (let round = 0; round < 100; round++) {
      const batch = Array.from(
        { length: 10 },
        (_, i) => new SseSubscription(served.url, queries[(round + i) % queries.length] as string),
      );
      await Promise.all(batch.map((subscription) => subscription.opened));
      for (const subscription of batch) subscription.close();
      await Promise.all(batch.map((subscription) => subscription.done));
    }
    const deadline = Date.now() + 5000;
    while ((live.feed.handlers > 0 || live.aggregates.questions > 0) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(live.feed.handlers).toBe(0);
    expect(live.aggregates.questions).toBe(0);
    collectGarbage();
    // Loose: a leak of 1,000 subscriptions' state would be far more than this.
    expect(process.memoryUsage().heapUsed - baseline).toBeLessThan(64 * 1024 * 1024);
  }, 60_000);

  it('exports its subscriptions, listener and deliveries on /metrics', async () => {
    const scrape = async () => (await fetch(`${served.url}/metrics`)).text();
    const value = (text: string, series: string) => {
      const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1).split(' ')[0]);
    };
    const subscription = new SseSubscription(served.url, 'subscription { metricsAdded { cursor } }');
    await subscription.opened;
    const open = await scrape();
    expect(value(open, 'metrics_api_live_subscriptions{kind="added"}')).toBe(1);
    expect(value(open, 'metrics_api_live_listening')).toBe(1);
    const readsBefore = value(open, 'metrics_api_live_reads_total') ?? 0;
    await insertAgo(5);
    await subscription.take(1);
    const after = await scrape();
    expect(value(after, 'metrics_api_live_events_total')).toBeGreaterThanOrEqual(1);
    expect(value(after, 'metrics_api_live_rows_total')).toBeGreaterThanOrEqual(1);
    expect(value(after, 'metrics_api_live_reads_total')).toBeGreaterThan(readsBefore);
    subscription.close();
    await subscription.done;
    const deadline = Date.now() + 5000;
    while (
      value(await scrape(), 'metrics_api_live_subscriptions{kind="added"}') !== 0 &&
      Date.now() < deadline
    ) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(value(await scrape(), 'metrics_api_live_subscriptions{kind="added"}')).toBe(0);
  });

  it('starts every stream with a keep-alive comment (then one every 12 s)', async () => {
    const subscription = new SseSubscription(served.url, 'subscription { metricsAdded { cursor } }');
    await subscription.opened;
    await subscription.until(() => subscription.pings > 0, 5000, 'a ping');
    subscription.close();
  });
});
