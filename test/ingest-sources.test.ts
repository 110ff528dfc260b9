// The ingest command with sources: the source and labels fields of each format, --source and
// --label, labels replaced only when they differ, refused sources and label bombs, (source,
// timestamp) as the key, MAX_SOURCES, DEFAULT_SOURCE, and rollups that still match raw rows.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { MAX_LABEL_VALUE_LENGTH, MAX_SOURCE_LABELS } from '../src/domain/source.js';
import { RollupStore } from '../src/store/rollup-store.js';
import {
  ingestFixture,
  rejectionKeys,
  runIngest,
  runScript,
  sourcedRows,
  summaryLine,
} from './support/ingest.js';

const fixture = ingestFixture();
beforeEach(async () => {
  await fixture.db.pool.query('TRUNCATE metrics');
  await fixture.db.pool.query(`DELETE FROM sources WHERE id <> 1`);
  await fixture.db.pool.query(`UPDATE sources SET name = 'default', labels = '{}' WHERE id = 1`);
});

const T0 = 1_795_651_200;
const ms = (seconds: number) => seconds * 1000;

async function file(name: string, text: string): Promise<string> {
  const path = join(fixture.dir.path, name);
  await writeFile(path, text);
  return path;
}
const ndjson = (name: string, records: unknown[]) =>
  file(name, `${records.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n')}\n`);

/** Every source but the default one: name and labels, by name. */
async function sources(): Promise<Record<string, Record<string, string>>> {
  const { rows } = await fixture.db.pool.query<{ name: string; labels: Record<string, string> }>(
    'SELECT name, labels FROM sources ORDER BY name',
  );
  return Object.fromEntries(rows.map((row) => [row.name, row.labels]));
}

describe('ingest: sources and labels in each format', () => {
  it('stores each record under its source, made once, with the labels given, and a value left out as missing', async () => {
    const lines = await ndjson('fleet.ndjson', [
      {
        timestamp: T0,
        source: 'web-1',
        labels: { region: 'eu', tier: 'web' },
        cpu_load: 0.5,
        concurrency: 3,
      },
      { timestamp: T0, source: 'db-1', labels: { 'k8s.namespace': 'shop' }, cpu_load: 1.5 },
      { timestamp: T0, cpu_load: 0.25, concurrency: 1 },
      { timestamp: T0 + 60, source: 'web-1', concurrency: 4, cpu_load: null },
    ]);
    const array = await file(
      'fleet.json',
      JSON.stringify([{ timestamp: T0 + 120, source: 'db-1', cpuLoad: 2, concurrency: 7 }]),
    );
    const csv = await file(
      'fleet.csv',
      [
        'timestamp,source,labels,cpu_load,concurrency',
        `${T0 + 180},cache-1,region=us;tier=cache,0.75,`,
        `${T0 + 180},"edge-1","{""note"": ""a;b=c""}",,9`,
        `${T0 + 240},cache-1,,1,2`,
        `${T0 + 240},,,3,3`,
      ].join('\n'),
    );
    const result = await runIngest(fixture.db.url, [lines, array, csv]);
    expect(result.stderr).toBe(`${summaryLine(result.stderr)}\n`);
    expect(result.code).toBe(0);
    expect(summaryLine(result.stderr)).toMatch(/read 9, inserted 9, updated 0, duplicates 0, rejected 0/);
    expect(await sources()).toEqual({
      'cache-1': { region: 'us', tier: 'cache' },
      'db-1': { 'k8s.namespace': 'shop' },
      default: {},
      'edge-1': { note: 'a;b=c' },
      'web-1': { region: 'eu', tier: 'web' },
    });
    expect(await sourcedRows(fixture.db.url)).toEqual([
      { source: 'db-1', ms: ms(T0), cpuLoad: 1.5, concurrency: null },
      { source: 'default', ms: ms(T0), cpuLoad: 0.25, concurrency: 1 },
      { source: 'web-1', ms: ms(T0), cpuLoad: 0.5, concurrency: 3 },
      { source: 'web-1', ms: ms(T0 + 60), cpuLoad: null, concurrency: 4 },
      { source: 'db-1', ms: ms(T0 + 120), cpuLoad: 2, concurrency: 7 },
      { source: 'cache-1', ms: ms(T0 + 180), cpuLoad: 0.75, concurrency: null },
      { source: 'edge-1', ms: ms(T0 + 180), cpuLoad: null, concurrency: 9 },
      { source: 'cache-1', ms: ms(T0 + 240), cpuLoad: 1, concurrency: 2 },
      { source: 'default', ms: ms(T0 + 240), cpuLoad: 3, concurrency: 3 },
    ]);
  });

  it('gives --source (and --label) to the records that name no source; the others keep theirs', async () => {
    const path = await ndjson('mixed.ndjson', [
      { timestamp: T0, cpu_load: 1, concurrency: 1 },
      { timestamp: T0, source: 'db-1', cpu_load: 2, concurrency: 2 },
      { timestamp: T0 + 60, labels: { region: 'us' }, cpu_load: 3, concurrency: 3 },
    ]);
    const result = await runIngest(fixture.db.url, [
      '--source',
      'web-1',
      '--label',
      'region=eu',
      '--label',
      'tier=web',
      path,
    ]);
    expect(result.code, result.stderr).toBe(0);
    // The third record's own labels win over --label's (it comes later in the same batch).
    expect(await sources()).toEqual({ 'db-1': {}, default: {}, 'web-1': { region: 'us' } });
    expect((await sourcedRows(fixture.db.url)).map((r) => `${r.source} ${r.ms}`)).toEqual([
      `db-1 ${ms(T0)}`,
      `web-1 ${ms(T0)}`,
      `web-1 ${ms(T0 + 60)}`,
    ]);
  });

  it('refuses --label without --source, and a bad --source or --label, before reading anything', async () => {
    const path = await ndjson('one.ndjson', [{ timestamp: T0, cpu_load: 1, concurrency: 1 }]);
    for (const [args, message] of [
      [['--label', 'region=eu', path], /--label gives the labels of --source: give --source too/],
      [['--source', ' padded', path], /--source: must not start or end with white space/],
      [['--source', 'web-1', '--label', 'region', path], /--label: "region" is not name=value/],
      [['--source', 'web-1', '--label', '__name__=x', path], /--label: label name "__name__" is reserved/],
    ] as const) {
      const result = await runIngest(fixture.db.url, [...args]);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toMatch(message);
    }
    expect(await sourcedRows(fixture.db.url)).toEqual([]);
  });

  it('replaces stored labels only when a record gives others, and keeps them when it gives none', async () => {
    const labelled = (region: string | undefined) =>
      ndjson(`labels-${region}.ndjson`, [
        {
          timestamp: T0,
          source: 'web-1',
          ...(region && { labels: { region } }),
          cpu_load: 1,
          concurrency: 1,
        },
      ]);
    const rowVersion = async () =>
      (await fixture.db.pool.query<{ xmin: string }>(`SELECT xmin::text FROM sources WHERE name = 'web-1'`))
        .rows[0]?.xmin;
    expect((await runIngest(fixture.db.url, [await labelled('eu')])).code).toBe(0);
    const made = await rowVersion();
    // The same sample again, without labels, then with the same labels: the source's row is not written.
    expect((await runIngest(fixture.db.url, [await labelled(undefined)])).code).toBe(0);
    expect((await runIngest(fixture.db.url, [await labelled('eu')])).code).toBe(0);
    expect(await rowVersion()).toBe(made);
    expect((await sources())['web-1']).toEqual({ region: 'eu' });
    expect((await runIngest(fixture.db.url, [await labelled('us')])).code).toBe(0);
    expect(await rowVersion()).not.toBe(made);
    expect((await sources())['web-1']).toEqual({ region: 'us' });
  });
});

describe('ingest: refused sources and labels', () => {
  it('reports each bad source or label set at its line, with the field, and loads the rest', async () => {
    const many = Object.fromEntries(
      Array.from({ length: MAX_SOURCE_LABELS + 1 }, (_, i) => [`label${i}`, 'x']),
    );
    const records: [unknown, string | null][] = [
      [
        { timestamp: T0, source: 'web-1', labels: many, cpu_load: 1 },
        `labels: at most ${MAX_SOURCE_LABELS} labels`,
      ],
      [
        {
          timestamp: T0,
          source: 'web-1',
          labels: { region: 'x'.repeat(MAX_LABEL_VALUE_LENGTH + 1) },
          cpu_load: 1,
        },
        `labels: label "region" must be at most ${MAX_LABEL_VALUE_LENGTH} characters`,
      ],
      [
        { timestamp: T0, source: 'web-1', labels: { 'bad name': 'x' }, cpu_load: 1 },
        'labels: label name "bad name" must',
      ],
      [
        { timestamp: T0, source: 'web-1', labels: { source: 'x' }, cpu_load: 1 },
        'labels: label name "source" is reserved',
      ],
      [
        { timestamp: T0, source: 'web-1', labels: { region: 7 }, cpu_load: 1 },
        'labels: label "region" must be a string',
      ],
      [
        { timestamp: T0, source: 'web-1', labels: ['region=eu'], cpu_load: 1 },
        'labels: must be an object of name to value, got an array',
      ],
      [{ timestamp: T0, labels: { region: 'eu' }, cpu_load: 1 }, 'labels: given without a source'],
      [{ timestamp: T0, source: 'x'.repeat(257), cpu_load: 1 }, 'source: must be at most 256 characters'],
      [{ timestamp: T0, source: 'tab\there', cpu_load: 1 }, 'source: must not hold control characters'],
      [{ timestamp: T0, source: 42, cpu_load: 1 }, 'source: must be a string, got a number'],
      [{ timestamp: T0, source: 'web-1', labels: { region: 'eu' }, cpu_load: 1 }, null],
    ];
    const path = await ndjson(
      'bad-sources.ndjson',
      records.map(([record]) => record),
    );
    const csv = await file(
      'bad-labels.csv',
      [
        'timestamp,source,labels,cpu_load',
        `${T0},web-2,region,1`,
        `${T0},web-2,a=1;a=2,1`,
        `${T0},web-2,"{oops",1`,
        `${T0},web-2,tier=web,1`,
      ].join('\n'),
    );
    const result = await runIngest(fixture.db.url, [path, csv]);
    expect(result.code).toBe(1);
    const reported = result.stderr.split('\n').filter((line) => /:\d+: \w+: /.test(line));
    const expected = [
      ...records.flatMap(([, problem], i) => (problem ? [`${path}:${i + 1}: ${problem}`] : [])),
      `${csv}:2: labels: "region" is not name=value`,
      `${csv}:3: labels: label "a" given twice`,
      `${csv}:4: labels: a cell starting with { must be a JSON object of strings`,
    ];
    expect(reported.map((line, k) => line.slice(0, expected[k]?.length))).toEqual(expected);
    expect(summaryLine(result.stderr)).toMatch(/read 15, inserted 2, updated 0, duplicates 0, rejected 13/);
    expect(await sources()).toEqual({ default: {}, 'web-1': { region: 'eu' }, 'web-2': { tier: 'web' } });
  });

  it('refuses the records of a new source past MAX_SOURCES at each of their lines, and loads the others', async () => {
    // Source 1 and two more may exist.
    const env = { MAX_SOURCES: '3' };
    const path = await ndjson('crowd.ndjson', [
      { timestamp: T0, source: 'a', cpu_load: 1 },
      { timestamp: T0, source: 'b', cpu_load: 1 },
      { timestamp: T0, source: 'c', cpu_load: 1 },
      { timestamp: T0 + 60, source: 'a', cpu_load: 1 },
      { timestamp: T0 + 60, source: 'c', cpu_load: 1 },
      { timestamp: T0 + 60, cpu_load: 1 },
      { timestamp: T0 + 120, source: 'd', cpu_load: 1 },
    ]);
    // Batches of 2: the refusals come from several batches, and from the one that made b.
    const result = await runIngest(fixture.db.url, ['--batch-size', '2', path], undefined, env);
    expect(result.code).toBe(1);
    expect(rejectionKeys(result.stderr)).toEqual([
      `${path}:3: source`,
      `${path}:5: source`,
      `${path}:7: source`,
    ]);
    expect(result.stderr).toMatch(
      /crowd\.ndjson:3: source: "c" is a new source and 3 sources exist \(MAX_SOURCES\): not stored/,
    );
    expect(summaryLine(result.stderr)).toMatch(/read 7, inserted 4, updated 0, duplicates 0, rejected 3/);
    expect((await sourcedRows(fixture.db.url)).map((r) => `${r.source} ${r.ms}`)).toEqual([
      `a ${ms(T0)}`,
      `b ${ms(T0)}`,
      `a ${ms(T0 + 60)}`,
      `default ${ms(T0 + 60)}`,
    ]);
    // Known sources are still written to; the limit only refuses new ones.
    const again = await runIngest(fixture.db.url, [path], undefined, env);
    expect(summaryLine(again.stderr)).toMatch(/inserted 0, updated 0, duplicates 4, rejected 3/);
    expect(Object.keys(await sources())).toEqual(['a', 'b', 'default']);
  });
});

describe('ingest: the key is (source, timestamp)', () => {
  it('keeps one sample per source and instant, first or last, whatever name the default source goes by', async () => {
    const records = [
      { timestamp: T0, source: 'a', cpu_load: 1, concurrency: 1 },
      { timestamp: T0, source: 'b', cpu_load: 2, concurrency: 2 },
      { timestamp: T0, cpu_load: 3, concurrency: 3 },
      { timestamp: T0, source: 'a', cpu_load: 4, concurrency: 4 },
      // Source 1 by its name: the same key as the record above without a source.
      { timestamp: T0, source: 'default', cpu_load: 5, concurrency: 5 },
    ];
    const path = await ndjson('keys.ndjson', records);
    const skip = await runIngest(fixture.db.url, ['--json', path]);
    expect(JSON.parse(skip.stdout)).toMatchObject({ inserted: 3, updated: 0, duplicates: 2, rejected: 0 });
    expect((await sourcedRows(fixture.db.url)).map((r) => `${r.source} ${r.cpuLoad}`)).toEqual([
      'a 1',
      'b 2',
      'default 3',
    ]);
    const update = await runIngest(fixture.db.url, ['--json', '--on-conflict', 'update', path]);
    expect(update.code, update.stderr).toBe(0);
    expect(JSON.parse(update.stdout)).toMatchObject({ inserted: 0, updated: 2, duplicates: 3 });
    expect((await sourcedRows(fixture.db.url)).map((r) => `${r.source} ${r.cpuLoad}`)).toEqual([
      'a 4',
      'b 2',
      'default 5',
    ]);
  });
});

describe('ingest: DEFAULT_SOURCE', () => {
  it('names source 1 as DEFAULT_SOURCE says, refuses a name another source has, and renames nothing when unset', async () => {
    const path = await ndjson('plain.ndjson', [{ timestamp: T0, cpu_load: 1, concurrency: 1 }]);
    const named = await runIngest(fixture.db.url, [path], undefined, { DEFAULT_SOURCE: 'edge-1' });
    expect(named.code, named.stderr).toBe(0);
    expect(await sourcedRows(fixture.db.url)).toEqual([
      { source: 'edge-1', ms: ms(T0), cpuLoad: 1, concurrency: 1 },
    ]);
    await runIngest(fixture.db.url, [
      await ndjson('web.ndjson', [{ timestamp: T0, source: 'web-1', cpu_load: 1 }]),
    ]);
    const taken = await runIngest(fixture.db.url, [path], undefined, { DEFAULT_SOURCE: 'web-1' });
    expect(taken.code).toBe(2);
    expect(taken.stderr).toMatch(/DEFAULT_SOURCE=web-1: another source already has that name/);
    // Unset, the command leaves source 1's name as it is: it never renames it back.
    expect((await runIngest(fixture.db.url, [path])).code).toBe(0);
    expect(Object.keys(await sources()).sort()).toEqual(['edge-1', 'web-1']);
  });
});

describe('ingest: rollups of many sources', () => {
  it('match the raw rows after interleaved sources are loaded, then partly updated', async () => {
    const generated = join(fixture.dir.path, 'fleet.ndjson');
    const made = await runScript(
      'scripts/generate-metrics.ts',
      [
        '--sources',
        '12',
        '--rows',
        String(12 * 400),
        '--step',
        '37',
        '--start',
        String(T0 - 3600),
        '--seed',
        '3',
        '--output',
        generated,
      ],
      { env: process.env },
    );
    expect(made.code, made.stderr).toBe(0);
    const loaded = await runIngest(fixture.db.url, ['--batch-size', '700', generated]);
    expect(loaded.code, loaded.stderr).toBe(0);
    expect(Object.keys(await sources())).toHaveLength(13);
    // Some of the same keys again with other values, and a value left out: updates recompute.
    const changed = await ndjson(
      'changed.ndjson',
      Array.from({ length: 30 }, (_, i) => ({
        timestamp: T0 - 3600 + 37 * 13 * i,
        source: `host-${String((i % 12) + 1).padStart(4, '0')}`,
        cpu_load: i % 3 === 0 ? null : i / 7,
        concurrency: i,
      })),
    );
    const updated = await runIngest(fixture.db.url, ['--on-conflict', 'update', changed]);
    expect(updated.code, updated.stderr).toBe(0);
    const rollups = new RollupStore(fixture.db);
    const days = await rollups.rawDays({});
    expect(days.length).toBeGreaterThan(0);
    for (const day of days) expect(await rollups.checkDay(day)).toEqual([]);
  });
});
