// ensureMigrated, in-process: the start-up check of the database's migrations against the code's
// (the server's refusals themselves are in server.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDatabaseUnavailable } from '../src/database/availability.js';
import { codeMigrations, ensureMigrated, SchemaMismatchError } from '../src/database/migrations.js';
import { connectTest, createTestDatabase, type TestDatabase } from './support/database.js';
import { capturingLogger } from './support/logs.js';
import { closedPort } from './support/ports.js';

let db: TestDatabase;
const { logger } = capturingLogger();

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.drop());

describe('ensureMigrated', () => {
  it('passes a database with every migration of the code applied', async () => {
    await expect(ensureMigrated(db, { migrate: false, logger })).resolves.toBeUndefined();
  });

  it('refuses a migration that failed half-way, even when told to migrate, naming the fix', async () => {
    await db.pool.query(
      `INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, applied_steps_count)
       VALUES ('failed', 'x', '29990101000000_half_done', now(), 0)`,
    );
    try {
      const refused = ensureMigrated(db, { migrate: true, logger });
      await expect(refused).rejects.toBeInstanceOf(SchemaMismatchError);
      await expect(refused).rejects.toThrow(
        'The database (DATABASE_URL) has a migration that failed half-way: 29990101000000_half_done. ' +
          'Repair the schema by hand, then mark it with `npx prisma migrate resolve --applied <name>` (or `--rolled-back <name>`), and start again.',
      );
    } finally {
      await db.pool.query("DELETE FROM _prisma_migrations WHERE id = 'failed'");
    }
  });

  it('names the pending migrations when some of the code are not applied', async () => {
    const [latest] = (await codeMigrations()).slice(-1);
    await db.pool.query(
      'UPDATE _prisma_migrations SET rolled_back_at = now(), finished_at = NULL WHERE migration_name = $1',
      [latest],
    );
    await expect(ensureMigrated(db, { migrate: false, logger })).rejects.toThrow(
      `is behind the code: 1 migration(s) not applied: ${latest}. Apply them with \`npm run db:deploy\``,
    );
  });

  it('fails as unavailable (the server waits) while the database cannot be reached', async () => {
    const away = { ...connectTest(`postgresql://postgres@127.0.0.1:${await closedPort()}/none`, 1), url: '' };
    try {
      const error = await ensureMigrated(away, { migrate: false, logger }).catch(
        (failure: unknown) => failure,
      );
      expect(isDatabaseUnavailable(error)).toBe(true);
    } finally {
      await away.close();
    }
  });
});
