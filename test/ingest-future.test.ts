// The future horizon (MAX_FUTURE) on the file paths: the ingest command and the sample loader
// refuse each record too far ahead of now, by file, line and field, and keep the good ones.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { loadSampleData } from '../src/ingest/sample-data.js';
import { MetricStore } from '../src/store/metric-store.js';
import { ingestFixture, runIngest, storedRows, summaryLine } from './support/ingest.js';
import { capturingLogger } from './support/logs.js';

const fixture = ingestFixture();
beforeEach(async () => {
  await fixture.db.prisma.$executeRawUnsafe('TRUNCATE metrics RESTART IDENTITY');
});

const T0 = 1_795_651_200;
const HOUR = 3_600_000;

async function ndjson(name: string, records: unknown[]): Promise<string> {
  const path = join(fixture.dir.path, name);
  await writeFile(path, `${records.map((record) => JSON.stringify(record)).join('\n')}\n`);
  return path;
}

describe('npm run ingest: MAX_FUTURE', () => {
  it('refuses each record more than a day ahead of now by file, line and field, and stores the others', async () => {
    const soon = Math.floor((Date.now() + 20 * HOUR) / 1000);
    const path = await ndjson('future.ndjson', [
      { timestamp: T0, cpu_load: 1, concurrency: 1 },
      { timestamp: '2036-01-01T00:00:00Z', cpu_load: 1, concurrency: 1 },
      { timestamp: soon, cpu_load: 2, concurrency: 2 },
      { timestamp: Math.floor((Date.now() + 30 * HOUR) / 1000), cpu_load: 3, concurrency: 3 },
    ]);
    const result = await runIngest(fixture.db.url, [path]);
    expect(result.code).toBe(1);
    const errors = result.stderr.split('\n').filter((line) => line.startsWith(path));
    expect(errors).toEqual([
      `${path}:2: timestamp: 2036-01-01T00:00:00.000Z is more than 1d ahead of now (MAX_FUTURE)`,
      expect.stringMatching(
        new RegExp(`^${path}:4: timestamp: \\S+Z is more than 1d ahead of now \\(MAX_FUTURE\\)$`),
      ),
    ]);
    expect(summaryLine(result.stderr)).toContain('inserted 2, updated 0, duplicates 0, rejected 2');
    expect((await storedRows(fixture.db.url)).map((row) => row.ms)).toEqual([T0 * 1000, soon * 1000]);
  });

  it('takes the horizon from MAX_FUTURE', async () => {
    const path = await ndjson('hours.ndjson', [
      { timestamp: Math.floor((Date.now() + 3 * HOUR) / 1000), cpu_load: 1, concurrency: 1 },
    ]);
    const refused = await runIngest(fixture.db.url, ['--strict', path], undefined, { MAX_FUTURE: '2h' });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/:1: timestamp: \S+ is more than 2h ahead of now \(MAX_FUTURE\)\n/);
    expect(await storedRows(fixture.db.url)).toEqual([]);

    const allowed = await runIngest(fixture.db.url, [path], undefined, { MAX_FUTURE: '4h' });
    expect(allowed.code).toBe(0);
    expect(await storedRows(fixture.db.url)).toHaveLength(1);
  });

  it('takes any time with MAX_FUTURE=off', async () => {
    const path = await ndjson('far.ndjson', [
      { timestamp: '2036-01-01T00:00:00Z', cpu_load: 1, concurrency: 1 },
    ]);
    const result = await runIngest(fixture.db.url, [path], undefined, { MAX_FUTURE: 'off' });
    expect(result.code).toBe(0);
    expect((await storedRows(fixture.db.url)).map((row) => row.ms)).toEqual([Date.UTC(2036, 0, 1)]);
  });
});

describe('the sample loader: MAX_FUTURE', () => {
  it('refuses the samples too far ahead and loads the others', async () => {
    const path = await ndjson('sample.ndjson', [
      { timestamp: T0, cpu_load: 1, concurrency: 1 },
      { timestamp: '2036-01-01T00:00:00Z', cpu_load: 1, concurrency: 1 },
    ]);
    const { logger, lines } = capturingLogger();
    const summary = await loadSampleData(new MetricStore(fixture.db), {
      file: path,
      batchSize: 100,
      logger,
      maxFutureSeconds: 86_400,
    });
    expect(summary).toMatchObject({ inserted: 1, rejected: 1 });
    expect(lines.find((line) => line.msg === 'Loaded sample data')).toMatchObject({
      inserted: 1,
      rejected: 1,
    });
    expect((await storedRows(fixture.db.url)).map((row) => row.ms)).toEqual([T0 * 1000]);
  });
});
