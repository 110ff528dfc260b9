// `npm run db:seed` is `prisma db seed`, which runs scripts/seed.ts through prisma.config.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MetricStore } from '../src/store/metric-store.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { runPrisma } from './support/prisma-cli.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.drop());

describe('prisma db seed', () => {
  it('loads the bundled sample data, and a second run adds nothing', async () => {
    const store = new MetricStore(db);
    const first = await runPrisma(['db', 'seed'], { databaseUrl: db.url, env: { LOG_LEVEL: 'info' } });
    expect(first.code, first.output).toBe(0);
    expect(first.output).toMatch(/"inserted":1440/);
    expect(await store.count({})).toBe(1440);
    const second = await runPrisma(['db', 'seed'], { databaseUrl: db.url, env: { LOG_LEVEL: 'info' } });
    expect(second.code, second.output).toBe(0);
    expect(second.output).toMatch(/"inserted":0,"duplicates":1440/);
    expect(await store.count({})).toBe(1440);
  });

  it('writes the sample data to source 1 under the name DEFAULT_SOURCE gives it', async () => {
    const named = await runPrisma(['db', 'seed'], {
      databaseUrl: db.url,
      env: { DEFAULT_SOURCE: 'demo-host' },
    });
    expect(named.code, named.output).toBe(0);
    const { rows } = await db.pool.query<{ name: string; samples: number }>(
      'SELECT s.name, count(*)::integer AS samples FROM metrics m JOIN sources s ON s.id = m.source_id GROUP BY 1',
    );
    expect(rows).toEqual([{ name: 'demo-host', samples: 1440 }]);
  });
});
