// `npm run rollups` says where it is: a line a day on stderr when stderr is not a terminal.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, run } from '../src/cli/rollups/run.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { collector, scriptEnv } from './support/ingest.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  // Two samples on each of three days, 2026-11-20 to 2026-11-22.
  await db.prisma.metric.createMany({
    data: [20, 21, 22].flatMap((date) =>
      [0, 12].map((hour) => ({
        timestamp: new Date(Date.UTC(2026, 10, date, hour)),
        cpuLoad: 0.5,
        concurrency: 1,
      })),
    ),
  });
});
afterAll(() => db?.drop());

async function rollups(...args: string[]) {
  const stdout = collector();
  const stderr = collector();
  const code = await run(args, { env: scriptEnv(db.url), stdout, stderr });
  return {
    code,
    stdout: stdout.text(),
    stderr: stderr
      .text()
      .split('\n')
      .filter((line) => line !== ''),
  };
}

describe('npm run rollups on a stream that is not a terminal', () => {
  it('prints a line a day as check and rebuild go, then the summary', async () => {
    const clean = await rollups('check');
    expect(clean.code).toBe(EXIT.ok);
    expect(clean.stderr).toEqual([
      'rollups: 2026-11-20 (1/3): equal',
      'rollups: 2026-11-21 (2/3): equal',
      'rollups: 2026-11-22 (3/3): equal',
      'rollups: 3 day(s) checked, all equal to the raw rows',
    ]);

    await db.prisma.$executeRawUnsafe(
      `UPDATE metric_rollups_minute SET row_count = row_count + 1 WHERE bucket = '2026-11-21T12:00:00Z'`,
    );
    const corrupted = await rollups('check');
    expect(corrupted.code).toBe(EXIT.differences);
    expect(corrupted.stderr.slice(0, 3)).toEqual([
      'rollups: 2026-11-20 (1/3): equal',
      'rollups: 2026-11-21 (2/3): 1 bucket(s) differ',
      'rollups: 2026-11-22 (3/3): equal',
    ]);
    expect(corrupted.stdout).toBe('minute 2026-11-21T12:00:00.000Z: row_count\n');

    const rebuild = await rollups('rebuild', '--from', '2026-11-21T00:00:00Z');
    expect(rebuild.code).toBe(EXIT.ok);
    expect(rebuild.stderr).toEqual([
      'rollups: 2026-11-21 (1/2): rebuilt',
      'rollups: 2026-11-22 (2/2): rebuilt',
      'rollups: rebuilt 2 day(s) from raw rows',
    ]);
    expect((await rollups('check')).code).toBe(EXIT.ok);
  });
});
