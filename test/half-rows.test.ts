// Merging writes (the agent receivers') hold a row of one value for its other half from another
// write (src/store/half-rows.ts): the two become one row, inserted once, and the first write is
// answered only once that row is stored. The statements are read off the store's own spans.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MetricStore } from '../src/store/metric-store.js';
import { Batch } from '../src/store/sample-batch.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { TracedStatements } from './support/traced-statements.js';

const T0 = Date.UTC(2026, 0, 1);
const SECOND = 1000;
/** Longer than any test waits: a held row written before it was written by what the test did. */
const WINDOW_MS = 10_000;

let db: TestDatabase;
let traced: TracedStatements;
let store: MetricStore;

beforeAll(async () => {
  db = await createTestDatabase();
  traced = new TracedStatements('half-rows-test');
});
afterAll(async () => {
  await traced.shutdown();
  await db.drop();
});
beforeEach(async () => {
  await db.pool.query(
    "TRUNCATE metrics; DELETE FROM sources WHERE id > 1; SELECT setval('sources_id_seq', 1)",
  );
  store = newStore(WINDOW_MS);
  // Each source has given both values before: a row of one value of it is worth holding.
  await store.writeGrouped(rows(['a', 'b'], [0], 'both'), 'merge');
  traced.take();
});

function newStore(joinWindowMs: number, maxSources?: number): MetricStore {
  return new MetricStore(db, traced.telemetryFor(db), undefined, {
    joinWindowMs,
    ...(maxSources ? { maxSources } : {}),
  });
}

type Values = 'load' | 'concurrency' | 'both';

/** Rows of each source at T0 + each second given: load second / 10 + 1, concurrency second + 100. */
function rows(sources: string[], seconds: number[], values: Values, load = (s: number) => s / 10 + 1): Batch {
  const batch = new Batch(sources.length * seconds.length);
  for (const second of seconds)
    for (const name of sources)
      batch.push(
        T0 + second * SECOND,
        values === 'concurrency' ? null : load(second),
        values === 'load' ? null : second + 100,
        batch.source(name),
      );
  return batch;
}

async function stored(): Promise<
  { source: string; second: number; cpuLoad: number | null; concurrency: number | null }[]
> {
  const { rows: found } = await db.pool.query<{
    name: string;
    ms: string;
    cpu_load: number | null;
    concurrency: number | null;
  }>(
    `SELECT s.name, (extract(epoch FROM m."timestamp") * 1000)::bigint AS ms, m.cpu_load, m.concurrency
       FROM metrics m JOIN sources s ON s.id = m.source_id ORDER BY m."timestamp", s.name`,
  );
  return found.map((row) => ({
    source: row.name,
    second: (Number(row.ms) - T0) / SECOND,
    cpuLoad: row.cpu_load,
    concurrency: row.concurrency,
  }));
}

/** The statements that wrote metrics since the last call: COPY, or the merge from staging. */
function metricWrites(): string[] {
  return traced
    .take()
    .filter(({ text }) => /^COPY metrics |ON CONFLICT/.test(text))
    .map(({ text, failed }) => `${text.startsWith('COPY') ? 'copy' : 'merge'}${failed ? ' (failed)' : ''}`);
}

describe('half rows of merging writes', () => {
  it('are held for their other halves, and the two are inserted as one row', async () => {
    const loads = store.writeGrouped(rows(['a', 'b'], [1, 2, 3], 'load'), 'merge');
    const concurrencies = store.writeGrouped(rows(['a', 'b'], [1, 2, 3], 'concurrency'), 'merge');
    const results = await Promise.all([loads, concurrencies]);
    expect(results.map(({ inserted, refused }) => ({ inserted, refused }))).toEqual([
      { inserted: 6, refused: [] },
      { inserted: 6, refused: [] },
    ]);
    // One COPY of whole rows: nothing was inserted to be updated.
    expect(metricWrites()).toEqual(['copy']);
    const after = (await stored()).filter(({ second }) => second > 0);
    expect(after).toHaveLength(6);
    for (const row of after) {
      expect(row.cpuLoad).toBeCloseTo(row.second / 10 + 1, 5);
      expect(row.concurrency).toBe(row.second + 100);
    }
  });

  it('answer the first write only once its rows are stored', async () => {
    const loads = store.writeGrouped(rows(['a'], [1, 2], 'load'), 'merge');
    const concurrencies = store.writeGrouped(rows(['a'], [1, 2], 'concurrency'), 'merge');
    await loads;
    // Read as soon as the first is answered: its rows are there, whole.
    expect((await stored()).filter(({ second }) => second > 0)).toEqual([
      { source: 'a', second: 1, cpuLoad: expect.closeTo(1.1, 5), concurrency: 101 },
      { source: 'a', second: 2, cpuLoad: expect.closeTo(1.2, 5), concurrency: 102 },
    ]);
    await concurrencies;
  });

  it('write a held row under a later value of its key, which wins, as it would unheld', async () => {
    const loads = store.writeGrouped(rows(['a'], [1], 'load'), 'merge');
    const both = store.writeGrouped(
      rows(['a'], [1], 'both', () => 7),
      'merge',
    );
    await Promise.all([loads, both]);
    expect((await stored()).filter(({ second }) => second > 0)).toEqual([
      { source: 'a', second: 1, cpuLoad: 7, concurrency: 101 },
    ]);
    expect(metricWrites()).toEqual(['copy']);
  });

  it('never give their source labels older than those it was given since', async () => {
    const batchOf = (values: Values, region: string) => {
      const batch = new Batch(1);
      batch.push(
        T0 + SECOND,
        values === 'load' ? 1 : null,
        values === 'load' ? null : 5,
        batch.source('a', { region }),
      );
      return batch;
    };
    const loads = store.writeGrouped(batchOf('load', 'old'), 'merge');
    const concurrencies = store.writeGrouped(batchOf('concurrency', 'new'), 'merge');
    await Promise.all([loads, concurrencies]);
    expect(metricWrites()).toEqual(['copy']);
    const { rows: labels } = await db.pool.query("SELECT labels FROM sources WHERE name = 'a'");
    expect(labels).toEqual([{ labels: { region: 'new' } }]);
  });

  it('are written alone once the writes stop coming, before the window ends', async () => {
    const started = performance.now();
    const loads = store.writeGrouped(rows(['a'], [1, 2], 'load'), 'merge');
    // No other write comes: a quiet of 20 ms (QUIET_MS), not the 10 s window, writes them.
    expect(
      await Promise.race([loads.then(() => 'written'), new Promise((r) => setTimeout(r, 2000, 'held'))]),
    ).toBe('written');
    // Held first: a write not held waits for no quiet.
    expect(performance.now() - started).toBeGreaterThanOrEqual(20);
    expect((await stored()).filter(({ second }) => second > 0)).toEqual([
      { source: 'a', second: 1, cpuLoad: expect.closeTo(1.1, 5), concurrency: null },
      { source: 'a', second: 2, cpuLoad: expect.closeTo(1.2, 5), concurrency: null },
    ]);
  });

  it('are written when the other value of their source moves past their instant without them', async () => {
    const loads = store.writeGrouped(rows(['a'], [1, 2, 3], 'load'), 'merge');
    // The concurrency series skips seconds 1 and 2: at 3, the loads of 1 and 2 will not be met.
    const concurrencies = store.writeGrouped(rows(['a'], [3], 'concurrency'), 'merge');
    await Promise.all([loads, concurrencies]);
    expect((await stored()).filter(({ second }) => second > 0)).toEqual([
      { source: 'a', second: 1, cpuLoad: expect.closeTo(1.1, 5), concurrency: null },
      { source: 'a', second: 2, cpuLoad: expect.closeTo(1.2, 5), concurrency: null },
      { source: 'a', second: 3, cpuLoad: expect.closeTo(1.3, 5), concurrency: 103 },
    ]);
    expect(metricWrites()).toEqual(['copy']);
  });

  it('are not held when the source never gave the other value, or this write gives it too', async () => {
    // `c` has given loads only; `a`'s concurrency at 1 comes in the same write as its load.
    await store.writeGrouped(rows(['c'], [0], 'load'), 'merge');
    traced.take();
    const batch = new Batch(3);
    batch.append(rows(['c', 'a'], [1], 'load'));
    batch.push(T0 + SECOND, null, 101, batch.source('a'));
    const first = store.writeGrouped(batch, 'merge');
    const second = store.writeGrouped(rows(['c', 'a'], [1], 'concurrency'), 'merge');
    await Promise.all([first, second]);
    // Held, the first's rows would have gone in with the second's, in one COPY.
    expect(metricWrites()).toEqual(['copy', 'copy (failed)', 'merge']);
    expect((await stored()).filter(({ second: s }) => s > 0)).toEqual([
      { source: 'a', second: 1, cpuLoad: expect.closeTo(1.1, 5), concurrency: 101 },
      { source: 'c', second: 1, cpuLoad: expect.closeTo(1.1, 5), concurrency: 101 },
    ]);
  });

  it('are not held when the window is 0 (AGENT_JOIN_WINDOW_MS=0): each write as it comes', async () => {
    const unjoined = newStore(0);
    await unjoined.writeGrouped(rows(['a'], [1], 'load'), 'merge');
    await unjoined.writeGrouped(rows(['a'], [1], 'concurrency'), 'merge');
    expect(metricWrites()).toEqual(['copy', 'copy (failed)', 'merge']);
    expect((await stored()).filter(({ second }) => second > 0)).toEqual([
      { source: 'a', second: 1, cpuLoad: expect.closeTo(1.1, 5), concurrency: 101 },
    ]);
  });

  it('report a row refused in another write to the write that sent it, by its own origin', async () => {
    // Sources: default, a, b; with a limit of 3, `d` cannot be made.
    const limited = newStore(WINDOW_MS, 3);
    // This store has seen both values of `a` and `d` (whose rows it refuses), a second before 0.
    const seen = await limited.writeGrouped(rows(['a', 'd'], [-1], 'both'), 'merge');
    expect(seen.refused).toHaveLength(1);
    traced.take();
    const loadBatch = rows(['a', 'd'], [1], 'load');
    const loads = limited.writeGrouped(loadBatch, 'merge');
    const concurrencies = limited.writeGrouped(rows(['d', 'a'], [1], 'concurrency'), 'merge');
    const [first, second] = await Promise.all([loads, concurrencies]);
    expect(first.refused.map(({ origin, problem }) => ({ origin, field: problem.field }))).toEqual([
      { origin: 1, field: 'source' },
    ]);
    expect(second.refused.map(({ origin, problem }) => ({ origin, field: problem.field }))).toEqual([
      { origin: 0, field: 'source' },
    ]);
    // Both pushes' rows in one write: the first's were held.
    expect(metricWrites()).toEqual(['copy']);
    expect((await stored()).filter(({ second: s }) => s > 0)).toEqual([
      { source: 'a', second: 1, cpuLoad: expect.closeTo(1.1, 5), concurrency: 101 },
    ]);
  });

  it('fail every write whose rows were in a failed write', async () => {
    const loads = store.writeGrouped(rows(['a'], [1], 'load'), 'merge');
    // A load PostgreSQL refuses (metrics' CHECK): the write the held row joins fails.
    const bad = new Batch(1);
    bad.push(T0 + SECOND, -1, 5, bad.source('a'));
    const failing = store.writeGrouped(bad, 'merge');
    await expect(failing).rejects.toThrow();
    await expect(loads).rejects.toThrow();
    expect((await stored()).filter(({ second }) => second > 0)).toEqual([]);
  });
});
