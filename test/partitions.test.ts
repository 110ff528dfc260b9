// metrics partitioned by time: the migration that converts a populated table, the default
// partition, maintenance by pg_partman (takeover, partitions ahead, retention) and without it,
// the partitions command, and node lookups across many partitions. All on real PostgreSQL 15.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { encodeGlobalID } from '@pothos/plugin-relay';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it, type TestContext } from 'vitest';
import { run as runPartitions } from '../src/cli/partitions/run.js';
import { PartitionMaintenance } from '../src/maintenance/partition-maintenance.js';
import { projectRoot } from '../src/paths.js';
import { MetricStore } from '../src/store/metric-store.js';
import { pageSegments } from '../src/store/pages.js';
import { RollupStore } from '../src/store/rollup-store.js';
import { Batch } from '../src/store/sample-batch.js';
import { windowSources } from '../src/store/window-sql.js';
import { createTestService, graphql } from './support/app.js';
import {
  connectTest,
  createEmptyDatabase,
  createTestDatabase,
  type TestDatabase,
} from './support/database.js';
import { capturingLogger } from './support/logs.js';
import { withMaintenanceClient } from './support/postgres.js';
import { committedMigrations, createTempProject, repositoryDatamodel } from './support/prisma-cli.js';
import { TracedStatements } from './support/traced-statements.js';

const DAY = 86_400_000;
const PARTITIONED_MIGRATION = '20261202060000_metrics_partitioned';
// Each Prisma CLI run takes about a second of CPU; more on a busy machine.
const CLI_TIMEOUT = 120_000;

const midnight = (ms: number) => Math.floor(ms / DAY) * DAY;
/** A maintenance schedule no test waits for, with the default bounds of a pass. */
const BOUNDS = {
  intervalMs: 3_600_000,
  lockTimeoutMs: 2000,
  statementTimeoutMs: 60_000,
  maxPartitionsPerPass: 48,
};
const TODAY = midnight(Date.now());

async function query<Row extends pg.QueryResultRow = Record<string, unknown>>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<Row[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<Row>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

const partitionNames = async (url: string) =>
  (
    await query<{ name: string }>(
      url,
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'metrics'::regclass ORDER BY c.relname`,
    )
  ).map((row) => row.name);

const dayName = (ms: number) => `metrics_p${new Date(ms).toISOString().slice(0, 10).replaceAll('-', '_')}`;

/** Samples at the given instants. */
function batchAt(instants: number[]): Batch {
  const batch = new Batch(instants.length);
  for (const [index, ms] of instants.entries()) batch.push(ms, index / 10, index);
  return batch;
}

async function ownDatabase(onTestFinished: TestContext['onTestFinished']): Promise<TestDatabase> {
  const db = await createTestDatabase();
  onTestFinished(() => db.drop());
  return db;
}

describe('the migration to a partitioned table', { timeout: CLI_TIMEOUT }, () => {
  it('keeps every row with its id, continues the sequence, and makes a partition per day with rows', async ({
    onTestFinished,
  }) => {
    const db = await createEmptyDatabase();
    onTestFinished(() => db.drop());
    const project = await createTempProject({ schema: await repositoryDatamodel() });
    onTestFinished(() => project.remove());
    const migrations = (await committedMigrations()).map(({ name }) => name);
    const sqlOf = (name: string) =>
      readFile(join(projectRoot, 'prisma/migrations', name, 'migration.sql'), 'utf8');
    const before = migrations.filter((name) => name < PARTITIONED_MIGRATION);
    expect(before.length).toBeGreaterThan(0);
    for (const name of before) await project.addMigration(name, await sqlOf(name));
    const first = await project.run(['migrate', 'deploy'], { databaseUrl: db.url });
    expect(first.code, first.output).toBe(0);

    // Three days of samples, some deleted (ids with gaps), the sequence drawn past the last row.
    await query(
      db.url,
      `INSERT INTO metrics ("timestamp", cpu_load, concurrency)
         SELECT timestamp '2026-03-01 00:00:00+00' + n * interval '37 minutes', n % 7, n
           FROM generate_series(0, 150) AS n`,
    );
    await query(db.url, 'DELETE FROM metrics WHERE id % 10 = 3');
    await query(db.url, `SELECT nextval('metrics_id_seq') FROM generate_series(1, 5)`);
    const rowsBefore = await query(
      db.url,
      `SELECT id::text, "timestamp", cpu_load, concurrency FROM metrics ORDER BY "timestamp"`,
    );
    const [{ last }] = (await query<{ last: string }>(
      db.url,
      'SELECT last_value::text AS last FROM metrics_id_seq',
    )) as [{ last: string }];

    await project.addMigration(PARTITIONED_MIGRATION, await sqlOf(PARTITIONED_MIGRATION));
    const second = await project.run(['migrate', 'deploy'], { databaseUrl: db.url });
    expect(second.code, second.output).toBe(0);

    expect(
      await query(
        db.url,
        `SELECT id::text, "timestamp", cpu_load, concurrency FROM metrics ORDER BY "timestamp"`,
      ),
    ).toEqual(rowsBefore);
    expect(await partitionNames(db.url)).toEqual([
      'metrics_default',
      'metrics_p2026_03_01',
      'metrics_p2026_03_02',
      'metrics_p2026_03_03',
      'metrics_p2026_03_04',
    ]);
    expect(await query(db.url, 'SELECT count(*)::int AS rows FROM ONLY metrics_default')).toEqual([
      { rows: 0 },
    ]);
    const [inserted] = await query<{ id: string }>(
      db.url,
      `INSERT INTO metrics ("timestamp", cpu_load, concurrency) VALUES ('2026-03-02 12:00:30+00', 1, 1) RETURNING id::text`,
    );
    expect(inserted?.id).toBe(String(BigInt(last) + 1n));

    // The triggers of the earlier migrations, enabled as they were: always, and on replicas only.
    expect(
      await query(
        db.url,
        `SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'metrics'::regclass AND NOT tgisinternal ORDER BY tgname`,
      ),
    ).toEqual([
      { tgname: 'metrics_announce_delete', tgenabled: 'A' },
      { tgname: 'metrics_announce_insert', tgenabled: 'A' },
      { tgname: 'metrics_announce_truncate', tgenabled: 'A' },
      { tgname: 'metrics_announce_update', tgenabled: 'A' },
      { tgname: 'metrics_new_revision', tgenabled: 'A' },
      { tgname: 'metrics_new_revision_replicated', tgenabled: 'R' },
    ]);
    const listener = new pg.Client({ connectionString: db.url });
    await listener.connect();
    onTestFinished(() => listener.end());
    const notified = new Promise<string | undefined>((resolve) =>
      listener.on('notification', (n) => resolve(n.payload)),
    );
    await listener.query('LISTEN metrics_changes');
    const [revisionBefore] = await query(db.url, 'SELECT revision FROM metrics_revision');
    await query(db.url, `DELETE FROM metrics WHERE "timestamp" < '2026-03-02'`);
    expect(JSON.parse((await notified) ?? '')).toMatchObject({ op: 'DELETE', rows: expect.any(Number) });
    expect(await query(db.url, 'SELECT revision FROM metrics_revision')).not.toEqual([revisionBefore]);
  });
});

describe('rows for a time with no partition', () => {
  let db: TestDatabase;
  let store: MetricStore;
  beforeAll(async () => {
    db = await createTestDatabase();
    store = new MetricStore(db);
  });
  afterAll(() => db.drop());

  it('go to the default partition, by COPY and by merge, and are never refused', async () => {
    await store.partitions.create(new Date(Date.UTC(2026, 5, 1)), new Date(Date.UTC(2026, 5, 2)), 86_400);
    const early = Date.UTC(1971, 0, 1);
    const inside = Date.UTC(2026, 5, 1, 12);
    const late = Date.UTC(9999, 11, 31);
    expect((await store.writeBatch(batchAt([early, inside, late]), 'skip', false)).inserted).toBe(3);
    expect((await store.writeBatch(batchAt([early + 1, inside, late - 1]), 'update', true)).inserted).toBe(2);
    const placed = await query<{ partition: string; rows: number }>(
      db.url,
      `SELECT tableoid::regclass::text AS partition, count(*)::int AS rows FROM metrics GROUP BY 1 ORDER BY 1`,
    );
    expect(placed).toEqual([
      { partition: 'metrics_default', rows: 4 },
      { partition: 'metrics_p2026_06_01', rows: 1 },
    ]);
    expect(await store.partitions.defaultRows()).toEqual({ count: 4, estimated: false });
  });
});

/** Runs the partitions command in this process, as scripts/partitions.ts does. */
async function partitionsCommand(url: string, args: string[]) {
  const collect = () => {
    const chunks: string[] = [];
    const stream = new Writable({
      write(chunk, _encoding, done) {
        chunks.push(String(chunk));
        done();
      },
    });
    return Object.assign(stream, { text: () => chunks.join('') });
  };
  const stdout = collect();
  const stderr = collect();
  const code = await runPartitions(args, {
    env: { DATABASE_URL: url, LOG_LEVEL: 'silent' },
    stdout,
    stderr,
  });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

describe('npm run partitions', () => {
  it('makes the partitions of a range, moving in rows the default partition held for it', async ({
    onTestFinished,
  }) => {
    const db = await ownDatabase(onTestFinished);
    const store = new MetricStore(db);
    await store.writeBatch(
      batchAt([Date.UTC(2025, 0, 1, 6), Date.UTC(2025, 0, 2, 6), Date.UTC(2025, 0, 9)]),
      'skip',
      false,
    );

    const made = await partitionsCommand(db.url, ['--from', '2025-01-01', '--to', '2025-01-03T00:00:00Z']);
    expect(made).toMatchObject({ code: 0, stdout: 'metrics_p2025_01_01\nmetrics_p2025_01_02\n' });
    expect(made.stderr).toContain(
      '2 created, 0 of [2025-01-01T00:00:00.000Z, 2025-01-03T00:00:00.000Z) already covered',
    );
    expect(
      await query(db.url, 'SELECT tableoid::regclass::text AS partition FROM metrics ORDER BY "timestamp"'),
    ).toEqual([
      { partition: 'metrics_p2025_01_01' },
      { partition: 'metrics_p2025_01_02' },
      { partition: 'metrics_default' },
    ]);

    const hourly = await partitionsCommand(db.url, [
      '--from',
      '2025-01-02T12:00:00Z',
      '--to',
      '2025-01-03T02:00:00Z',
      '--size',
      '1h',
    ]);
    expect(hourly).toMatchObject({ code: 0, stdout: 'metrics_p2025_01_03_0000\nmetrics_p2025_01_03_0100\n' });
    expect(hourly.stderr).toContain('2 created, 12 of');
  });

  it('names the mistake in the command line and exits 2', async () => {
    const url = 'postgresql://postgres@127.0.0.1:1/none';
    expect(await partitionsCommand(url, ['--from', '2025-01-01'])).toMatchObject({
      code: 2,
      stderr: 'partitions: --to is required\n',
    });
    expect(await partitionsCommand(url, ['--from', '2025-01-03', '--to', '2025-01-01'])).toMatchObject({
      code: 2,
      stderr: 'partitions: --from (2025-01-03) must be before --to (2025-01-01)\n',
    });
    expect(await partitionsCommand(url, ['--from', 'yesterday', '--to', '2025-01-01'])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('partitions: --from "yesterday": '),
    });
    expect(
      await partitionsCommand(url, ['--from', '2025-01-01', '--to', '2025-01-02', '--size', '5h']),
    ).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--size "5h": must be a whole number of hours that divides a day'),
    });
    expect(
      await partitionsCommand(url, ['--from', '1990-01-01', '--to', '2025-01-02', '--size', '1h']),
    ).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('at most 10000 a run'),
    });
    expect(await partitionsCommand(url, ['--from', '2025-01-01', '--to', '2025-01-02'])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining(
        'partitions: making partitions in PostgreSQL at postgresql://postgres@127.0.0.1:1/none failed: ',
      ),
    });
  });
});

describe('maintenance with pg_partman', () => {
  it('hands the table to pg_partman, makes partitions ahead, and drops with pg_partman those past retention, announced', async ({
    onTestFinished,
  }) => {
    const db = await ownDatabase(onTestFinished);
    const store = new MetricStore(db);
    const old = TODAY - 200 * DAY;
    const recent = TODAY - 100 * DAY;
    const yesterday = TODAY - DAY;
    await store.partitions.create(new Date(old), new Date(old + DAY), 86_400);
    await store.partitions.create(new Date(recent), new Date(recent + DAY), 86_400);
    await store.partitions.create(new Date(yesterday), new Date(TODAY), 86_400);
    await store.writeBatch(
      batchAt([old + 1000, recent + 1000, yesterday + 1000, TODAY - 300 * DAY, TODAY + 2 * DAY + 1000]),
      'skip',
      false,
    );

    const listener = new pg.Client({ connectionString: db.url });
    await listener.connect();
    onTestFinished(() => listener.end());
    const payloads: string[] = [];
    listener.on('notification', (n) => payloads.push(n.payload ?? ''));
    await listener.query('LISTEN metrics_changes');
    const [revisionBefore] = await query(db.url, 'SELECT revision FROM metrics_revision');

    const { logger, lines } = capturingLogger();
    const maintenance = new PartitionMaintenance(store, {
      sizeSeconds: 86_400,
      retentionSeconds: 150 * 86_400,
      ...BOUNDS,
      logger,
    });
    const result = await maintenance.runOnce();
    await maintenance.stop();

    expect(
      lines.find((line) => line.msg === 'pg_partman drops the partitions of metrics past RETENTION'),
    ).toMatchObject({
      schema: 'partman',
    });
    expect(result?.dropped.map((partition) => partition.name)).toEqual([dayName(old)]);
    const names = await partitionNames(db.url);
    for (let day = 0; day <= 4; day++) expect(names).toContain(dayName(TODAY + day * DAY));
    expect(names).toEqual(expect.arrayContaining([dayName(recent), dayName(yesterday), 'metrics_default']));
    expect(names).not.toContain(dayName(old));
    expect(
      await query(db.url, `SELECT parent_table, retention, retention_keep_table FROM partman.part_config`),
    ).toEqual([
      { parent_table: 'public.metrics', retention: `${150 * 86_400} seconds`, retention_keep_table: false },
    ]);

    // The dropped day's row is gone, the row the default partition held (no partition for it) stays.
    expect(
      (
        await query<{ ms: string }>(
          db.url,
          `SELECT (extract(epoch FROM "timestamp") * 1000)::bigint::text AS ms FROM metrics ORDER BY 1`,
        )
      ).map((row) => Number(row.ms)),
    ).toEqual([TODAY - 300 * DAY, recent + 1000, yesterday + 1000, TODAY + 2 * DAY + 1000]);
    // The default partition's rows stayed where they were, but for the one in the range of a
    // partition pg_partman made: it moved there.
    expect(
      await query(
        db.url,
        `SELECT tableoid::regclass::text AS partition, (extract(epoch FROM "timestamp") * 1000)::bigint::text AS ms
           FROM metrics WHERE "timestamp" < $1 OR "timestamp" >= $2 ORDER BY 2`,
        [new Date(old), new Date(TODAY)],
      ),
    ).toEqual([
      { partition: 'metrics_default', ms: String(TODAY - 300 * DAY) },
      { partition: dayName(TODAY + 2 * DAY), ms: String(TODAY + 2 * DAY + 1000) },
    ]);
    expect(await query(db.url, 'SELECT revision FROM metrics_revision')).not.toEqual([revisionBefore]);
    // The takeover moved rows between partitions, not through the table: no row changed, nothing
    // is announced but the dropped partition, and the rollups count every row once.
    const notices = () => payloads.map((payload) => JSON.parse(payload));
    await expect.poll(() => notices().filter((notice) => notice.partitions)).toHaveLength(1);
    expect(notices().filter((notice) => !notice.partitions)).toEqual([]);
    const rollups = new RollupStore(db);
    for (const day of [TODAY - 300 * DAY, recent, yesterday, TODAY + 2 * DAY])
      expect(await rollups.checkDay(new Date(day))).toEqual([]);
    const deletes = () => notices().filter((notice) => notice.op === 'DELETE' && notice.partitions);
    expect(deletes()).toEqual([
      {
        op: 'DELETE',
        partitions: [dayName(old)],
        from: new Date(old).toISOString(),
        to: new Date(old + DAY - 1).toISOString(),
      },
    ]);
    expect(lines.find((line) => line.msg?.toString().startsWith('metrics_default holds rows'))).toMatchObject(
      { rows: 1 },
    );

    // A later pass finds the table managed and has nothing to drop.
    const again = await new PartitionMaintenance(store, {
      sizeSeconds: 86_400,
      retentionSeconds: 150 * 86_400,
      ...BOUNDS,
      logger,
    }).runOnce();
    expect(again).toMatchObject({ dropped: [] });
    expect(again?.partmanSizeSeconds).toBeUndefined();

    // Given another PARTITION_SIZE later, pg_partman keeps the size it took the table with.
    const hourly = await new PartitionMaintenance(store, {
      sizeSeconds: 3600,
      retentionSeconds: 150 * 86_400,
      ...BOUNDS,
      logger,
    }).runOnce();
    expect(hourly).toMatchObject({ created: [], partmanSizeSeconds: 86_400 });
    expect(lines.filter((line) => String(line.msg).startsWith('PARTITION_SIZE differs'))).toHaveLength(1);
  });
});

describe('maintenance without pg_partman', () => {
  it('warns once, makes partitions ahead itself, and inserts keep working', async ({ onTestFinished }) => {
    const db = await ownDatabase(onTestFinished);
    // A role that owns the tables but may not create pg_partman (it is not a trusted extension).
    const role = `${db.name}_app`;
    await withMaintenanceClient(inject('testServerUrl'), (client) =>
      client.query(`CREATE ROLE "${role}" LOGIN`),
    );
    onTestFinished(async () => {
      await withMaintenanceClient(inject('testServerUrl'), (client) =>
        client.query(`DROP ROLE IF EXISTS "${role}"`),
      );
    });
    onTestFinished(() => db.pool.query(`DROP OWNED BY "${role}"`).then(() => undefined));
    await db.pool.query(`GRANT CREATE ON DATABASE "${db.name}" TO "${role}"; GRANT CREATE ON SCHEMA public TO "${role}";
      ALTER TABLE metrics OWNER TO "${role}"; ALTER TABLE metrics_default OWNER TO "${role}";
      ALTER TABLE metrics_revision OWNER TO "${role}"; ALTER SEQUENCE metrics_id_seq OWNER TO "${role}"`);
    const url = new URL(db.url);
    url.username = role;
    const connection = connectTest(url.toString());
    onTestFinished(() => connection.close());
    const store = new MetricStore(connection);

    const { logger, lines } = capturingLogger();
    const maintenance = new PartitionMaintenance(store, {
      sizeSeconds: 86_400,
      retentionSeconds: 30 * 86_400,
      ...BOUNDS,
      logger,
    });
    const first = await maintenance.runOnce();
    const second = await maintenance.runOnce();
    await maintenance.stop();

    const warnings = lines.filter((line) => String(line.msg).startsWith('pg_partman is unavailable'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 40, retention: 'not applied' });
    expect(String(warnings[0]?.reason)).toContain('permission denied to create extension "pg_partman"');
    expect(first?.created).toEqual([0, 1, 2, 3, 4].map((day) => dayName(TODAY + day * DAY)));
    expect(second?.created).toEqual([]);
    expect(
      await query(db.url, `SELECT count(*)::int AS n FROM pg_extension WHERE extname = 'pg_partman'`),
    ).toEqual([{ n: 0 }]);

    const now = Date.now();
    expect((await store.writeBatch(batchAt([now, Date.UTC(2001, 0, 1)]), 'skip', false)).inserted).toBe(2);
    expect(
      await query(
        db.url,
        `SELECT tableoid::regclass::text AS partition FROM metrics ORDER BY "timestamp" DESC`,
      ),
    ).toEqual([{ partition: dayName(TODAY) }, { partition: 'metrics_default' }]);
  });
});

describe('node lookups across many partitions', () => {
  it('finds every row by id: remembered ranges, rows written since, back-filled rows, and none for a missing id', async ({
    onTestFinished,
  }) => {
    const db = await ownDatabase(onTestFinished);
    const store = new MetricStore(db);
    const first = Date.UTC(2025, 0, 1);
    await store.partitions.create(new Date(first), new Date(first + 400 * DAY), 86_400);
    await db.pool.query(
      `INSERT INTO metrics ("timestamp", cpu_load, concurrency)
         SELECT $1::timestamptz + n * interval '6 hours', n % 5, n FROM generate_series(0, 1599) AS n`,
      [new Date(first)],
    );
    await store.refreshPartitions();
    const rows = await query<{ id: string; ms: string }>(
      db.url,
      `SELECT id::text, (extract(epoch FROM "timestamp") * 1000)::bigint::text AS ms FROM metrics ORDER BY id`,
    );
    for (const row of [rows[0], rows[777], rows.at(-1)]) {
      const found = await store.findById(BigInt(row?.id ?? 0));
      expect(found?.timestamp.getTime()).toBe(Number(row?.ms));
    }
    // Written after the ranges were read: a new sample, and one back-filled into the first day.
    const idOf = async (ms: number) =>
      BigInt((await store.writeBatch(batchAt([ms]), 'skip', true)).ids[0] ?? 0);
    const fresh = await idOf(first + 400 * DAY - 1000);
    const backfilled = await idOf(first + 1000);
    expect((await store.findById(fresh))?.timestamp.getTime()).toBe(first + 400 * DAY - 1000);
    expect((await store.findById(backfilled))?.timestamp.getTime()).toBe(first + 1000);
    expect(await store.findById(999_999_999n)).toBeNull();

    // The same through GraphQL, on a service whose maintenance pass has read the partitions.
    const service = createTestService(db);
    onTestFinished(() => service.app.dispose());
    await service.store.refreshPartitions();
    const row = rows[1234] as { id: string; ms: string };
    const answer = await graphql<{
      node: { timestamp: string } | null;
      metrics: { nodes: { timestamp: string }[] };
    }>(
      service.app,
      `query ($id: ID!) {
        node(id: $id) { ... on Metric { timestamp } }
        metrics(first: 2, order: DESC) { nodes { timestamp } }
      }`,
      { id: encodeGlobalID('Metric', row.id) },
    );
    expect(answer.errors).toBeUndefined();
    expect(answer.data?.node?.timestamp).toBe(new Date(Number(row.ms)).toISOString());
    expect(answer.data?.metrics.nodes.map((node) => node.timestamp)).toEqual([
      new Date(first + 400 * DAY - 1000).toISOString(),
      new Date(first + 1599 * 6 * 3_600_000).toISOString(),
    ]);
  });
});

describe('pageSegments', () => {
  const at = (day: number) => new Date(Date.UTC(2025, 0, 1 + day));
  const cuts = [1, 2, 3, 4, 5, 6].map((day) => at(day).getTime());

  it('reads the partition of the first row, then two, then four, in the order of the page', () => {
    expect(pageSegments([], 'asc', cuts)).toEqual([
      [['<', at(1)]],
      [
        ['>=', at(1)],
        ['<', at(3)],
      ],
      [['>=', at(3)]],
    ]);
    expect(pageSegments([], 'desc', cuts)).toEqual([
      [['>=', at(6)]],
      [
        ['>=', at(4)],
        ['<', at(6)],
      ],
      [['<', at(4)]],
    ]);
  });

  it('cuts only inside the bounds of the page, and not at all without partitions', () => {
    const window = [['>', new Date(at(2).getTime() + 1)] as const, ['<=', at(4)] as const];
    expect(pageSegments(window, 'asc', cuts)).toEqual([[['<', at(3)]], [['>=', at(3)]]]);
    expect(pageSegments(window, 'asc', [])).toEqual([[]]);
  });
});

describe('windowSources', () => {
  const at = (day: number, hours = 0) => new Date(Date.UTC(2025, 0, 1 + day, hours));
  const partition = (day: number) => ({ name: dayName(at(day).getTime()), from: at(day), to: at(day + 1) });
  // Days 1, 2, 3 and 5: day 4 has no partition (its rows are in the default one).
  const partitions = [partition(1), partition(2), partition(3), partition(5)];

  it('reads whole the partitions inside the window, and through metrics its edges and gaps', () => {
    expect(windowSources(partitions, { start: at(1, 1), end: at(6) })).toEqual({
      whole: [partition(2), partition(3), partition(5)],
      rest: [
        { start: at(1, 1), end: at(2) },
        { start: at(4), end: at(5) },
      ],
    });
    expect(windowSources(partitions, { start: undefined, end: at(3) })).toEqual({
      whole: [partition(1), partition(2)],
      rest: [{ start: undefined, end: at(1) }],
    });
    expect(windowSources(partitions, { start: at(5), end: undefined })).toEqual({
      whole: [partition(5)],
      rest: [{ start: at(6), end: undefined }],
    });
  });

  it('reads everything through metrics when no partition lies wholly inside', () => {
    const window = { start: at(1, 1), end: at(1, 23) };
    expect(windowSources(partitions, window)).toEqual({ whole: [], rest: [window] });
    expect(windowSources([], {})).toEqual({ whole: [], rest: [{ start: undefined, end: undefined }] });
  });
});

describe('summaries over partitions', () => {
  it('read the partitions inside the window by name, exactly, and through metrics once one named is gone', async ({
    onTestFinished,
  }) => {
    const db = await ownDatabase(onTestFinished);
    const traced = new TracedStatements('partitions-test');
    onTestFinished(() => traced.shutdown());
    const store = new MetricStore(db, traced.telemetryFor(db));
    /** The selection scans run since the last call: what they read from, and whether each failed. */
    const scans = () =>
      traced
        .take()
        .filter(({ text }) => text.includes('AS window_rows'))
        .map(({ text, failed }) => ({
          partitions: [...text.matchAll(/FROM "(metrics_p\w+)"/g)].map((match) => match[1]),
          failed,
        }));
    const first = TODAY - 20 * DAY;
    await store.partitions.create(new Date(first), new Date(first + 4 * DAY), 86_400);
    // Every 30 s over days 0-2, one in day 3, and day 5 (no partition: the default one).
    const instants = [
      ...Array.from({ length: (3 * DAY) / 30_000 }, (_, index) => first + index * 30_000),
      first + 3 * DAY + 1000,
      ...Array.from({ length: 100 }, (_, index) => first + 5 * DAY + index * 60_000),
    ];
    const batch = new Batch(instants.length);
    for (const [index, ms] of instants.entries())
      batch.push(ms, ((index * 7919) % 1000) / 100, (index * 31) % 200);
    await store.writeBatch(batch, 'skip', false);
    await store.refreshPartitions();

    const exact = async (start: number, end: number) => {
      const [row] = await query<{ count: number; cpu: number[]; concurrency: number }>(
        db.url,
        `SELECT count(*)::int AS count,
                (percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY cpu_load))::real[] AS cpu,
                percentile_cont(0.95) WITHIN GROUP (ORDER BY concurrency) AS concurrency
           FROM metrics WHERE "timestamp" >= $1 AND "timestamp" < $2`,
        [new Date(start), new Date(end)],
      );
      return row;
    };
    const summarized = async (start: number, end: number) => {
      const { value } = await store.summary({ start: new Date(start), end: new Date(end) });
      return {
        count: value.count,
        cpu: [value.cpuLoad.p50, value.cpuLoad.p95, value.cpuLoad.p99],
        concurrency: value.concurrency.p95,
        exact: value.percentilesExact,
      };
    };
    const windows: [number, number][] = [
      [first, first + 3 * DAY],
      [first + 3_600_000 + 500, first + 2 * DAY],
      [first, first + 6 * DAY],
    ];
    for (const [start, end] of windows) {
      expect(await summarized(start, end), `${new Date(start).toISOString()}..`).toEqual({
        ...(await exact(start, end)),
        exact: true,
      });
    }
    const days = (...offsets: number[]) => offsets.map((day) => dayName(first + day * DAY));
    expect(scans()).toEqual([
      { partitions: days(0, 1, 2), failed: false },
      { partitions: days(1), failed: false },
      { partitions: days(0, 1, 2, 3), failed: false },
    ]);

    // Day 3's partition, emptied, is dropped behind the store's back, as another instance's
    // retention pass would: the store still names it, the statement fails, and the read is made
    // again through metrics.
    await query(db.url, `DELETE FROM metrics WHERE "timestamp" = $1`, [new Date(first + 3 * DAY + 1000)]);
    await query(db.url, `ALTER TABLE metrics DETACH PARTITION ${dayName(first + 3 * DAY)}`);
    await query(db.url, `DROP TABLE ${dayName(first + 3 * DAY)}`);
    expect(await summarized(first, first + 4 * DAY)).toEqual({
      ...(await exact(first, first + 4 * DAY)),
      exact: true,
    });
    expect(scans()).toEqual([
      { partitions: days(0, 1, 2, 3), failed: true },
      { partitions: [], failed: false },
    ]);
  });
});

describe('a summary once retention has dropped raw rows', () => {
  it("counts what the rollups keep of the dropped partition's partial hour", async ({ onTestFinished }) => {
    const db = await ownDatabase(onTestFinished);
    const store = new MetricStore(db);
    const first = TODAY - 30 * DAY;
    await store.partitions.create(new Date(first), new Date(first + 3 * DAY), 86_400);
    // Every 30 s over days 0-2.
    await store.writeBatch(
      batchAt(Array.from({ length: (3 * DAY) / 30_000 }, (_, index) => first + index * 30_000)),
      'skip',
      false,
    );
    // From 00:17:30 of day 0 (an unaligned instant) to noon of day 2.
    const window = { start: new Date(first + 1_050_000), end: new Date(first + 2 * DAY + DAY / 2) };
    const before = (await store.summary(window)).value.count;
    expect(before).toBe((window.end.getTime() - window.start.getTime()) / 30_000);

    // Day 0's partition dropped with its rows, as retention drops it; its rollups stay.
    await query(db.url, `ALTER TABLE metrics DETACH PARTITION ${dayName(first)}`);
    await query(db.url, `DROP TABLE ${dayName(first)}`);
    // The minutes from 00:18 and the hours and days still count day 0's samples; only the raw
    // edge before 00:18 (the sample at 00:17:30) is gone. Totalled from the raw rows left of the
    // partial hour, 85 samples (00:17:30 to 01:00) would be missing.
    expect((await store.summary(window)).value.count).toBe(before - 1);
  });
});

describe('pages across many partitions', () => {
  it('are the rows one ORDER BY over the whole table gives, in both orders, with cursors and windows', async ({
    onTestFinished,
  }) => {
    const db = await ownDatabase(onTestFinished);
    const store = new MetricStore(db);
    const first = Date.UTC(2025, 0, 1);
    // 40 day partitions with a gap (days 10-14, in the default partition) and days with no rows.
    await store.partitions.create(new Date(first), new Date(first + 10 * DAY), 86_400);
    await store.partitions.create(new Date(first + 15 * DAY), new Date(first + 40 * DAY), 86_400);
    await db.pool.query(
      `INSERT INTO metrics ("timestamp", cpu_load, concurrency)
         SELECT $1::timestamptz + n * interval '5 hours', 1, n FROM generate_series(0, 199) AS n
          WHERE n NOT BETWEEN 100 AND 140`,
      [new Date(first - 2 * DAY)],
    );
    await store.refreshPartitions();
    const all = (
      await query<{ ms: string }>(
        db.url,
        `SELECT (extract(epoch FROM "timestamp") * 1000)::bigint::text AS ms FROM metrics ORDER BY "timestamp"`,
      )
    ).map((row) => Number(row.ms));

    const walk = async (direction: 'asc' | 'desc', size: number, range: { start?: Date; end?: Date }) => {
      const seen: number[] = [];
      let cursor: { timestamp: Date; sourceId: number } | undefined;
      for (;;) {
        const page = await store.page({
          range,
          endInclusive: false,
          direction,
          size,
          fromEnd: false,
          after: cursor,
          before: undefined,
        });
        seen.push(...page.rows.map((row) => row.timestamp.getTime()));
        if (!page.hasMore) return seen;
        cursor = page.rows.at(-1);
      }
    };
    expect(await walk('asc', 7, {})).toEqual(all);
    expect(await walk('desc', 13, {})).toEqual([...all].reverse());
    const window = { start: new Date(first + 3 * DAY), end: new Date(first + 30 * DAY) };
    expect(await walk('asc', 50, window)).toEqual(
      all.filter((ms) => ms >= window.start.getTime() && ms < window.end.getTime()),
    );
    const last = await store.page({
      range: {},
      endInclusive: false,
      direction: 'asc',
      size: 3,
      fromEnd: true,
      after: undefined,
      before: undefined,
    });
    expect(last.rows.map((row) => row.timestamp.getTime())).toEqual(all.slice(-3));
  });

  it('are not all read by the change feed: it reads where its notifications say rows were written, and gets every row once, in commit order', async ({
    onTestFinished,
  }) => {
    const db = await ownDatabase(onTestFinished);
    const first = Date.UTC(2025, 0, 1);
    await new MetricStore(db).partitions.create(new Date(first), new Date(first + 400 * DAY), 86_400);
    // A read per notification (no LIVE_READ_INTERVAL_MS), so that each read is what one announced.
    const service = createTestService(db, { LIVE_READ_INTERVAL_MS: '0' });
    onTestFinished(() => service.app.dispose());
    const feed = service.live.feed;
    const reads: { from: Date; to: Date }[] = [];
    const announcedSince = service.store.primary.announcedSince.bind(service.store.primary);
    service.store.primary.announcedSince = (afterId, announced, limit) => {
      reads.push({ from: announced.from, to: announced.to });
      return announcedSince(afterId, announced, limit);
    };
    await feed.ready();
    const received: bigint[] = [];
    onTestFinished(feed.onAdded((rows) => received.push(...rows.map((row) => row.id))));

    // A batch into the last day; one transaction writing to the first day and to day 200; plain SQL.
    await service.store.writeBatch(batchAt([first + 399 * DAY, first + 399 * DAY + 1000]), 'skip', false);
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`INSERT INTO metrics ("timestamp", cpu_load, concurrency) VALUES ($1, 1, 1)`, [
        new Date(first + 5000),
      ]);
      await client.query(`INSERT INTO metrics ("timestamp", cpu_load, concurrency) VALUES ($1, 1, 1)`, [
        new Date(first + 200 * DAY),
      ]);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    await db.pool.query(`INSERT INTO metrics ("timestamp", cpu_load, concurrency) VALUES ($1, 2, 2)`, [
      new Date(first + 399 * DAY + 5000),
    ]);

    const stored = await query<{ id: string }>(db.url, 'SELECT id::text FROM metrics ORDER BY id');
    const expected = stored.map((row) => BigInt(row.id));
    await expect.poll(() => received.length, { timeout: 10_000 }).toBe(expected.length);
    expect(received).toEqual(expected);

    // The first read was of the first batch alone: its one partition, not the table's 401.
    const [firstRead] = reads;
    expect(firstRead?.to.getTime()).toBe(first + 399 * DAY + 1000);
    expect(firstRead?.from.getTime()).toBe(first + 399 * DAY);
    const plan = JSON.stringify(
      await service.store.explain(
        `SELECT id FROM metrics WHERE id > $1 AND "timestamp" >= $2 AND "timestamp" <= $3`,
        ['0', firstRead?.from, firstRead?.to],
      ),
    );
    const relations = [...plan.matchAll(/"Relation Name":"([^"]+)"/g)].map((match) => match[1]);
    expect(relations).toEqual(['metrics_p2026_02_04']);
  });
});
