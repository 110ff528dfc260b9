import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../src/paths.js';
import { ingestFixture, runIngest, runScript, scriptEnv, storedRows } from './support/ingest.js';

const fixture = ingestFixture();

const ROWS = 200_000;

async function count(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ n: number }>('SELECT count(*)::integer AS n FROM metrics');
  return rows[0]?.n ?? 0;
}

describe('ingest script: killed mid-way and run again', () => {
  it('ends with exactly the rows of the file, none lost, none doubled', { timeout: 60_000 }, async () => {
    const path = join(fixture.dir.path, 'large.ndjson');
    const generated = await runScript(
      'scripts/generate-metrics.ts',
      // 200,000 samples 15 s apart span 35 days: all of them in the past, within any future horizon.
      [
        '--rows',
        String(ROWS),
        '--step',
        '15',
        '--seed',
        '42',
        '--start',
        '2026-01-01T00:00:00Z',
        '--output',
        path,
      ],
      { env: scriptEnv(undefined) },
    );
    expect(generated.code).toBe(0);

    // Small batches make the load last long enough to be caught half-way on a fast machine.
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'scripts/ingest.ts', '--batch-size', '500', path],
      {
        cwd: projectRoot,
        env: scriptEnv(fixture.db.url),
        stdio: 'ignore',
      },
    );
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.on('exit', (_code, signal) => resolve(signal)),
    );
    const client = new pg.Client({ connectionString: fixture.db.url });
    await client.connect();
    let before: number;
    try {
      for (;;) {
        before = await count(client);
        if (before >= ROWS / 10 || child.exitCode !== null) break;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
      before = await count(client);
    } finally {
      await client.end();
    }
    // The kill landed mid-way, and only whole batches were stored.
    expect(before).toBeGreaterThan(0);
    expect(before).toBeLessThan(ROWS);
    expect(before % 500).toBe(0);

    const rerun = await runIngest(fixture.db.url, ['--json', path]);
    expect(rerun.code).toBe(0);
    expect(JSON.parse(rerun.stdout)).toMatchObject({
      read: ROWS,
      inserted: ROWS - before,
      duplicates: before,
      rejected: 0,
    });
    // Not a terminal, so no progress bar, even for a load this long.
    expect(rerun.stderr).not.toContain('\u001b[');
    expect(rerun.stderr).not.toContain('ETA');

    const expected = (await readFile(path, 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { timestamp: number; cpu_load: number; concurrency: number });
    const stored = await storedRows(fixture.db.url);
    expect(stored).toHaveLength(ROWS);
    const mismatches = stored.filter((row, i) => {
      const want = expected[i];
      return (
        !want ||
        row.ms !== Math.round(want.timestamp * 1000) ||
        row.cpuLoad === null ||
        Math.fround(row.cpuLoad) !== Math.fround(want.cpu_load) ||
        row.concurrency !== want.concurrency
      );
    });
    expect(mismatches).toEqual([]);
  });
});
