// Partition maintenance that never hurts serving, whatever the table holds: a far-future sample
// (2036) or one a few months ahead (2027-06-01) in the default partition, pg_partman managing the
// table; a bounded number of partitions a pass; a reader that holds a lock the pass needs; two
// instances deciding on pg_partman at once. All on real PostgreSQL 15.
import pg from 'pg';
import { describe, expect, it, type TestContext } from 'vitest';
import { PartitionMaintenance } from '../src/maintenance/partition-maintenance.js';
import { startTelemetry, telemetrySettings } from '../src/observability/telemetry.js';
import { type MaintenancePolicy, MetricPartitions } from '../src/store/metric-partitions.js';
import { MetricStore } from '../src/store/metric-store.js';
import { Batch } from '../src/store/sample-batch.js';
import { connectTest, createTestDatabase, type TestDatabase } from './support/database.js';
import { capturingLogger } from './support/logs.js';

const DAY = 86_400_000;
const SERVICE = { kind: 'service', reason: 'this test' } as const;
/** A pass of this file takes a few seconds on a loaded machine; a failing one took minutes. */
const PASS_BOUND_MS = 30_000;

async function ownDatabase(onTestFinished: TestContext['onTestFinished']): Promise<TestDatabase> {
  const db = await createTestDatabase();
  onTestFinished(() => db.drop());
  return db;
}

function batchAt(instants: number[]): Batch {
  const batch = new Batch(instants.length);
  for (const [index, ms] of instants.entries()) batch.push(ms, 1, index);
  return batch;
}

async function placed(db: TestDatabase): Promise<{ partition: string; ms: number }[]> {
  const { rows } = await db.pool.query<{ partition: string; ms: string }>(
    `SELECT tableoid::regclass::text AS partition, (extract(epoch FROM "timestamp") * 1000)::bigint::text AS ms
       FROM metrics ORDER BY "timestamp"`,
  );
  return rows.map((row) => ({ partition: row.partition, ms: Number(row.ms) }));
}

const policy = (overrides: Partial<MaintenancePolicy> = {}): MaintenancePolicy => ({
  sizeSeconds: 86_400,
  retentionSeconds: undefined,
  premake: 4,
  maxPartitions: 48,
  lockTimeoutMs: 2000,
  statementTimeoutMs: 60_000,
  ...overrides,
});

describe.each([
  ['2036-01-01', Date.UTC(2036, 0, 1), 'metrics_p2036_01_01'],
  ['2027-06-01', Date.UTC(2027, 5, 1, 12), 'metrics_p2027_06_01'],
])('a sample at %s in the default partition, with pg_partman', (_, instant, partition) => {
  it('gets a partition of its own in a pass that succeeds within bounds, and later passes have nothing to do', async ({
    onTestFinished,
  }) => {
    const db = await ownDatabase(onTestFinished);
    const store = new MetricStore(db);
    await store.writeBatch(batchAt([Date.now(), instant]), 'skip', false);
    const telemetry = startTelemetry(telemetrySettings({}, 'partition-maintenance-test'), {
      runtimeMetrics: false,
    });
    onTestFinished(() => telemetry.shutdown());
    const { logger, lines } = capturingLogger();
    const maintenance = new PartitionMaintenance(store, {
      sizeSeconds: 86_400,
      retentionSeconds: 365 * 86_400,
      intervalMs: 3_600_000,
      lockTimeoutMs: 2000,
      statementTimeoutMs: 60_000,
      maxPartitionsPerPass: 10,
      logger,
      meter: telemetry.meter,
    });
    const started = performance.now();
    const first = await maintenance.runOnce();
    expect(performance.now() - started).toBeLessThan(PASS_BOUND_MS);
    expect(
      lines.find((line) => line.msg === 'pg_partman drops the partitions of metrics past RETENTION'),
    ).toBeDefined();
    expect(first).toMatchObject({ failed: [], deferred: 0, defaultRows: { count: 0, estimated: false } });
    expect(first?.created.length).toBeLessThanOrEqual(10);
    expect(first?.created).toContain(partition);
    expect((await placed(db)).at(-1)).toEqual({ partition, ms: instant });
    expect((await placed(db)).some((row) => row.partition === 'metrics_default')).toBe(false);
    expect(await telemetry.scrape()).toMatch(/^metrics_api_partition_default_rows(\{[^}]*\})? 0$/m);

    const second = await maintenance.runOnce();
    await maintenance.stop();
    expect(second).toMatchObject({ created: [], dropped: [], failed: [], deferred: 0 });
    // pg_partman's own run_maintenance (pg_cron, its background worker) is bounded too now: it
    // ignores the default partition and premakes from the newest partition, which is ahead.
    await db.pool.query(`SELECT partman.run_maintenance('public.metrics', p_jobmon := false)`);
    expect(
      await db.pool.query(`SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = 'metrics'::regclass`),
    ).toMatchObject({ rows: [{ n: (await store.partitions.list()).length + 1 }] });
  });
});

describe('a pass', () => {
  it('makes at most maxPartitions partitions; the next passes go on where it stopped', async ({
    onTestFinished,
  }) => {
    const db = await ownDatabase(onTestFinished);
    const store = new MetricStore(db);
    const first = Date.UTC(2030, 0, 1, 6);
    const days = [0, 1, 2, 3, 4].map((day) => first + day * DAY);
    await store.writeBatch(batchAt(days), 'skip', false);

    const made: string[] = [];
    for (let pass = 0; pass < 5; pass++) {
      const result = await store.partitions.maintain(SERVICE, policy({ maxPartitions: 3 }));
      expect(result.failed).toEqual([]);
      expect(result.created.length).toBeLessThanOrEqual(3);
      made.push(...result.created);
      if (result.deferred === 0) break;
    }
    expect(made).toEqual(expect.arrayContaining(['metrics_p2030_01_01', 'metrics_p2030_01_05']));
    expect(new Set(made).size).toBe(made.length);
    expect(await placed(db)).toEqual(
      days.map((ms) => ({ partition: `metrics_p2030_01_0${new Date(ms).getUTCDate()}`, ms })),
    );
    expect(await store.partitions.defaultRows()).toEqual({ count: 0, estimated: false });
  });

  it('makes the partition of the last day a timestamp may have, which ends in year 10000', async ({
    onTestFinished,
  }) => {
    const db = await ownDatabase(onTestFinished);
    const store = new MetricStore(db);
    const last = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
    await store.writeBatch(batchAt([last]), 'skip', false);
    const result = await store.partitions.maintain(SERVICE, policy());
    expect(result.failed).toEqual([]);
    expect(result.created).toContain('metrics_p9999_12_31');
    expect(await placed(db)).toEqual([{ partition: 'metrics_p9999_12_31', ms: last }]);
    expect((await store.partitions.list()).at(-1)?.to.getTime()).toBe(last + 1);
  });

  it('leaves a partition it cannot lock in time, never holds a page up for longer than the lock timeout, and makes it at the next pass', async ({
    onTestFinished,
  }) => {
    const db = await ownDatabase(onTestFinished);
    const store = new MetricStore(db);
    const ahead = Date.UTC(2031, 2, 3, 4);
    await store.writeBatch(batchAt([Date.now() - 10 * DAY, ahead]), 'skip', false);

    // A long report reading the default partition: making any partition must lock it exclusively.
    const report = new pg.Client({ connectionString: db.url });
    await report.connect();
    onTestFinished(() => report.end());
    await report.query('BEGIN');
    await report.query('SELECT count(*) FROM metrics_default');

    const lockTimeoutMs = 400;
    const pass = store.partitions.maintain(SERVICE, policy({ lockTimeoutMs }));
    // Once the pass waits for its lock, a page asks for the newest rows, through metrics.
    await expect
      .poll(
        async () =>
          (
            await db.pool.query(
              `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
            )
          ).rows[0]?.n,
        { timeout: 10_000, interval: 20 },
      )
      .toBeGreaterThan(0);
    const readerConnection = connectTest(db.url);
    onTestFinished(() => readerConnection.close());
    const reader = new MetricStore(readerConnection);
    const asked = performance.now();
    const page = await reader.page({
      range: {},
      endInclusive: false,
      direction: 'desc',
      size: 10,
      fromEnd: false,
      after: undefined,
      before: undefined,
    });
    const waited = performance.now() - asked;
    expect(page.rows.map((row) => row.timestamp.getTime())).toEqual([ahead, expect.any(Number)]);
    // Without the lock timeout the page would wait for the report to end (8 s after it was asked).
    expect(waited).toBeLessThan(lockTimeoutMs + 4000);

    const result = await pass;
    expect(result.created).toEqual([]);
    expect(result.failed.length).toBeGreaterThan(0);
    for (const failure of result.failed) expect(failure.reason).toMatch(/lock timeout/);
    expect(result.defaultRows).toEqual({ count: 2, estimated: false });
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 8000 - (performance.now() - asked))));
    await report.query('COMMIT');

    const next = await store.partitions.maintain(SERVICE, policy({ lockTimeoutMs }));
    expect(next.failed).toEqual([]);
    expect(next.created).toContain('metrics_p2031_03_03');
    expect((await placed(db)).at(-1)).toEqual({ partition: 'metrics_p2031_03_03', ms: ahead });
  });
});

describe('the rows of the default partition', () => {
  it('are counted exactly up to a million, and beyond, estimated and labelled so', async ({
    onTestFinished,
  }) => {
    const db = await ownDatabase(onTestFinished);
    const store = new MetricStore(db);
    await store.writeBatch(batchAt([Date.UTC(1971, 0, 1), Date.UTC(1971, 0, 2)]), 'skip', false);
    expect(await store.partitions.defaultRows()).toEqual({ count: 2, estimated: false });

    // Straight into the partition: a million rows through metrics would also build their rollups.
    const rows = 1_000_100;
    await db.pool.query(
      `INSERT INTO metrics_default ("timestamp", cpu_load, concurrency)
         SELECT timestamp '1972-01-01 00:00:00+00' + n * interval '1 second', 1, 1 FROM generate_series(1, $1) AS n`,
      [rows - 2],
    );
    await db.pool.query('ANALYZE metrics_default');
    const counted = await store.partitions.defaultRows();
    expect(counted.estimated).toBe(true);
    expect(counted.count).toBeGreaterThan(1_000_000);
    expect(Math.abs(counted.count - rows) / rows).toBeLessThan(0.05);
  }, 120_000);
});

describe('pg_partman on a fresh database', () => {
  it('is created once when two instances decide at once, and both end up with it', async ({
    onTestFinished,
  }) => {
    for (let round = 0; round < 3; round++) {
      const db = await ownDatabase(onTestFinished);
      const instances = [0, 1].map(() => {
        const connection = connectTest(db.url);
        onTestFinished(() => connection.close());
        return new MetricPartitions(connection.pool, (_operation, _text, _values, run) => run());
      });
      const decided = await Promise.all(instances.map((instance) => instance.manager()));
      expect(decided).toEqual([
        { kind: 'pg_partman', schema: 'partman' },
        { kind: 'pg_partman', schema: 'partman' },
      ]);
    }
  });
});
