import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { openDatabase } from '../src/database/open.js';
import { createLogger } from '../src/observability/logger.js';
import { MetricStore } from '../src/store/metric-store.js';
import { createEmptyDatabase, createTestDatabase } from './support/database.js';
import {
  ingestFixture,
  rejectionKeys,
  runIngest,
  runScript,
  scriptEnv,
  storedRows,
  summaryLine,
} from './support/ingest.js';

const fixture = ingestFixture();
beforeEach(async () => {
  await fixture.db.prisma.$executeRawUnsafe('TRUNCATE metrics RESTART IDENTITY');
});

const T0 = 1_795_651_200;
const ms = (seconds: number) => seconds * 1000;

async function ndjson(name: string, records: unknown[]): Promise<string> {
  const path = join(fixture.dir.path, name);
  await writeFile(path, `${records.map((r) => JSON.stringify(r)).join('\n')}\n`);
  return path;
}

// A and B are each sent twice with different values; C once.
const WITH_DUPLICATES = [
  { timestamp: T0, cpu_load: 1, concurrency: 1 }, // A
  { timestamp: T0 + 60, cpu_load: 2, concurrency: 2 }, // B
  { timestamp: T0, cpu_load: 9, concurrency: 9 }, // A again
  { timestamp: T0 + 120, cpu_load: 3, concurrency: 3 }, // C
  { timestamp: T0 + 60, cpu_load: 8, concurrency: 8 }, // B again
];
const FIRST_WINS = [
  { ms: ms(T0), cpuLoad: 1, concurrency: 1 },
  { ms: ms(T0 + 60), cpuLoad: 2, concurrency: 2 },
  { ms: ms(T0 + 120), cpuLoad: 3, concurrency: 3 },
];
const LAST_WINS = [
  { ms: ms(T0), cpuLoad: 9, concurrency: 9 },
  { ms: ms(T0 + 60), cpuLoad: 8, concurrency: 8 },
  { ms: ms(T0 + 120), cpuLoad: 3, concurrency: 3 },
];

describe('ingest script: duplicates and --on-conflict', () => {
  it('keeps the first of duplicates within a file, and adds nothing when the file is loaded again', async () => {
    const path = await ndjson('dups.ndjson', WITH_DUPLICATES);
    const first = await runIngest(fixture.db.url, ['--json', path]);
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({
      read: 5,
      inserted: 3,
      updated: 0,
      duplicates: 2,
      rejected: 0,
    });
    expect(await storedRows(fixture.db.url)).toEqual(FIRST_WINS);

    const again = await runIngest(fixture.db.url, ['--json', path]);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ read: 5, inserted: 0, updated: 0, duplicates: 5 });
    expect(await storedRows(fixture.db.url)).toEqual(FIRST_WINS);
  });

  it('first wins across batches too (--batch-size 1)', async () => {
    const path = await ndjson('dups-small-batches.ndjson', WITH_DUPLICATES);
    const result = await runIngest(fixture.db.url, ['--json', '--batch-size', '1', path]);
    expect(JSON.parse(result.stdout)).toMatchObject({ inserted: 3, updated: 0, duplicates: 2 });
    expect(await storedRows(fixture.db.url)).toEqual(FIRST_WINS);
  });

  it('--on-conflict update: the last sample for a timestamp wins, within a batch and against stored rows', async () => {
    const path = await ndjson('dups-update.ndjson', WITH_DUPLICATES);
    await runIngest(fixture.db.url, [path]); // stores the first-wins values
    const update = await runIngest(fixture.db.url, ['--json', '--on-conflict', 'update', path]);
    expect(update.code).toBe(0);
    // A and B change; C is re-sent unchanged, which is a duplicate, not an update.
    expect(JSON.parse(update.stdout)).toMatchObject({
      inserted: 0,
      updated: 2,
      duplicates: 3,
      onConflict: 'update',
    });
    expect(await storedRows(fixture.db.url)).toEqual(LAST_WINS);

    const again = await runIngest(fixture.db.url, ['--json', '--on-conflict', 'update', path]);
    expect(JSON.parse(again.stdout)).toMatchObject({ inserted: 0, updated: 0, duplicates: 5 });
    expect(await storedRows(fixture.db.url)).toEqual(LAST_WINS);
  });

  it('--on-conflict update: last wins across batches too (--batch-size 1)', async () => {
    const path = await ndjson('dups-update-empty.ndjson', WITH_DUPLICATES);
    const perRow = await runIngest(fixture.db.url, [
      '--json',
      '--on-conflict',
      'update',
      '--batch-size',
      '1',
      path,
    ]);
    expect(JSON.parse(perRow.stdout)).toMatchObject({ inserted: 3, updated: 2, duplicates: 0 });
    expect(await storedRows(fixture.db.url)).toEqual(LAST_WINS);
  });
});

describe('ingest script: --strict, --dry-run, --print-ids, --json', () => {
  const ONE_BAD = [
    { timestamp: T0, cpu_load: 1, concurrency: 1 },
    { timestamp: T0 + 60, cpu_load: -1, concurrency: 1 },
    { timestamp: T0 + 120, cpu_load: 1, concurrency: 1 },
  ];

  it('--strict writes nothing when any record is bad, from a file or from standard input', async () => {
    const path = await ndjson('strict.ndjson', ONE_BAD);
    const input = ONE_BAD.map((r) => JSON.stringify(r)).join('\n');
    const [fromFile, fromStdin] = await Promise.all([
      runIngest(fixture.db.url, ['--strict', path]),
      runIngest(fixture.db.url, ['--strict'], input),
    ]);
    expect(fromFile.code).toBe(1);
    expect(rejectionKeys(fromFile.stderr)).toEqual([`${path}:2: cpu_load`]);
    expect(summaryLine(fromFile.stderr)).toMatch(/inserted 0, .*rejected 1, .*--strict: nothing written/);
    expect(fromStdin.code).toBe(1);
    expect(rejectionKeys(fromStdin.stderr)).toEqual(['<stdin>:2: cpu_load']);
    expect(await storedRows(fixture.db.url)).toEqual([]);
  });

  it('--strict loads everything when every record is valid, standard input included', async () => {
    const input = [ONE_BAD[0], ONE_BAD[2]].map((r) => JSON.stringify(r)).join('\n');
    const result = await runIngest(fixture.db.url, ['--strict', '--json'], input);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ read: 2, inserted: 2, rejected: 0, written: true });
    expect(await storedRows(fixture.db.url)).toHaveLength(2);
  });

  it('--dry-run validates and counts without writing, and without needing the database', async () => {
    const path = await ndjson('dry.ndjson', ONE_BAD);
    const result = await runIngest('postgresql://postgres@127.0.0.1:1/nowhere', [
      '--dry-run',
      '--json',
      path,
    ]);
    expect(result.code).toBe(1);
    expect(rejectionKeys(result.stderr)).toEqual([`${path}:2: cpu_load`]);
    expect(JSON.parse(result.stdout)).toMatchObject({
      read: 3,
      valid: 2,
      rejected: 1,
      inserted: 0,
      dryRun: true,
      written: false,
    });
    expect(summaryLine(result.stderr)).toMatch(/dry run: 2 valid, nothing written/);
    expect(await storedRows(fixture.db.url)).toEqual([]);
  });

  it('--print-ids prints the id of each new row, one per line, then --json the summary', async () => {
    const path = await ndjson('ids.ndjson', WITH_DUPLICATES);
    const first = await runIngest(fixture.db.url, ['--print-ids', '--json', path]);
    expect(first.code).toBe(0);
    const lines = first.stdout.trim().split('\n');
    const ids = (
      await fixture.db.prisma.metric.findMany({ orderBy: { id: 'asc' }, select: { id: true } })
    ).map((r) => r.id.toString());
    expect(lines.slice(0, -1)).toEqual(ids);
    expect(ids).toHaveLength(3);
    expect(JSON.parse(lines.at(-1) as string)).toEqual({
      read: 5,
      valid: 5,
      rejected: 0,
      inserted: 3,
      updated: 0,
      duplicates: 2,
      elapsedMs: expect.any(Number),
      rowsPerSecond: expect.any(Number),
      dryRun: false,
      written: true,
      onConflict: 'skip',
    });

    const again = await runIngest(fixture.db.url, ['--print-ids', path]);
    expect(again.stdout).toBe('');
    expect(summaryLine(again.stderr)).toMatch(
      /^ingest: read 5, inserted 0, updated 0, duplicates 5, rejected 0, elapsed \d+\.\d\d s, \d+ rows\/s$/,
    );
  });
});

describe('ingest script: usage, configuration and connection errors', () => {
  it('--help documents every option and the exit codes', async () => {
    const result = await runIngest(undefined, ['--help']);
    expect(result.code).toBe(0);
    for (const option of [
      '--format',
      '--on-conflict',
      '--strict',
      '--dry-run',
      '--batch-size',
      '--print-ids',
      '--json',
      '--help',
      'Exit codes',
      'DATABASE_URL',
    ]) {
      expect(result.stdout).toContain(option);
    }
  });

  it('exits 2 with a message that says what to fix for bad options, unreadable files and bad configuration', async () => {
    const cases: [string[], RegExp][] = [
      [['--frmat', 'csv'], /Unknown option '--frmat'/],
      [['--format', 'xml', 'x.xml'], /--format must be one of json, ndjson, csv, got "xml"/],
      [['--on-conflict', 'merge'], /--on-conflict must be skip or update, got "merge"/],
      [['--batch-size', '0'], /--batch-size must be an integer from 1 to 30000/],
      [['-', '-'], /standard input \("-"\) can be given only once/],
      [[join(fixture.dir.path, 'missing.ndjson')], /missing\.ndjson: no such file/],
      [[fixture.dir.path], /is a directory/],
    ];
    const [badConfig, ...results] = await Promise.all([
      runScript('scripts/ingest.ts', [], {
        env: scriptEnv(fixture.db.url, { INGEST_BATCH_SIZE: '0' }),
        input: '',
      }),
      ...cases.map(([args]) => runIngest(fixture.db.url, args)),
    ]);
    results.forEach((result, i) => {
      expect(result.code, cases[i]?.[0].join(' ')).toBe(2);
      expect(result.stderr).toMatch(cases[i]?.[1] as RegExp);
    });
    expect(results[0]?.stderr).toMatch(/Run with --help for usage/);
    expect(badConfig?.code).toBe(2);
    expect(badConfig?.stderr).toMatch(/INGEST_BATCH_SIZE/);
  });

  it('exits 2 when the database cannot be reached, and says what to check', async () => {
    const result = await runIngest('postgresql://postgres:secret@127.0.0.1:1/metrics', [], '{}');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /cannot connect to PostgreSQL at postgresql:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/metrics/,
    );
    expect(result.stderr).toMatch(/cannot reach the database server at 127\.0\.0\.1:1/);
    expect(result.stderr).toMatch(/Check DATABASE_URL/);
    expect(result.stderr).not.toContain('secret');
  });

  it('exits 2 when the metrics table is missing, and names the migration command', async () => {
    const empty = await createEmptyDatabase();
    try {
      const result = await runIngest(empty.url, [], '{}');
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/metrics table does not exist .*npm run db:deploy/);
    } finally {
      await empty.drop();
    }
  });

  it('exits 2 when the database refuses a batch mid-way, keeping the batches already stored', async () => {
    const other = await createTestDatabase();
    try {
      // A rule the loader does not know, so the database is what refuses the second batch.
      await other.prisma.$executeRawUnsafe(
        'ALTER TABLE metrics ADD CONSTRAINT below_100 CHECK (concurrency < 100)',
      );
      const path = await ndjson(
        'refused.ndjson',
        [1, 2, 3, 100, 5].map((concurrency, i) => ({ timestamp: T0 + i, cpu_load: 1, concurrency })),
      );
      const result = await runIngest(other.url, ['--batch-size', '2', path]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/loading stopped: .*below_100/);
      expect(result.stderr).toMatch(/run the same command again/);
      expect((await storedRows(other.url)).map((r) => r.concurrency)).toEqual([1, 2]);
    } finally {
      await other.drop();
    }
  });
});

describe('ingest script on the embedded database', () => {
  it('loads only the given input into a new embedded database: no sample data', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'metrics-ingest-embedded-'));
    try {
      const dataDir = join(dir, 'pglite');
      const path = join(dir, 'mine.ndjson');
      await writeFile(
        path,
        [0, 1, 2].map((i) => JSON.stringify({ timestamp: T0 + i, cpu_load: 1, concurrency: i })).join('\n'),
      );
      const result = await runIngest(undefined, ['--json', path], undefined, { EMBEDDED_DATA_DIR: dataDir });
      expect(result.stderr).toMatch(/inserted 3,/);
      expect(result.code).toBe(0);
      const config = parseConfig({ EMBEDDED_DATA_DIR: dataDir, LOG_LEVEL: 'silent' });
      const database = await openDatabase(config, createLogger(config, { service: 'test' }));
      try {
        expect(await new MetricStore(database).count({})).toBe(3);
      } finally {
        await database.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
