// The embedded default: PGlite served on a loopback port, migrated with the real Prisma CLI.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { startEmbeddedDatabase } from '../src/database/embedded.js';
import { openDatabase } from '../src/database/open.js';
import { createLiveUpdates, liveSettings } from '../src/live/live-updates.js';
import { createLogger } from '../src/observability/logger.js';
import { MetricStore } from '../src/store/metric-store.js';
import {
  committedMigrations,
  createTempProject,
  repositoryDatamodel,
  runPrisma,
} from './support/prisma-cli.js';

const logger = createLogger(parseConfig({ LOG_LEVEL: 'silent' }), { service: 'test' });

async function query<Row = Record<string, unknown>>(url: string, sql: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows as Row[];
  } finally {
    await client.end();
  }
}

// One data directory for the file: creating a PGlite database costs 7-15 s, reopening it ~1.5 s.
// The tests run in order: the first creates it, the second reuses it.
describe('embedded PGlite database', () => {
  let tempDir: string;
  let dataDir: string;
  beforeAll(async () => {
    tempDir = await mkdtemp(join(tmpdir(), 'metrics-pglite-'));
    // Not created yet: the first start is the one that creates it, as on a fresh clone.
    dataDir = join(tempDir, 'pglite');
  });
  afterAll(() => rm(tempDir, { recursive: true, force: true }));

  it('is what openDatabase runs on without DATABASE_URL, opens empty (no seeding), and keeps its rows across a restart', async () => {
    const config = parseConfig({ EMBEDDED_DATA_DIR: dataDir, LOG_LEVEL: 'silent' });
    expect(config.databaseUrl).toBeUndefined();
    const timestamp = new Date('2031-02-03T04:05:06.789Z');

    const first = await openDatabase(config, logger);
    try {
      expect(first.embedded).toBe(true);
      expect(first.created).toBe(true);
      // Opening never seeds: only the server's first start and db:seed load the sample data.
      expect(await new MetricStore(first).isEmpty()).toBe(true);
      expect(first.url).toMatch(/^postgresql:\/\/postgres@127\.0\.0\.1:\d+\//);
      const created = await first.prisma.metric.create({
        data: { timestamp, cpuLoad: 0.25, concurrency: 3 },
      });
      expect(typeof created.id).toBe('bigint');
      const read = await first.prisma.metric.findUnique({
        where: { sourceId_timestamp: { sourceId: 1, timestamp } },
      });
      expect(read).toMatchObject({ id: created.id, cpuLoad: 0.25, concurrency: 3 });
      expect(read?.timestamp.toISOString()).toBe(timestamp.toISOString());
    } finally {
      await first.close();
    }

    const second = await openDatabase(config, logger);
    try {
      expect(second.created).toBe(false);
      const read = await second.prisma.metric.findUnique({
        where: { sourceId_timestamp: { sourceId: 1, timestamp } },
      });
      expect(read).toMatchObject({ cpuLoad: 0.25, concurrency: 3 });
      expect(read?.timestamp.toISOString()).toBe(timestamp.toISOString());
      // The rollups' triggers and reads work there too: the whole table is read from the day rollups.
      const store = new MetricStore(second);
      expect((await store.summary({})).value).toMatchObject({
        count: 1,
        cpuLoad: { max: 0.25 },
        percentilesExact: true,
      });
      const day = { start: new Date('2031-02-03T00:00:00Z'), end: new Date('2031-02-04T00:00:00Z') };
      expect((await store.series(day, 3600)).value).toEqual([
        {
          start: new Date('2031-02-03T04:00:00Z'),
          count: 1,
          cpuLoad: { count: 1, min: 0.25, max: 0.25, avg: 0.25 },
          concurrency: { count: 1, min: 3, max: 3, avg: 3 },
        },
      ]);
    } finally {
      await second.close();
    }
  }, 120_000);

  it('announces its writes to live subscribers in its one process, as PostgreSQL does across replicas', async () => {
    const config = parseConfig({ EMBEDDED_DATA_DIR: dataDir, LOG_LEVEL: 'silent' });
    const database = await openDatabase(config, logger);
    const store = new MetricStore(database);
    const live = createLiveUpdates(store, database.changes, {
      ...liveSettings(config),
      logger,
      throttleMs: 50,
      readyTimeoutMs: 10_000,
    });
    try {
      const added = (await live.samples.subscribe({}))[Symbol.asyncIterator]();
      const summaries = (await live.aggregates.summary(3600))[Symbol.asyncIterator]();
      const before = (await summaries.next()).value?.summary.count ?? -1;
      // Within the live window, which ends now.
      const minuteAgo = Math.floor(Date.now() / 1000) * 1000 - 60_000;
      const timestamps = [new Date(minuteAgo), new Date(minuteAgo + 1000)];
      await database.prisma.metric.createMany({
        data: timestamps.map((timestamp) => ({ timestamp, cpuLoad: 0.5, concurrency: 1 })),
      });
      const received = [(await added.next()).value, (await added.next()).value];
      expect(received.map((row) => row?.timestamp.toISOString())).toEqual(
        timestamps.map((timestamp) => timestamp.toISOString()),
      );
      expect(received[1]?.id).toBeGreaterThan(received[0]?.id ?? Number.POSITIVE_INFINITY);
      for (;;) if ((await summaries.next()).value?.summary.count === before + 2) break;
      await added.return?.();
      await summaries.return?.();
    } finally {
      await live.close();
      await database.close();
    }
  }, 120_000);

  it('prisma migrate status and deploy work against it', async () => {
    const db = await startEmbeddedDatabase({ dataDir, maxConnections: 4, logger });
    try {
      const upToDate = await runPrisma(['migrate', 'status'], { databaseUrl: db.url });
      expect(upToDate.code, upToDate.output).toBe(0);
      expect(upToDate.output).toContain('Database schema is up to date!');

      // Back to an empty database, so that deploy has something to do.
      // CASCADE: the rollup functions that return or take the rollup row type go with the tables.
      await query(
        db.url,
        'DROP TABLE metrics, metrics_revision, sources, _prisma_migrations, metric_rollups_minute, metric_rollups_hour, metric_rollups_day CASCADE',
      );
      await query(
        db.url,
        `DROP FUNCTION metrics_new_revision, metrics_announce, metric_sketch_key, metric_sketch_merge,
           metric_rollups_recompute, metric_rollups_insert, metric_rollups_insert_starts, metric_rollups_change,
           metric_rollups_truncate, metric_rollups_fold, metric_rollups_fold_hour, metric_rollups_fold_day, sources_seen,
           metric_sketch_tail`,
      );
      const pending = await runPrisma(['migrate', 'status'], { databaseUrl: db.url });
      expect(pending.code, pending.output).toBe(1);
      expect(pending.output).toMatch(/Following migrations? have not yet been applied:/);
      const migrations = await committedMigrations();
      for (const { name } of migrations) expect(pending.output).toContain(name);

      const deploy = await runPrisma(['migrate', 'deploy'], { databaseUrl: db.url });
      expect(deploy.code, deploy.output).toBe(0);
      expect(deploy.output).toContain('All migrations have been successfully applied.');
      expect(
        await query(
          db.url,
          'SELECT migration_name, checksum, finished_at IS NOT NULL AS finished FROM _prisma_migrations ORDER BY migration_name',
        ),
      ).toEqual(migrations.map(({ name, checksum }) => ({ migration_name: name, checksum, finished: true })));
      expect(await query(db.url, "SELECT to_regclass('metrics') IS NOT NULL AS exists")).toEqual([
        { exists: true },
      ]);

      const status = await runPrisma(['migrate', 'status'], { databaseUrl: db.url });
      expect(status.code, status.output).toBe(0);
      expect(status.output).toContain('Database schema is up to date!');
    } finally {
      await db.stop();
    }
  }, 120_000);

  it('refuses commands that need a shadow database rather than migrating the embedded one', async () => {
    // PGlite serves its one database to every connection, whatever database the client names, so
    // a "shadow database" on it would be the embedded database itself.
    const db = await startEmbeddedDatabase({ dataDir, maxConnections: 4, logger });
    const project = await createTempProject({ schema: await repositoryDatamodel() });
    try {
      await project.addMigration('20990101000000_shadow_only', 'CREATE TABLE shadow_only (id integer);\n');
      const diff = await project.run(
        ['migrate', 'diff', '--from-migrations', 'prisma/migrations', '--to-schema', 'prisma/schema.prisma'],
        { databaseUrl: db.url },
      );
      expect(diff.code, diff.output).not.toBe(0);
      expect(diff.output).toContain('P3014');
      expect(diff.output).toContain('embedded PGlite server');
      expect(await query(db.url, "SELECT to_regclass('shadow_only') IS NULL AS untouched")).toEqual([
        { untouched: true },
      ]);
    } finally {
      await project.remove();
      await db.stop();
    }
  }, 120_000);
});
