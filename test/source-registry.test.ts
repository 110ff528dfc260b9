// The store's sources as writers make them: MAX_SOURCES held by concurrent writers, a name made by
// two writers at once, a rolled-back source never remembered, DEFAULT_SOURCE's rename, the
// sources gauge of /metrics, and all of it on the embedded database.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { openDatabase } from '../src/database/open.js';
import type { MetricSample } from '../src/domain/sample.js';
import { createLogger } from '../src/observability/logger.js';
import { ServiceMetrics } from '../src/observability/service-metrics.js';
import { startTelemetry, telemetrySettings } from '../src/observability/telemetry.js';
import { MetricStore } from '../src/store/metric-store.js';
import { Batch } from '../src/store/sample-batch.js';
import { DefaultSourceNameTakenError } from '../src/store/source-registry.js';
import { connectTest, createTestDatabase, type TestDatabase } from './support/database.js';
import { runIngest } from './support/ingest.js';

const T0 = Date.UTC(2026, 10, 26);

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.drop());
beforeEach(async () => {
  await db.pool.query('TRUNCATE metrics');
  await db.pool.query(`DELETE FROM sources WHERE id <> 1`);
  await db.pool.query(`UPDATE sources SET name = 'default' WHERE id = 1`);
});

/** A batch of one sample per source named, at `ms`. */
const batchOf = (names: readonly string[], ms = T0): Batch =>
  Batch.of(names.map((source): MetricSample => ({ timestampMs: ms, cpuLoad: 1, concurrency: null, source })));

const sourceNames = async (): Promise<string[]> =>
  (await db.pool.query<{ name: string }>('SELECT name FROM sources ORDER BY name')).rows.map(
    (row) => row.name,
  );

describe('making sources', () => {
  it('never makes more than MAX_SOURCES, however many writers make them at once', async () => {
    // Each writer a service of its own (as instances are): nothing remembered is shared.
    const connections = Array.from({ length: 6 }, () => connectTest(db.url, 2));
    try {
      const results = await Promise.all(
        connections.map((connection, writer) =>
          new MetricStore(connection, undefined, undefined, { maxSources: 10 }).writeBatch(
            batchOf([0, 1, 2].map((i) => `w${writer}-s${i}`)),
            'skip',
            false,
          ),
        ),
      );
      expect(await sourceNames()).toHaveLength(10);
      const inserted = results.reduce((sum, result) => sum + result.inserted, 0);
      const refused = results.flatMap((result) => result.refused);
      expect(inserted).toBe(9);
      expect(refused).toHaveLength(9);
      for (const { problem } of refused)
        expect(problem).toMatchObject({ field: 'source', code: 'SOURCE_LIMIT_EXCEEDED' });
      const { rows } = await db.pool.query<{ stored: number }>(
        'SELECT count(*)::integer AS stored FROM metrics JOIN sources ON sources.id = metrics.source_id',
      );
      expect(rows[0]?.stored).toBe(9);
    } finally {
      await Promise.all(connections.map((connection) => connection.close()));
    }
  });

  it('gives writers that make the same new source at once the one source', async () => {
    const connections = Array.from({ length: 8 }, () => connectTest(db.url, 2));
    try {
      const results = await Promise.all(
        connections.map((connection, writer) =>
          new MetricStore(connection).writeBatch(
            batchOf(['shared-1', 'shared-2'], T0 + writer * 1000),
            'skip',
            false,
          ),
        ),
      );
      expect(results.every((result) => result.inserted === 2 && result.refused.length === 0)).toBe(true);
      expect(await sourceNames()).toEqual(['default', 'shared-1', 'shared-2']);
      const { rows } = await db.pool.query<{ name: string; samples: number }>(
        `SELECT s.name, count(*)::integer AS samples FROM metrics m JOIN sources s ON s.id = m.source_id
          GROUP BY 1 ORDER BY 1`,
      );
      expect(rows).toEqual([
        { name: 'shared-1', samples: 8 },
        { name: 'shared-2', samples: 8 },
      ]);
    } finally {
      await Promise.all(connections.map((connection) => connection.close()));
    }
  });

  it('does not remember a source its transaction rolled back', async () => {
    const store = new MetricStore(db);
    await expect(
      store.inTransaction(async (target) => {
        await target.writeBatch(batchOf(['ghost']), 'skip', false);
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect(await sourceNames()).toEqual(['default']);
    expect((await store.writeBatch(batchOf(['ghost']), 'skip', false)).inserted).toBe(1);
    const { rows } = await db.pool.query<{ name: string }>(
      'SELECT s.name FROM metrics m JOIN sources s ON s.id = m.source_id',
    );
    expect(rows).toEqual([{ name: 'ghost' }]);
  });
});

describe('DEFAULT_SOURCE', () => {
  it('renames source 1, refuses a name another source has, and renames nothing when unset', async () => {
    const store = new MetricStore(db);
    await store.nameDefaultSource('edge');
    await store.nameDefaultSource('edge'); // already so: nothing to do
    expect(await sourceNames()).toEqual(['edge']);
    await store.writeBatch(batchOf(['web-1']), 'skip', false);
    const taken = store.nameDefaultSource('web-1');
    await expect(taken).rejects.toBeInstanceOf(DefaultSourceNameTakenError);
    await expect(taken).rejects.toThrow(/DEFAULT_SOURCE=web-1: another source already has that name/);
    expect(await sourceNames()).toEqual(['edge', 'web-1']);
    // DEFAULT_SOURCE unset: a process started without it leaves source 1's name alone.
    await store.nameDefaultSource(undefined);
    expect(await sourceNames()).toEqual(['edge', 'web-1']);
  });
});

describe('/metrics', () => {
  it('reports the number of sources as metrics_api_sources', async () => {
    const store = new MetricStore(db);
    await store.writeBatch(batchOf(['a', 'b', 'c']), 'skip', false);
    const telemetry = startTelemetry(telemetrySettings({}, 'metrics-api-test'), { runtimeMetrics: false });
    try {
      new ServiceMetrics(telemetry.meter, { count: () => store.countSources() });
      expect(await telemetry.scrape()).toMatch(/^metrics_api_sources(\{[^}]*\})? 4$/m);
    } finally {
      await telemetry.shutdown();
    }
  });
});

describe('sources on the embedded database', () => {
  it('are made, labelled, refused past MAX_SOURCES and renamed as on PostgreSQL', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'metrics-sources-embedded-'));
    try {
      const dataDir = join(dir, 'pglite');
      const path = join(dir, 'fleet.ndjson');
      await writeFile(
        path,
        [
          { timestamp: T0 / 1000, source: 'web-1', labels: { region: 'eu' }, cpu_load: 1 },
          { timestamp: T0 / 1000, source: 'web-2', concurrency: 2 },
          { timestamp: T0 / 1000, cpu_load: 3, concurrency: 3 },
          { timestamp: T0 / 1000, source: 'web-1', cpu_load: 4 },
          { timestamp: T0 / 1000 + 1, source: 'web-3', cpu_load: 5 },
        ]
          .map((record) => JSON.stringify(record))
          .join('\n'),
      );
      const env = { EMBEDDED_DATA_DIR: dataDir, MAX_SOURCES: '3', DEFAULT_SOURCE: 'local' };
      const result = await runIngest(undefined, ['--json', path], undefined, env);
      expect(result.code, result.stderr).toBe(1);
      expect(JSON.parse(result.stdout)).toMatchObject({ inserted: 3, duplicates: 1, rejected: 1 });
      expect(result.stderr).toMatch(/fleet\.ndjson:5: source: "web-3" is a new source and 3 sources exist/);
      const config = parseConfig({ ...env, LOG_LEVEL: 'silent' });
      const database = await openDatabase(config, createLogger(config, { service: 'test' }));
      try {
        const { rows } = await database.pool.query<{
          name: string;
          labels: object;
          cpu_load: number | null;
          concurrency: number | null;
        }>(
          `SELECT s.name, s.labels, m.cpu_load, m.concurrency FROM metrics m JOIN sources s ON s.id = m.source_id ORDER BY s.name`,
        );
        expect(rows).toEqual([
          { name: 'local', labels: {}, cpu_load: 3, concurrency: 3 },
          { name: 'web-1', labels: { region: 'eu' }, cpu_load: 1, concurrency: null },
          { name: 'web-2', labels: {}, cpu_load: null, concurrency: 2 },
        ]);
      } finally {
        await database.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
