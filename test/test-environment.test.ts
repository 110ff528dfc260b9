// The suite's spawned servers, scripts and Prisma CLI runs never read the developer's .env (the
// README's quick start has the user copy .env.example to .env, which must not change a test).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { scriptEnv } from './support/ingest.js';
import { startServer } from './support/server-process.js';

let db: TestDatabase;
let cwd: string;
beforeAll(async () => {
  db = await createTestDatabase();
  await db.prisma.metric.createMany({
    data: [0, 1, 2].map((minute) => ({
      timestamp: new Date(Date.UTC(2026, 10, 26, 0, minute)),
      cpuLoad: 0.5,
      concurrency: minute,
    })),
  });
  cwd = await mkdtemp(join(tmpdir(), 'metrics-dotenv-'));
  // Values a test would never choose: a page of one row, and another database.
  await writeFile(
    join(cwd, '.env'),
    'DEFAULT_PAGE_SIZE=1\nDATABASE_READ_URL=postgresql://postgres@127.0.0.1:9/from_dotenv\n',
  );
});
afterAll(async () => {
  await db?.drop();
  await rm(cwd, { recursive: true, force: true });
});

async function pageSize(url: string): Promise<number> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: '{ metrics { edges { node { concurrency } } } }' }),
  });
  const body = (await response.json()) as { data?: { metrics: { edges: unknown[] } }; errors?: unknown };
  if (!body.data) throw new Error(`no data: ${JSON.stringify(body.errors)}`);
  return body.data.metrics.edges.length;
}

describe("a server the tests start in a folder holding a developer's .env", () => {
  it('ignores the file, which the same server reads when not told otherwise', async () => {
    const env = scriptEnv(db.url, { NODE_ENV: 'test', LOG_LEVEL: 'info' });
    const isolated = await startServer(env, { cwd });
    try {
      expect(await pageSize(isolated.url)).toBe(3);
    } finally {
      expect(await isolated.stop()).toBe(0);
    }
    // The control: the file is there and would change the answer (DATABASE_READ_URL would send
    // reads to a closed port, so it is left out of this run).
    await writeFile(join(cwd, '.env'), 'DEFAULT_PAGE_SIZE=1\n');
    const { DOTENV_CONFIG_PATH: _ignored, ...withDotenv } = env;
    const reading = await startServer(withDotenv, { cwd });
    try {
      expect(await pageSize(reading.url)).toBe(1);
    } finally {
      await reading.stop();
    }
  });
});
