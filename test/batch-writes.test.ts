// How the store writes a batch: COPY straight into metrics when every timestamp is new, and
// otherwise COPY into a staging table merged by one INSERT ... ON CONFLICT, with exact counts either
// way. The statements are read off the store's own spans.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MetricStore } from '../src/store/metric-store.js';
import { Batch } from '../src/store/sample-batch.js';
import { connectTest, createTestDatabase, type TestDatabase } from './support/database.js';
import { TracedStatements } from './support/traced-statements.js';

const T0 = Date.UTC(2026, 0, 1);
const MINUTE = 60_000;

let db: TestDatabase;
let traced: TracedStatements;
let store: MetricStore;

beforeAll(async () => {
  db = await createTestDatabase();
  traced = new TracedStatements('batch-writes-test');
  store = newStore();
});
afterAll(async () => {
  await traced.shutdown();
  await db.drop();
});
beforeEach(async () => {
  await db.pool.query('TRUNCATE metrics');
  // A store remembers whether its last batch met stored rows: each test starts with a new one.
  store = newStore();
  traced.take();
});

function newStore(): MetricStore {
  return new MetricStore(db, traced.telemetryFor(db));
}

/** The statements the store ran since the last reset: verb, table and whether each failed. */
function statements(): string[] {
  return traced.take().map(({ operation, text, failed }) => {
    const table = /\b(?:INTO|COPY)\s+(\w+)/.exec(text)?.[1];
    return `${operation} ${table}${failed ? ' (failed)' : ''}`;
  });
}

/** Samples at T0 + each minute given, cpu load minute / 10. */
function batchAt(minutes: number[], load = (minute: number) => minute / 10): Batch {
  const batch = new Batch(minutes.length);
  for (const minute of minutes) batch.push(T0 + minute * MINUTE, load(minute), minute);
  return batch;
}

async function stored(): Promise<{ minute: number; cpuLoad: number; id: string }[]> {
  const { rows } = await db.pool.query<{ ms: string; cpu_load: number; id: string }>(
    `SELECT (extract(epoch FROM "timestamp") * 1000)::bigint AS ms, cpu_load, id::text FROM metrics ORDER BY "timestamp"`,
  );
  return rows.map((row) => ({ minute: (Number(row.ms) - T0) / MINUTE, cpuLoad: row.cpu_load, id: row.id }));
}

describe('writing a batch', () => {
  it('copies a batch of new samples straight into metrics', async () => {
    expect(await store.writeBatch(batchAt([0, 1, 2]), 'skip', false)).toEqual({
      inserted: 3,
      updated: 0,
      duplicates: 0,
      ids: [],
      refused: [],
    });
    expect(statements()).toEqual(['COPY metrics']);
    expect((await stored()).map((row) => row.minute)).toEqual([0, 1, 2]);
  });

  it('undoes a copy that meets a stored timestamp and merges the batch instead, counting exactly', async () => {
    await store.writeBatch(batchAt([1, 3]), 'skip', false);
    statements();
    // 1 and 3 are stored; 2 appears twice in the batch.
    expect(await store.writeBatch(batchAt([0, 1, 2, 2, 3, 4]), 'skip', false)).toEqual({
      inserted: 3,
      updated: 0,
      duplicates: 3,
      ids: [],
      refused: [],
    });
    expect(statements()).toEqual(['COPY metrics (failed)', 'COPY metrics_staging', 'INSERT metrics']);
    expect((await stored()).map((row) => row.minute)).toEqual([0, 1, 2, 3, 4]);

    // The store remembers the conflict: the next batch is merged without trying COPY first, and
    // once a merged batch met nothing stored, COPY straight into metrics is tried again.
    await store.writeBatch(batchAt([5]), 'skip', false);
    expect(statements()).toEqual(['COPY metrics_staging', 'INSERT metrics']);
    await store.writeBatch(batchAt([6]), 'skip', false);
    expect(statements()).toEqual(['COPY metrics']);
  });

  it('updates stored samples whose values differ, and only those, with last-wins within the batch', async () => {
    await store.writeBatch(batchAt([0, 1, 2]), 'skip', false);
    const batch = new Batch(4);
    batch.push(T0, 0, 0); // as stored: a duplicate
    batch.push(T0 + MINUTE, 0.5, 1); // differs: updated
    batch.push(T0 + 3 * MINUTE, 0.25, 3); // new, then replaced by the next one
    batch.push(T0 + 3 * MINUTE, 0.75, 3);
    expect(await store.writeBatch(batch, 'update', false)).toEqual({
      inserted: 1,
      updated: 1,
      duplicates: 2,
      ids: [],
      refused: [],
    });
    expect((await stored()).map(({ minute, cpuLoad }) => [minute, cpuLoad])).toEqual([
      [0, 0],
      [1, 0.5],
      [2, 0.2],
      [3, 0.75],
    ]);
  });

  it('returns the ids it inserted, ascending, when asked', async () => {
    await store.writeBatch(batchAt([1]), 'skip', false);
    const { ids, inserted } = await store.writeBatch(batchAt([0, 1, 2]), 'skip', true);
    expect(inserted).toBe(2);
    const rows = await stored();
    expect(ids).toEqual([rows[0]?.id, rows[2]?.id].sort((a, b) => Number(a) - Number(b)));
    // COPY returns no ids: asked for them, the store merges even a batch of new samples.
    await store.writeBatch(batchAt([7]), 'skip', true);
    expect(statements().at(-1)).toBe('INSERT metrics');
  });

  it('keeps every timestamp exact to the millisecond across the whole range, before 2000 and after 2285', async () => {
    const instants = [
      0,
      Date.UTC(1999, 11, 31, 23, 59, 59, 999),
      Date.UTC(2000, 0, 1),
      Date.UTC(2286, 0, 1, 0, 0, 0, 1),
      Date.UTC(9999, 11, 31, 23, 59, 59, 999),
    ];
    const batch = new Batch(instants.length);
    for (const ms of instants) batch.push(ms, 3.4e38, 2_147_483_647);
    await store.writeBatch(batch, 'skip', false);
    const { rows } = await db.pool.query<{ ms: string; cpu_load: number; concurrency: number }>(
      `SELECT (extract(epoch FROM "timestamp") * 1000)::bigint AS ms, cpu_load, concurrency FROM metrics ORDER BY "timestamp"`,
    );
    expect(rows.map((row) => Number(row.ms))).toEqual(instants);
    // real comes back as its shortest decimal: compared as the float4 it names.
    expect(new Set(rows.map((row) => Math.fround(row.cpu_load)))).toEqual(new Set([Math.fround(3.4e38)]));
    expect(new Set(rows.map((row) => row.concurrency))).toEqual(new Set([2_147_483_647]));
  });
});

describe('a transaction of several batches', () => {
  it('stores all of its batches or none, and gives its connection back usable', async () => {
    const failing = store.inTransaction(async (target) => {
      await target.writeBatch(batchAt([0, 1]), 'skip', false);
      await target.writeBatch(batchAt([1, 2]), 'skip', false);
      // A negative load breaks the table's CHECK constraint.
      await target.writeBatch(
        batchAt([3], () => -1),
        'skip',
        false,
      );
    });
    await expect(failing).rejects.toMatchObject({ code: '23514' });
    expect(await stored()).toEqual([]);
    expect(db.pool.idleCount).toBe(db.pool.totalCount);

    const counts = await store.inTransaction(async (target) => [
      await target.writeBatch(batchAt([0, 1]), 'skip', false),
      await target.writeBatch(batchAt([1, 2]), 'skip', false),
      await target.writeBatch(batchAt([2, 3]), 'skip', false),
    ]);
    expect(counts.map(({ inserted, duplicates }) => [inserted, duplicates])).toEqual([
      [2, 0],
      [1, 1],
      [1, 1],
    ]);
    expect((await stored()).map((row) => row.minute)).toEqual([0, 1, 2, 3]);
  });
});

describe('concurrent writers merging the same timestamps', () => {
  it('count every row once: inserted by exactly one writer, updated by the others', async () => {
    const wide = connectTest(db.url, 8);
    const writers = 8;
    const rounds = 5;
    try {
      const concurrentStore = new MetricStore(wide, traced.telemetryFor({ url: db.url, pool: wide.pool }));
      // Writer w writes minutes [round * 50, round * 50 + 200) with a load only it uses in this
      // round, so every sample stored before differs from its own: updated, never a duplicate.
      const results = await Promise.all(
        Array.from({ length: writers }, async (_, writer) => {
          const written = [];
          for (let round = 0; round < rounds; round++) {
            const minutes = Array.from({ length: 200 }, (_, i) => round * 50 + ((i * (writer + 1)) % 200));
            const batch = batchAt([...new Set(minutes)], () => writer * rounds + round + 1);
            written.push({
              size: batch.length,
              result: await concurrentStore.writeBatch(batch, 'update', true),
            });
          }
          return written;
        }),
      );
      const all = results.flat();
      for (const { size, result } of all) {
        expect(result.inserted + result.updated).toBe(size);
        expect(result.duplicates).toBe(0);
        expect(result.ids).toHaveLength(result.inserted);
      }
      const rows = await stored();
      expect(rows).toHaveLength(rounds * 50 + 150);
      const insertedIds = all.flatMap(({ result }) => result.ids);
      expect(insertedIds).toHaveLength(rows.length);
      expect(new Set(insertedIds)).toEqual(new Set(rows.map((row) => row.id)));
    } finally {
      await wide.close();
    }
  });
});
