import { spawn } from 'node:child_process';
import { access, readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type pg from 'pg';
import type { Logger } from '../observability/logger.js';
import { projectRoot } from '../paths.js';

const require = createRequire(import.meta.url);

/**
 * Applies pending migrations with the real `prisma migrate deploy`, so the embedded database keeps
 * the same `_prisma_migrations` history as any other.
 */
export async function migrateDeploy(databaseUrl: string): Promise<void> {
  const prismaCli = require.resolve('prisma/build/index.js');
  const output: Buffer[] = [];
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(process.execPath, [prismaCli, 'migrate', 'deploy'], {
      cwd: projectRoot,
      env: { ...process.env, DATABASE_URL: databaseUrl, PRISMA_HIDE_UPDATE_MESSAGE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (chunk: Buffer) => output.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => output.push(chunk));
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (exitCode !== 0) {
    throw new Error(`prisma migrate deploy failed (exit ${exitCode}):\n${Buffer.concat(output).toString()}`);
  }
}

/** The migrations the code expects, oldest first: the folders of prisma/migrations with a migration.sql. */
export async function codeMigrations(dir = join(projectRoot, 'prisma', 'migrations')): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const names = entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name);
  const withSql = await Promise.all(
    names.map(async (name) => ((await exists(join(dir, name, 'migration.sql'))) ? name : undefined)),
  );
  return withSql.filter((name) => name !== undefined).sort();
}

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

/** How the database's migration history (`_prisma_migrations`) stands against the code's. */
export interface MigrationState {
  /** In the code, not applied: the schema is behind the code. */
  pending: string[];
  /** Applied, not in the code: a newer version of the service migrated this database. */
  unknown: string[];
  /** Started and neither finished nor rolled back: `prisma migrate deploy` refuses to go on. */
  failed: string[];
}

/**
 * Reads the applied migrations through `pool` (whose search path is the URL's `?schema=`, where
 * Prisma keeps its table) and compares them with `expected`.
 */
export async function migrationState(pool: pg.Pool, expected: readonly string[]): Promise<MigrationState> {
  const { rows: table } = await pool.query<[name: string | null]>({
    text: "SELECT to_regclass('_prisma_migrations')::text",
    rowMode: 'array',
  });
  const { rows } = table[0]?.[0]
    ? await pool.query<[name: string, finished: boolean, rolledBack: boolean]>({
        text: 'SELECT migration_name, finished_at IS NOT NULL, rolled_back_at IS NOT NULL FROM _prisma_migrations',
        rowMode: 'array',
      })
    : { rows: [] };
  const applied = new Set(rows.filter(([, finished]) => finished).map(([name]) => name));
  const known = new Set(expected);
  return {
    pending: expected.filter((name) => !applied.has(name)),
    unknown: [...applied].filter((name) => !known.has(name)).sort(),
    failed: rows
      .filter(([, finished, rolledBack]) => !finished && !rolledBack)
      .map(([name]) => name)
      .sort(),
  };
}

/** The database's schema is not the one the code was written for; the message says what to do. */
export class SchemaMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchemaMismatchError';
  }
}

const listed = (names: readonly string[]) => names.join(', ');

/**
 * Nothing is served from a schema behind the code (every query would fail) or ahead of it: with
 * `migrate`, pending migrations are applied (`prisma migrate deploy`, which takes an advisory lock,
 * so instances starting together apply them once); without, a SchemaMismatchError names them and
 * the fix. A database migrated by a newer version, or with a failed migration, is refused either way.
 */
export async function ensureMigrated(
  connection: { pool: pg.Pool; url: string },
  options: { migrate: boolean; logger: Logger },
): Promise<void> {
  const expected = await codeMigrations();
  let state = await migrationState(connection.pool, expected);
  if (state.failed.length > 0) {
    throw new SchemaMismatchError(
      `The database (DATABASE_URL) has a migration that failed half-way: ${listed(state.failed)}. ` +
        'Repair the schema by hand, then mark it with `npx prisma migrate resolve --applied <name>` (or `--rolled-back <name>`), and start again.',
    );
  }
  if (state.unknown.length > 0) {
    throw new SchemaMismatchError(
      `The database (DATABASE_URL) has migrations this version of metrics-api does not know: ${listed(state.unknown)}. ` +
        'A newer version migrated it: run that version, or point DATABASE_URL at a database this one migrated.',
    );
  }
  if (state.pending.length === 0) return;
  if (!options.migrate) {
    throw new SchemaMismatchError(
      `The database (DATABASE_URL) is behind the code: ${state.pending.length} migration(s) not applied: ${listed(state.pending)}. ` +
        'Apply them with `npm run db:deploy` (same DATABASE_URL), or start with MIGRATE_ON_START=true.',
    );
  }
  options.logger.info({ pending: state.pending }, 'Applying migrations (MIGRATE_ON_START)');
  await migrateDeploy(connection.url);
  state = await migrationState(connection.pool, expected);
  if (state.pending.length > 0) {
    throw new SchemaMismatchError(
      `prisma migrate deploy left migrations not applied: ${listed(state.pending)}. Run \`npm run db:deploy\` to see why.`,
    );
  }
  options.logger.info({ applied: expected.length }, 'Migrations applied');
}
