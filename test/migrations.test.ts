// `prisma migrate` and `prisma generate` run for real, offline, through the WebAssembly schema
// engine (tools/schema-engine-wasm.mjs) that prisma.config.ts hands to the Prisma CLI.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it, type TestContext } from 'vitest';
import { createEmptyDatabase } from './support/database.js';
import { databaseUrl, withMaintenanceClient } from './support/postgres.js';
import {
  committedMigrations,
  createTempProject,
  repositoryDatamodel,
  runPrisma,
  SCHEMA_ENGINE_SHIM,
  type TempProject,
  UNREACHABLE_ENGINES_MIRROR,
  withMetricField,
} from './support/prisma-cli.js';

const DRIFT_CHECK = [
  'migrate',
  'diff',
  '--from-migrations',
  'prisma/migrations',
  '--to-schema',
  'prisma/schema.prisma',
  '--exit-code',
];
// Each CLI run takes about a second of CPU; a test making several on a busy 2-core machine needs
// more than the default 30 s.
const CLI_TEST_TIMEOUT = 120_000;
// Makes the CLI show the engine's stderr, where the shim logs the shadow databases it creates.
const ENGINE_DEBUG = { DEBUG: 'prisma:schemaEngine:stderr', PRISMA_SCHEMA_ENGINE_WASM_DEBUG: '1' };

async function query<Row = Record<string, unknown>>(url: string, sql: string, params: unknown[] = []) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as Row[];
  } finally {
    await client.end();
  }
}

const appliedMigrations = (url: string) =>
  query<{
    migration_name: string;
    checksum: string;
    finished_at: Date | null;
    rolled_back_at: Date | null;
    logs: string | null;
    applied_steps_count: number;
  }>(
    url,
    'SELECT migration_name, checksum, finished_at, rolled_back_at, logs, applied_steps_count FROM _prisma_migrations ORDER BY migration_name',
  );

const columnsOf = (url: string, table: string, schema = 'public') =>
  query<{ column_name: string; data_type: string; is_nullable: string }>(
    url,
    'SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position',
    [schema, table],
  );

const shadowDatabasesCreated = (output: string) => [
  ...new Set(output.match(/(?<=Created shadow database )prisma_migrate_shadow_db_[0-9a-f-]+/g) ?? []),
];

/** An empty database of the test's own, dropped when the test ends. */
async function ownEmptyDatabase(onTestFinished: TestContext['onTestFinished']) {
  const db = await createEmptyDatabase();
  onTestFinished(() => db.drop());
  return db;
}

async function ownTempProject(
  onTestFinished: TestContext['onTestFinished'],
  options: Parameters<typeof createTempProject>[0],
): Promise<TempProject> {
  const project = await createTempProject(options);
  onTestFinished(() => project.remove());
  return project;
}

describe('prisma migrate on an empty database, in this repository', { timeout: CLI_TEST_TIMEOUT }, () => {
  let db: Awaited<ReturnType<typeof createEmptyDatabase>>;
  beforeAll(async () => {
    db = await createEmptyDatabase();
  });
  afterAll(() => db?.drop());

  it('migrate status lists the committed migrations as pending and exits non-zero', async () => {
    const status = await runPrisma(['migrate', 'status'], { databaseUrl: db.url });
    expect(status.code, status.output).toBe(1);
    expect(status.output).toMatch(/Following migrations? have not yet been applied:/);
    for (const { name } of await committedMigrations()) expect(status.output).toContain(name);
  });

  it('migrate deploy applies them', async () => {
    const deploy = await runPrisma(['migrate', 'deploy'], { databaseUrl: db.url });
    expect(deploy.code, deploy.output).toBe(0);
    expect(deploy.output).toContain('All migrations have been successfully applied.');
    for (const { name } of await committedMigrations()) expect(deploy.output).toContain(name);
  });

  it('creates the metrics table with the specified columns, types and constraints', async () => {
    expect(await columnsOf(db.url, 'metrics')).toEqual([
      { column_name: 'id', data_type: 'bigint', is_nullable: 'NO' },
      { column_name: 'timestamp', data_type: 'timestamp with time zone', is_nullable: 'NO' },
      { column_name: 'cpu_load', data_type: 'real', is_nullable: 'YES' },
      { column_name: 'concurrency', data_type: 'integer', is_nullable: 'YES' },
      { column_name: 'source_id', data_type: 'integer', is_nullable: 'NO' },
    ]);
    const [timestamp] = await query(
      db.url,
      "SELECT datetime_precision FROM information_schema.columns WHERE table_name = 'metrics' AND column_name = 'timestamp'",
    );
    expect(timestamp).toEqual({ datetime_precision: 3 });
    const [id] = await query(
      db.url,
      "SELECT column_default FROM information_schema.columns WHERE table_name = 'metrics' AND column_name = 'id'",
    );
    expect(id?.column_default).toBe("nextval('metrics_id_seq'::regclass)");

    const constraints = await query<{ conname: string; contype: string; definition: string }>(
      db.url,
      "SELECT conname, contype, pg_get_constraintdef(oid) AS definition FROM pg_constraint WHERE conrelid = 'metrics'::regclass ORDER BY conname",
    );
    expect(constraints.map(({ conname, contype }) => [conname, contype])).toEqual([
      ['metrics_concurrency_non_negative', 'c'],
      ['metrics_cpu_load_finite_non_negative', 'c'],
      ['metrics_has_a_value', 'c'],
      ['metrics_pkey', 'p'],
    ]);
    const definitions = Object.fromEntries(
      constraints.map(({ conname, definition }) => [conname, definition]),
    );
    // One sample per source and instant; a partitioned table's primary key must include its
    // partition key (20261202060000_metrics_partitioned, 20261207000000_sources).
    expect(definitions.metrics_pkey).toBe('PRIMARY KEY (source_id, "timestamp")');
    expect(definitions.metrics_has_a_value).toBe(
      'CHECK (((cpu_load IS NOT NULL) OR (concurrency IS NOT NULL)))',
    );
    expect(definitions.metrics_concurrency_non_negative).toBe('CHECK ((concurrency >= 0))');
    expect(definitions.metrics_cpu_load_finite_non_negative).toMatch(
      /cpu_load >= .*cpu_load < 'Infinity'::real/,
    );

    const indexes = await query<{ indexname: string; indexdef: string }>(
      db.url,
      "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'metrics' ORDER BY indexname",
    );
    expect(indexes).toContainEqual({
      indexname: 'metrics_pkey',
      indexdef:
        'CREATE UNIQUE INDEX metrics_pkey ON ONLY public.metrics USING btree (source_id, "timestamp")',
    });
    expect(indexes).toContainEqual({
      indexname: 'metrics_timestamp_source_id_idx',
      indexdef:
        'CREATE INDEX metrics_timestamp_source_id_idx ON ONLY public.metrics USING btree ("timestamp", source_id)',
    });
    // A source's rows with every column its reads return (20261207150000_metrics_source_reads_index).
    expect(indexes).toContainEqual({
      indexname: 'metrics_source_reads_idx',
      indexdef:
        'CREATE INDEX metrics_source_reads_idx ON ONLY public.metrics USING btree (source_id, "timestamp", id, cpu_load, concurrency)',
    });
    expect(indexes).toContainEqual({
      indexname: 'metrics_id_idx',
      indexdef: 'CREATE INDEX metrics_id_idx ON ONLY public.metrics USING btree (id)',
    });
  });

  it('records each migration as applied, with the sha256 of its migration.sql as checksum', async () => {
    const expected = await committedMigrations();
    expect(expected.length).toBeGreaterThan(0);
    const applied = await appliedMigrations(db.url);
    expect(applied.map(({ migration_name, checksum }) => ({ name: migration_name, checksum }))).toEqual(
      expected,
    );
    for (const row of applied) {
      expect(row.finished_at).toBeInstanceOf(Date);
      expect(row.rolled_back_at).toBeNull();
      expect(row.applied_steps_count).toBe(1);
    }
  });

  it('migrate status then reports the database up to date and exits 0', async () => {
    const status = await runPrisma(['migrate', 'status'], { databaseUrl: db.url });
    expect(status.code, status.output).toBe(0);
    expect(status.output).toContain('Database schema is up to date!');
  });

  it('the drift check finds the schema and the migrations in agreement (exit 0)', async () => {
    const diff = await runPrisma(DRIFT_CHECK, { databaseUrl: db.url });
    expect(diff.code, diff.output).toBe(0);
    expect(diff.output).toContain('No difference detected.');
  });
});

// Independent of each other: each has its own database and, where it needs one, its own project.
describe.concurrent('prisma migrate through the WebAssembly schema engine', {
  timeout: CLI_TEST_TIMEOUT,
}, () => {
  it('records a failing migration as failed, exits non-zero with P3018, and blocks later deploys', async ({
    onTestFinished,
  }) => {
    const db = await ownEmptyDatabase(onTestFinished);
    const project = await ownTempProject(onTestFinished, {
      schema: await repositoryDatamodel(),
      copyMigrations: true,
    });
    await project.addMigration(
      '20990101000000_broken',
      'CREATE TABLE created_before_the_failure (id integer);\nSELECT 1 / 0;\n',
    );

    const deploy = await project.run(['migrate', 'deploy'], { databaseUrl: db.url });
    expect(deploy.code, deploy.output).not.toBe(0);
    expect(deploy.output).toContain('P3018');
    expect(deploy.output).toContain('Migration name: 20990101000000_broken');
    expect(deploy.output).toContain('Database error code: 22012');
    expect(deploy.output).toContain('division by zero');

    const applied = await appliedMigrations(db.url);
    const broken = applied.find((row) => row.migration_name === '20990101000000_broken');
    expect(broken).toMatchObject({ finished_at: null, rolled_back_at: null, applied_steps_count: 0 });
    expect(broken?.logs).toContain('division by zero');
    for (const { name } of await committedMigrations()) {
      expect(applied.find((row) => row.migration_name === name)?.finished_at).toBeInstanceOf(Date);
    }
    // The script ran as one implicit transaction, as with the native engine: nothing of it is left.
    expect(await query(db.url, "SELECT to_regclass('created_before_the_failure') AS table")).toEqual([
      { table: null },
    ]);

    const status = await project.run(['migrate', 'status'], { databaseUrl: db.url });
    expect(status.code, status.output).not.toBe(0);
    expect(status.output).toContain('Following migration have failed:');
    expect(status.output).toContain('20990101000000_broken');

    const again = await project.run(['migrate', 'deploy'], { databaseUrl: db.url });
    expect(again.code, again.output).not.toBe(0);
    expect(again.output).toContain('P3009');
  });

  it('applies a migration with a $$ function body and strings containing ";" as one script', async ({
    onTestFinished,
  }) => {
    const db = await ownEmptyDatabase(onTestFinished);
    const project = await ownTempProject(onTestFinished, {
      schema: await repositoryDatamodel(),
      copyMigrations: true,
    });
    await project.addMigration(
      '20990101000000_function_and_strings',
      `-- A comment; with a semicolon.
CREATE FUNCTION load_label(load real) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  IF load > 1 THEN
    RETURN 'busy; very';
  END IF;
  RETURN 'idle';
END;
$$;
CREATE TABLE notes (body text NOT NULL);
INSERT INTO notes (body) VALUES ('a;b'), ('it''s; quoted'), ($tag$c;'d$tag$);
`,
    );

    const deploy = await project.run(['migrate', 'deploy'], { databaseUrl: db.url });
    expect(deploy.code, deploy.output).toBe(0);
    expect(await query(db.url, 'SELECT load_label(2) AS busy, load_label(0.5) AS idle')).toEqual([
      { busy: 'busy; very', idle: 'idle' },
    ]);
    expect(await query(db.url, 'SELECT body FROM notes ORDER BY body')).toEqual([
      { body: 'a;b' },
      { body: "c;'d" },
      { body: "it's; quoted" },
    ]);
  });

  it('the drift check exits 2 and prints the SQL difference when the schema has changed', async ({
    onTestFinished,
  }) => {
    const db = await ownEmptyDatabase(onTestFinished);
    const project = await ownTempProject(onTestFinished, {
      schema: withMetricField(await repositoryDatamodel(), 'host String?'),
      copyMigrations: true,
    });
    const diff = await project.run([...DRIFT_CHECK, '--script'], { databaseUrl: db.url });
    expect(diff.code, diff.output).toBe(2);
    expect(diff.stdout).toMatch(/ALTER TABLE "metrics" ADD COLUMN\s+"host" TEXT;/);
  });

  it('migrate dev creates and applies migrations, and migrate reset starts over', async ({
    onTestFinished,
  }) => {
    const db = await ownEmptyDatabase(onTestFinished);
    const datamodel = await repositoryDatamodel();
    const project = await ownTempProject(onTestFinished, {
      schema: withMetricField(datamodel, 'host String?'),
      copyMigrations: true,
    });
    const run = (args: string[]) => project.run(args, { databaseUrl: db.url, env: ENGINE_DEBUG });

    // --create-only applies the committed migrations, then writes the new one without applying it.
    const createOnly = await run(['migrate', 'dev', '--create-only', '--name', 'add_host']);
    expect(createOnly.code, createOnly.output).toBe(0);
    const created = (await readdir(project.migrationsDir)).filter((name) => name.endsWith('_add_host'));
    expect(created).toHaveLength(1);
    const addHost = created[0] as string;
    expect(await readFile(join(project.migrationsDir, addHost, 'migration.sql'), 'utf8')).toMatch(
      /ALTER TABLE "metrics" ADD COLUMN\s+"host" TEXT;/,
    );
    expect((await columnsOf(db.url, 'metrics')).map((column) => column.column_name)).not.toContain('host');

    // migrate dev applies the pending migration, then creates and applies one for the next change.
    await project.writeSchema(withMetricField(withMetricField(datamodel, 'host String?'), 'zone String?'));
    const dev = await run(['migrate', 'dev', '--name', 'add_zone']);
    expect(dev.code, dev.output).toBe(0);
    expect(dev.output).toContain('Your database is now in sync with your schema.');
    // The wasm engine loses its shadow database here; the shim's diagnose-and-retry recovers. If
    // this stops appearing, a newer engine no longer needs that workaround.
    expect(dev.output).toContain('evaluateDataLoss needs a shadow database');
    expect((await columnsOf(db.url, 'metrics')).map((column) => column.column_name)).toEqual(
      expect.arrayContaining(['host', 'zone']),
    );
    const afterDev = await appliedMigrations(db.url);
    expect(afterDev.map((row) => row.migration_name)).toEqual([
      ...(await committedMigrations()).map(({ name }) => name),
      addHost,
      expect.stringMatching(/_add_zone$/),
    ]);
    expect(afterDev.every((row) => row.finished_at !== null)).toBe(true);

    const shadowDatabases = shadowDatabasesCreated(createOnly.output + dev.output);
    expect(shadowDatabases.length).toBeGreaterThan(0);
    const leftBehind = await withMaintenanceClient(inject('testServerUrl'), (client) =>
      client.query('SELECT datname FROM pg_database WHERE datname = ANY($1)', [shadowDatabases]),
    );
    expect(leftBehind.rows).toEqual([]);

    await query(db.url, 'INSERT INTO metrics (timestamp, cpu_load, concurrency) VALUES (now(), 1, 1)');
    const reset = await run(['migrate', 'reset', '--force']);
    expect(reset.code, reset.output).toBe(0);
    expect(reset.output).toContain('Database reset successful');
    expect(await query(db.url, 'SELECT count(*)::int AS rows FROM metrics')).toEqual([{ rows: 0 }]);
    const afterReset = await appliedMigrations(db.url);
    expect(afterReset.map((row) => row.migration_name)).toEqual(afterDev.map((row) => row.migration_name));
    expect(afterReset.every((row) => row.finished_at !== null)).toBe(true);
  });

  it('migrate deploy creates a database that does not exist yet', async ({ onTestFinished }) => {
    const name = `metrics_test_${inject('runId')}_created_${randomBytes(4).toString('hex')}`;
    const url = databaseUrl(inject('testServerUrl'), name);
    onTestFinished(() =>
      withMaintenanceClient(inject('testServerUrl'), (client) =>
        client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
      ).then(() => undefined),
    );

    const status = await runPrisma(['migrate', 'status'], { databaseUrl: url });
    expect(status.code, status.output).not.toBe(0);
    expect(status.output).toContain(`P1003: Database \`${name}\` does not exist`);

    const deploy = await runPrisma(['migrate', 'deploy'], { databaseUrl: url });
    expect(deploy.code, deploy.output).toBe(0);
    expect(deploy.output).toContain(`PostgreSQL database ${name} created`);
    expect((await appliedMigrations(url)).map((row) => row.migration_name)).toEqual(
      (await committedMigrations()).map(({ name }) => name),
    );
  });

  it("the engine's cli mode creates and drops databases and reports failures as JSON with a code", async ({
    onTestFinished,
  }) => {
    const name = `metrics_test_${inject('runId')}_cli_${randomBytes(4).toString('hex')}`;
    const url = databaseUrl(inject('testServerUrl'), name);
    onTestFinished(() =>
      withMaintenanceClient(inject('testServerUrl'), (client) =>
        client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
      ).then(() => undefined),
    );
    const cli = (command: string) =>
      new Promise<{ code: number | null; errors: { message: string; error_code?: string }[] }>((resolve) => {
        const engine = spawn(process.execPath, [
          SCHEMA_ENGINE_SHIM,
          '--datasource',
          JSON.stringify({ url }),
          'cli',
          command,
        ]);
        let stderr = '';
        engine.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString();
        });
        engine.on('close', (code) => {
          // Like the CLI: skip the banner line, read the JSON log lines after it.
          const lines = stderr.trim().split('\n').slice(1).filter(Boolean);
          resolve({ code, errors: lines.map((line) => JSON.parse(line).fields) });
        });
      });
    const exists = async () =>
      (
        await withMaintenanceClient(inject('testServerUrl'), (client) =>
          client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]),
        )
      ).rowCount === 1;

    expect(await cli('can-connect-to-database')).toEqual({
      code: 1,
      errors: [
        { message: expect.stringContaining(`Database \`${name}\` does not exist`), error_code: 'P1003' },
      ],
    });
    expect(await cli('create-database')).toEqual({ code: 0, errors: [] });
    expect(await exists()).toBe(true);
    expect(await cli('can-connect-to-database')).toEqual({ code: 0, errors: [] });
    expect(await cli('create-database')).toEqual({
      code: 1,
      errors: [
        { message: expect.stringContaining(`Database \`${name}\` already exists`), error_code: 'P1009' },
      ],
    });
    expect(await cli('drop-database')).toEqual({ code: 0, errors: [] });
    expect(await exists()).toBe(false);
  });

  it('fails fast with P1001 when nothing listens on the port', async () => {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.on('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
      });
    });
    const started = performance.now();
    const deploy = await runPrisma(['migrate', 'deploy'], {
      databaseUrl: `postgresql://postgres@127.0.0.1:${port}/metrics`,
    });
    expect(deploy.code, deploy.output).not.toBe(0);
    expect(deploy.output).toContain(`P1001: Can't reach database server at \`127.0.0.1:${port}\``);
    expect(performance.now() - started).toBeLessThan(15_000);
  });

  it('keeps the tables in the schema a ?schema= URL names', async ({ onTestFinished }) => {
    const db = await ownEmptyDatabase(onTestFinished);
    const url = new URL(db.url);
    url.searchParams.set('schema', 'metrics_app');

    const deploy = await runPrisma(['migrate', 'deploy'], { databaseUrl: url.toString() });
    expect(deploy.code, deploy.output).toBe(0);
    const tables = await query<{ table_schema: string; table_name: string }>(
      db.url,
      "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema IN ('public', 'metrics_app') ORDER BY table_name",
    );
    expect(tables).toEqual([
      { table_schema: 'metrics_app', table_name: '_prisma_migrations' },
      { table_schema: 'metrics_app', table_name: 'metric_rollups_day' },
      { table_schema: 'metrics_app', table_name: 'metric_rollups_hour' },
      { table_schema: 'metrics_app', table_name: 'metric_rollups_minute' },
      { table_schema: 'metrics_app', table_name: 'metrics' },
      { table_schema: 'metrics_app', table_name: 'metrics_default' },
      { table_schema: 'metrics_app', table_name: 'metrics_revision' },
      { table_schema: 'metrics_app', table_name: 'sources' },
    ]);
    const status = await runPrisma(['migrate', 'status'], { databaseUrl: url.toString() });
    expect(status.code, status.output).toBe(0);
    expect(status.output).toContain('Database schema is up to date!');
  });

  it('prisma generate works without downloading an engine', async ({ onTestFinished }) => {
    const schema = `generator client {
  provider = "prisma-client"
  output   = "../generated/prisma"
}
${await repositoryDatamodel()}`;
    const project = await ownTempProject(onTestFinished, { schema });
    const generate = await project.run(['generate']);
    expect(generate.code, generate.output).toBe(0);
    expect(generate.output).toContain('Generated Prisma Client');
    expect(existsSync(join(project.dir, 'generated/prisma/client.ts'))).toBe(true);

    // The control: without the shim, the CLI does try to download, and the unreachable mirror every
    // test run uses turns that into a failure. So the success above involved no download.
    const withoutShim = await ownTempProject(onTestFinished, { schema, useShim: false });
    const failed = await withoutShim.run(['generate']);
    expect(failed.code, failed.output).not.toBe(0);
    expect(failed.output).toContain(UNREACHABLE_ENGINES_MIRROR);
  });

  it('drops its shadow database when the CLI kills it in the middle of a command', async ({
    onTestFinished,
  }) => {
    const db = await ownEmptyDatabase(onTestFinished);
    const serverUrl = inject('testServerUrl');
    // The engine as the CLI runs it, asked for a migrate dev diagnosis whose only migration keeps
    // the shadow database busy for a minute. It is killed while that migration runs.
    const engine = spawn(
      process.execPath,
      [SCHEMA_ENGINE_SHIM, '--datasource', JSON.stringify({ url: db.url })],
      {
        stdio: ['pipe', 'ignore', 'pipe'],
      },
    );
    const exited = new Promise<number | null>((resolve) => engine.on('exit', (code) => resolve(code)));
    onTestFinished(() => {
      engine.kill('SIGKILL');
    });
    const sleep = `SELECT pg_sleep(60) /* ${db.name} */`;
    engine.stdin.write(
      `${JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'devDiagnostic',
        params: {
          migrationsList: {
            baseDir: '/nonexistent',
            lockfile: { path: 'migration_lock.toml', content: 'provider = "postgresql"\n' },
            migrationDirectories: [
              {
                path: '20990101000000_slow',
                migrationFile: { path: 'migration.sql', content: { tag: 'ok', value: sleep } },
              },
            ],
            shadowDbInitScript: '',
          },
          filters: { externalTables: [], externalEnums: [] },
        },
      })}\n`,
    );

    let busyShadowDatabase: string | undefined;
    const deadline = performance.now() + 20_000;
    while (!busyShadowDatabase && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const { rows } = await withMaintenanceClient(serverUrl, (client) =>
        client.query<{ datname: string }>('SELECT datname FROM pg_stat_activity WHERE query = $1', [sleep]),
      );
      busyShadowDatabase = rows[0]?.datname;
    }
    expect(busyShadowDatabase).toMatch(/^prisma_migrate_shadow_db_/);

    engine.kill('SIGTERM');
    expect(await exited).toBe(143);
    const leftBehind = await withMaintenanceClient(serverUrl, (client) =>
      client.query('SELECT datname FROM pg_database WHERE datname = $1', [busyShadowDatabase]),
    );
    expect(leftBehind.rows).toEqual([]);
  });

  it('prisma.config.ts leaves a PRISMA_SCHEMA_ENGINE_BINARY the user has set alone', async () => {
    const status = await runPrisma(['migrate', 'status'], {
      databaseUrl: databaseUrl(inject('testServerUrl'), 'postgres'),
      env: { PRISMA_SCHEMA_ENGINE_BINARY: '/nonexistent/native-schema-engine' },
    });
    expect(status.code, status.output).not.toBe(0);
    expect(status.output).toContain('PRISMA_SCHEMA_ENGINE_BINARY');
    expect(status.output).toContain('/nonexistent/native-schema-engine');
  });
});
