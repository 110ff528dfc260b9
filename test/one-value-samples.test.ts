// Samples that carry one value only (an agent reporting load and no concurrency): every statistic
// of a value is over the samples holding it, null when none does, whether the percentiles come
// from the raw rows or from the rollups' sketches, and the API answers null for a missing value.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../src/http/app.js';
import { MetricStore } from '../src/store/metric-store.js';
import { createTestApp, graphql } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

let db: TestDatabase;
let app: App;
const T0 = Date.UTC(2026, 2, 1);

beforeAll(async () => {
  db = await createTestDatabase();
  app = createTestApp(db);
  // Two hours of load alone (every 10 s), then one hour of concurrency alone.
  await db.pool.query(
    `INSERT INTO metrics ("timestamp", cpu_load, concurrency)
     SELECT to_timestamp(${T0 / 1000} + i * 10), CASE WHEN i < 720 THEN (i % 40) / 10.0 END,
            CASE WHEN i >= 720 THEN i % 9 END
       FROM generate_series(0, 1079) AS i`,
  );
}, 60_000);

afterAll(async () => {
  await app?.dispose();
  await db?.drop();
});

const hours = (from: number, to: number) => ({
  start: new Date(T0 + from * 3_600_000),
  end: new Date(T0 + to * 3_600_000),
});

describe('samples with one value', () => {
  it('summarise each value over the samples holding it, exactly and from the sketches', async () => {
    for (const exactPercentileMaxRows of [1_000_000, 1]) {
      const store = new MetricStore(db, undefined, undefined, { exactPercentileMaxRows });
      const loadOnly = (await store.summary(hours(0, 2))).value;
      expect(loadOnly.count).toBe(720);
      expect(loadOnly.cpuLoad).toMatchObject({ count: 720, min: 0, max: 3.9 });
      expect(loadOnly.cpuLoad.p50).toBeGreaterThan(1.5);
      expect(loadOnly.concurrency).toEqual({ count: 0, min: null, max: null, avg: null, p95: null });
      const both = (await store.summary(hours(0, 3))).value;
      expect(both.count).toBe(1080);
      expect(both.cpuLoad.count).toBe(720);
      expect(both.concurrency).toMatchObject({ count: 360, min: 0, max: 8, avg: 4 });
    }
  });

  it('give series buckets whose missing value is null, and pages with null values', async () => {
    const response = await graphql<{
      metricSeries: { count: number; cpuLoad: unknown; concurrency: unknown }[];
      metrics: { edges: { node: { cpuLoad: number | null; concurrency: number | null } }[] };
    }>(
      app,
      `query ($start: DateTime!, $end: DateTime!) {
         metricSeries(start: $start, end: $end, bucket: "1h") {
           count cpuLoad { count min max avg } concurrency { count min max avg }
         }
         metrics(start: $start, end: $end, first: 1, order: DESC) { edges { node { cpuLoad concurrency } } }
       }`,
      { start: hours(1, 3).start.toISOString(), end: hours(1, 3).end.toISOString() },
    );
    expect(response.errors).toBeUndefined();
    expect(response.data?.metricSeries).toEqual([
      {
        count: 360,
        cpuLoad: { count: 360, min: 0, max: 3.9, avg: expect.any(Number) },
        concurrency: { count: 0, min: null, max: null, avg: null },
      },
      {
        count: 360,
        cpuLoad: { count: 0, min: null, max: null, avg: null },
        concurrency: { count: 360, min: 0, max: 8, avg: 4 },
      },
    ]);
    expect(response.data?.metrics.edges).toEqual([{ node: { cpuLoad: null, concurrency: 8 } }]);
  });
});
