// Many subscriptions replaying from the first cursor share LIVE_MAX_CATCHUP_READS catch-up reads:
// pages keep being answered while they replay, and every replay still gets every sample once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeAddedCursor } from '../src/domain/cursor.js';
import type { App } from '../src/http/app.js';
import { createTestService, graphql } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

const ROWS = 3000;
const SUBSCRIPTIONS = 200;
const MAX_CATCH_UP_READS = 2;
const REPLAY = `subscription($after: String) {
  metricsAddedBatch(after: $after) { cursor nodes { concurrency } }
}`;
const PAGE = '{ metrics(first: 100, start: "2026-05-01T00:30:00Z") { edges { node { cpuLoad } } } }';

let db: TestDatabase;
let app: App;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.pool.query(
    `INSERT INTO metrics ("timestamp", cpu_load, concurrency)
     SELECT '2026-05-01'::timestamptz + make_interval(secs => i), 0.5, 1 FROM generate_series(1, $1) AS i`,
    [ROWS],
  );
  // The test database's pool: 4 connections, so 200 unbounded reads would hold them all.
  app = createTestService(db, { LIVE_MAX_CATCHUP_READS: String(MAX_CATCH_UP_READS) }).app;
});

afterAll(async () => {
  await app?.dispose();
  await db?.drop();
});

/** A replaying subscription read to its end of replay: the samples it received. */
async function replay(): Promise<number> {
  const response = await app.fetch('http://localhost/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query: REPLAY, variables: { after: encodeAddedCursor(0n) } }),
  });
  expect(response.status).toBe(200);
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let samples = 0;
  // Events are counted whole: a chunk may end inside one, whose rest comes with the next chunk.
  let unfinished = '';
  while (samples < ROWS) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the stream ended after ${samples} samples`);
    const events = (unfinished + decoder.decode(value, { stream: true })).split('\n\n');
    unfinished = events.pop() ?? '';
    for (const event of events) samples += (event.match(/"concurrency"/g) ?? []).length;
  }
  await reader.cancel();
  return samples;
}

describe(`${SUBSCRIPTIONS} subscriptions replaying from the first cursor`, () => {
  it(`read at most ${MAX_CATCH_UP_READS} at a time, while pages keep being answered, and each gets every sample`, async () => {
    const baseline = performance.now();
    expect((await graphql(app, PAGE)).errors).toBeUndefined();
    const quietPageMs = performance.now() - baseline;

    const replays = Promise.all(Array.from({ length: SUBSCRIPTIONS }, replay));
    let replaying = true;
    void replays.finally(() => {
      replaying = false;
    });
    // Unbounded, the replays' reads queued for the pool by the hundred, pages behind them.
    let mostWaiting = 0;
    const sampler = setInterval(() => {
      mostWaiting = Math.max(mostWaiting, db.pool.waitingCount);
    }, 2);
    const pageMs: number[] = [];
    while (replaying) {
      const started = performance.now();
      const page = await graphql(app, PAGE);
      pageMs.push(performance.now() - started);
      expect(page.errors).toBeUndefined();
      expect((page.data as { metrics: { edges: unknown[] } }).metrics.edges).toHaveLength(100);
    }
    clearInterval(sampler);
    expect(await replays).toEqual(Array(SUBSCRIPTIONS).fill(ROWS));
    // The pool has 4 connections: at most the catch-up reads and a page ever wait for one.
    expect(mostWaiting).toBeLessThanOrEqual(MAX_CATCH_UP_READS + 1);
    // Pages were asked for all along the replays, and each answered in well under the pool's wait.
    expect(pageMs.length).toBeGreaterThan(3);
    expect(Math.max(...pageMs)).toBeLessThan(Math.max(1500, quietPageMs * 20));
  }, 120_000);
});
