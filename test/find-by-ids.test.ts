import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MetricStore } from '../src/store/metric-store.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { TracedStatements } from './support/traced-statements.js';

const DAY = 86_400_000;
const FIRST = Date.UTC(2025, 0, 1);

let db: TestDatabase;
let traced: TracedStatements;
let store: MetricStore;
let rows: { id: bigint; ms: number }[];
beforeAll(async () => {
  db = await createTestDatabase();
  traced = new TracedStatements('find-by-ids-test');
  store = new MetricStore(db, traced.telemetryFor(db));
  await store.partitions.create(new Date(FIRST), new Date(FIRST + 40 * DAY), 86_400);
  await db.pool.query(
    `INSERT INTO metrics ("timestamp", cpu_load, concurrency)
       SELECT $1::timestamptz + n * interval '1 hour', n % 5, n FROM generate_series(0, 959) AS n`,
    [new Date(FIRST)],
  );
  await store.refreshPartitions();
  const { rows: stored } = await db.pool.query<{ id: string; ms: string }>(
    `SELECT id::text, (extract(epoch FROM "timestamp") * 1000)::bigint::text AS ms FROM metrics ORDER BY id`,
  );
  rows = stored.map((row) => ({ id: BigInt(row.id), ms: Number(row.ms) }));
  traced.take();
});
afterAll(async () => {
  await traced.shutdown();
  await db.drop();
});

describe('MetricStore.findByIds', () => {
  it('reads 100 ids in one statement, bounded to the partitions that hold them, in the order asked', async () => {
    const wanted = rows.slice(300, 400).reverse();
    const found = await store.findByIds(wanted.map((row) => row.id));
    expect(found.map((metric) => metric?.timestamp.getTime())).toEqual(wanted.map((row) => row.ms));
    const statements = traced.take();
    expect(statements).toHaveLength(1);
    // Partition pruning: the ids' time span, not every partition.
    expect(statements[0]?.text).toMatch(
      /id = ANY\(\$1::bigint\[\]\) AND "timestamp" >= \$2 AND "timestamp" < \$3/,
    );
  });

  it('answers null for ids no row has, and repeats a row asked for twice, in two statements at most', async () => {
    const [a, b] = [rows[5], rows[900]] as [{ id: bigint; ms: number }, { id: bigint; ms: number }];
    const found = await store.findByIds([a.id, 999_999_999n, b.id, a.id]);
    expect(found.map((metric) => metric?.timestamp.getTime() ?? null)).toEqual([a.ms, null, b.ms, a.ms]);
    const statements = traced.take();
    expect(statements).toHaveLength(2);
    // The second looks for the missing id in every partition: a row back-filled since is found.
    expect(statements[1]?.text).not.toMatch(/"timestamp" >=/);
  });

  it('finds a row back-filled into an old partition after the ranges were read', async () => {
    const { rows: inserted } = await db.pool.query<{ id: string }>(
      `INSERT INTO metrics ("timestamp", cpu_load, concurrency) VALUES ($1, 1, 1) RETURNING id::text`,
      [new Date(FIRST + 1000)],
    );
    const id = BigInt(inserted[0]?.id ?? 0);
    const [found] = await store.findByIds([id]);
    expect(found?.timestamp.getTime()).toBe(FIRST + 1000);
  });

  it('reads nothing for no ids', async () => {
    traced.take();
    expect(await store.findByIds([])).toEqual([]);
    expect(traced.take()).toHaveLength(0);
  });
});
