// A stream whose reads fail (the database away from the pool while the listener still hears
// notifications) backs off, logs, and ends with a coded error after a bounded number of tries,
// instead of retrying every second for as long as its client stays connected.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeAddedCursor } from '../src/domain/cursor.js';
import type { LiveUpdates } from '../src/live/live-updates.js';
import { createTestService } from './support/app.js';
import { connectTest, createTestDatabase, type TestDatabase } from './support/database.js';
import { type ServedApp, SseSubscription, serve } from './support/sse.js';
import { TcpProxy } from './support/tcp-proxy.js';

const lines: { level: number; msg: string }[] = [];
const logger = pino(
  { level: 'debug' },
  new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).trim().split('\n')) lines.push(JSON.parse(line));
      done();
    },
  }),
);
const WARN = 40;

let db: TestDatabase;
let proxy: TcpProxy;
let served: ServedApp;
let live: LiveUpdates;
let pool: ReturnType<typeof connectTest>;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.pool.query(
    `INSERT INTO metrics ("timestamp", cpu_load, concurrency) SELECT t, 0.5, 1 FROM generate_series('2026-02-01'::timestamptz, '2026-02-01 00:00:02', '1 second') AS t`,
  );
  const target = new URL(db.url);
  proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
  await proxy.start();
  const proxied = new URL(db.url);
  proxied.port = String(proxy.port);
  pool = connectTest(proxied.toString(), 4);
  // Reads go through the proxy; the listener does not, so it keeps hearing while reads fail.
  const service = createTestService(
    { ...pool, url: proxied.toString() },
    { DATABASE_LISTEN_URL: db.url, DATABASE_CONNECT_TIMEOUT_MS: '500', LIVE_THROTTLE_MS: '50' },
    { logger },
  );
  live = service.live;
  served = await serve(service.app);
});

afterAll(async () => {
  await served?.close();
  await pool?.close();
  await proxy?.stop();
  await db?.drop();
});

describe('live streams whose reads keep failing', () => {
  it('end with DATABASE_UNAVAILABLE after a bounded number of tries, logged, and resume once the database is back', async () => {
    const following = new SseSubscription(served.url, 'subscription { metricsAdded { cursor } }');
    const summary = new SseSubscription(
      served.url,
      'subscription { metricsSummaryUpdated(window: "3650d") { summary { count } } }',
    );
    await following.opened;
    await summary.take(1);
    await proxy.stop();
    const stoppedAt = Date.now();

    // A replay from the first sample: its catch-up read fails.
    const replaying = new SseSubscription(
      served.url,
      'subscription($after: String) { metricsAdded(after: $after) { cursor } }',
      { after: encodeAddedCursor(0n) },
    );
    await replaying.opened;
    expect(replaying.status).toBe(200);
    // A write the listener hears: the feed's read of it fails, and the live summary's recomputation.
    await db.pool.query(
      `INSERT INTO metrics ("timestamp", cpu_load, concurrency) VALUES ('2026-02-02', 1, 1)`,
    );

    for (const stream of [replaying, following, summary]) {
      await stream.until(() => stream.completed, 30_000, 'the stream to end');
      const last = stream.events.at(-1);
      expect(last?.errors?.[0]?.extensions?.code).toBe('DATABASE_UNAVAILABLE');
    }
    const elapsed = Date.now() - stoppedAt;
    // Six tries, 250 ms doubling: about 8 s, not at once and not forever.
    expect(elapsed).toBeGreaterThan(3000);
    expect(elapsed).toBeLessThan(30_000);
    expect(replaying.events).toHaveLength(1);
    expect(following.events).toHaveLength(1);
    expect(live.samples.counts.open).toBe(0);
    expect(live.aggregates.subscribers).toBe(0);
    const warnings = lines.filter((line) => line.level === WARN).map((line) => line.msg);
    expect(warnings).toContain('A live stream could not catch up on samples; retrying');
    expect(warnings).toContain('A live stream could not catch up on samples; ending it');
    expect(warnings).toContain('Could not read new samples; retrying');
    expect(
      warnings.some((msg) => msg.startsWith('Could not read new samples; ending every live stream')),
    ).toBe(true);
    // Each failure is not a warning of its own: a run of failures is one line, and its end another.
    expect(warnings.length).toBeLessThan(20);

    // Back: a subscriber resumes from the first sample and gets every one, then live ones.
    await proxy.start();
    const resumed = new SseSubscription(
      served.url,
      'subscription($after: String) { metricsAdded(after: $after) { cursor } }',
      { after: encodeAddedCursor(0n) },
    );
    await resumed.take(4, 20_000);
    expect(resumed.events.every((event) => event.errors === undefined)).toBe(true);
    resumed.close();
  }, 90_000);
});
