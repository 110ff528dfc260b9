import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  ingestFixture,
  rejectionKeys,
  runIngest,
  spawnIngest,
  storedRows,
  summaryLine,
} from './support/ingest.js';

const fixture = ingestFixture();
beforeEach(async () => {
  await fixture.db.prisma.$executeRawUnsafe('TRUNCATE metrics RESTART IDENTITY');
});

const T0 = 1_795_651_200; // 2026-11-26T00:00:00Z
const SAMPLES = [
  { timestamp: T0, cpu_load: 0.5, concurrency: 3 },
  { timestamp: T0 + 60, cpu_load: 1.25, concurrency: 7 },
  { timestamp: T0 + 120, cpu_load: 0, concurrency: 0 },
];
const EXPECTED = SAMPLES.map((s) => ({
  ms: s.timestamp * 1000,
  cpuLoad: s.cpu_load,
  concurrency: s.concurrency,
}));

/** The samples shifted by `days`, so several files can load in one run without colliding. */
const shifted = (days: number) => SAMPLES.map((s) => ({ ...s, timestamp: s.timestamp + days * 86_400 }));
const expectedFor = (days: number[]) =>
  days.sort((a, b) => a - b).flatMap((d) => EXPECTED.map((e) => ({ ...e, ms: e.ms + d * 86_400_000 })));

const asJson = (days = 0) =>
  `[\n${shifted(days)
    .map((s) => JSON.stringify(s))
    .join(',\n')}\n]\n`;
const asNdjson = (days = 0) =>
  `${shifted(days)
    .map((s) => JSON.stringify(s))
    .join('\n')}\n`;
const asCsv = (days = 0) =>
  `timestamp,cpu_load,concurrency\n${shifted(days)
    .map((s) => `${s.timestamp},${s.cpu_load},${s.concurrency}`)
    .join('\n')}\n`;

async function file(name: string, content: string | Buffer): Promise<string> {
  const path = join(fixture.dir.path, name);
  await writeFile(path, content);
  return path;
}

// Each run of the script costs a process start, so one run loads several files where the
// files' results can still be told apart (each covers its own day).
describe('ingest script: formats', () => {
  it('loads a JSON array, NDJSON, JSON lines and CSV, chosen by extension', async () => {
    const paths = [
      await file('a.json', asJson(0)),
      await file('a.ndjson', asNdjson(1)),
      await file('a.jsonl', asNdjson(2)),
      await file('a.csv', asCsv(3)),
    ];
    const result = await runIngest(fixture.db.url, paths);
    expect(result.stderr).not.toMatch(/: \w+: /);
    expect(result.code).toBe(0);
    expect(summaryLine(result.stderr)).toMatch(/read 12, inserted 12, updated 0, duplicates 0, rejected 0/);
    expect(await storedRows(fixture.db.url)).toEqual(expectedFor([0, 1, 2, 3]));
  });

  it('detects the format from the first character when the extension says nothing (after a byte-order mark), and NDJSON named .json', async () => {
    const paths = [
      await file('array.txt', `\n  ${asJson(0)}`),
      await file('lines.dat', `\uFEFF\n\n${asNdjson(1)}`),
      await file('table', `\uFEFF${asCsv(2)}`),
      await file('lines.json', asNdjson(3)),
    ];
    const result = await runIngest(fixture.db.url, paths);
    expect(result.code).toBe(0);
    expect(await storedRows(fixture.db.url)).toEqual(expectedFor([0, 1, 2, 3]));
  });

  it('--format overrides the extension', async () => {
    const path = await file('mislabelled.json', asCsv());
    const result = await runIngest(fixture.db.url, ['--format', 'csv', path]);
    expect(result.code).toBe(0);
    expect(await storedRows(fixture.db.url)).toEqual(EXPECTED);
  });

  it('reads gzipped JSON, NDJSON and CSV transparently', async () => {
    const paths = [
      await file('b.json.gz', gzipSync(asJson(0))),
      await file('b.ndjson.gz', gzipSync(asNdjson(1))),
      await file('b.csv.gz', gzipSync(asCsv(2))),
    ];
    const result = await runIngest(fixture.db.url, paths);
    expect(result.code).toBe(0);
    expect(await storedRows(fixture.db.url)).toEqual(expectedFor([0, 1, 2]));
  });

  it('reads standard input when no file is given (the real script, end to end)', async () => {
    const result = await spawnIngest(fixture.db.url, [], asNdjson());
    expect(result.code).toBe(0);
    expect(await storedRows(fixture.db.url)).toEqual(EXPECTED);
  });

  it('reads files and gzipped standard input ("-") in one run, detecting the format from the content', async () => {
    const path = await file('first.json', asJson(1));
    const result = await runIngest(fixture.db.url, [path, '-'], gzipSync(asCsv(0)));
    expect(result.code).toBe(0);
    expect(summaryLine(result.stderr)).toMatch(/read 6, inserted 6/);
    expect(await storedRows(fixture.db.url)).toEqual(expectedFor([0, 1]));
  });

  it('accepts ISO-8601 with offsets, fractional epoch seconds, cpuLoad, CSV quoting, and both ends of the range', async () => {
    const mixed = await file(
      'mixed.csv',
      [
        'Timestamp,cpuLoad,concurrency,host',
        '"2026-11-26T01:00:00+01:00","0.5",3,"a,b"',
        '1795651260.25,1.5,4,c',
        '2026-11-26T00:02:00.0005Z, 2.5 ,5,d',
      ].join('\r\n'),
    );
    const edges = await file(
      'edges.ndjson',
      [
        { timestamp: 0, cpu_load: 1, concurrency: 1 },
        { timestamp: '9999-12-31T23:59:59.999Z', cpu_load: 1, concurrency: 1 },
        { timestamp: 253402300799.998, cpu_load: 1, concurrency: 1 },
      ]
        .map((r) => JSON.stringify(r))
        .join('\n'),
    );
    // The far end of the range is past any future horizon: MAX_FUTURE=off admits it.
    const result = await runIngest(fixture.db.url, [mixed, edges], undefined, { MAX_FUTURE: 'off' });
    expect(result.code, result.stderr).toBe(0);
    // Unknown fields are reported once per file, not once per row.
    expect(result.stderr.match(/warning: .*host \(first on line 2\)/g)).toHaveLength(1);
    const one = { cpuLoad: 1, concurrency: 1 };
    expect(await storedRows(fixture.db.url)).toEqual([
      { ms: 0, ...one },
      { ms: T0 * 1000, cpuLoad: 0.5, concurrency: 3 },
      { ms: (T0 + 60) * 1000 + 250, cpuLoad: 1.5, concurrency: 4 },
      { ms: (T0 + 120) * 1000 + 1, cpuLoad: 2.5, concurrency: 5 },
      { ms: 253402300799998, ...one },
      { ms: 253402300799999, ...one },
    ]);
  });
});

describe('ingest script: rejected records', () => {
  // Line by line: what each record is, and the field it must be reported under (if bad).
  const NDJSON_LINES: [unknown, string | null][] = [
    [{ timestamp: T0, cpu_load: 0.5, concurrency: 1 }, null],
    [{ cpu_load: 0.5, concurrency: 1 }, 'timestamp: missing'],
    [{ timestamp: T0 + 1 }, 'cpu_load: missing, and so is concurrency'],
    [{ timestamp: T0 + 2, cpu_load: 0.5 }, null], // one value is a sample
    [
      { timestamp: true, cpu_load: 0.5, concurrency: 1 },
      'timestamp: must be epoch seconds or an ISO-8601 string, got a boolean',
    ],
    [{ timestamp: T0 + 3, cpu_load: 'high', concurrency: 1 }, 'cpu_load: must be a number, got a string'],
    [{ timestamp: T0 + 4, cpu_load: 0.5, concurrency: '1' }, 'concurrency: must be a number, got a string'],
    [{ timestamp: T0 + 5, cpu_load: -0.1, concurrency: 1 }, 'cpu_load: must be >= 0'],
    ['{"timestamp": 1795651206, "cpu_load": 1e999, "concurrency": 1}', 'cpu_load: must be a finite number'],
    [{ timestamp: T0 + 7, cpu_load: 1e39, concurrency: 1 }, 'cpu_load: too large for a 32-bit float'],
    [{ timestamp: T0 + 8, cpu_load: 0.5, concurrency: 1.5 }, 'concurrency: must be an integer'],
    [{ timestamp: T0 + 9, cpu_load: 0.5, concurrency: -1 }, 'concurrency: must be >= 0'],
    [{ timestamp: T0 + 10, cpu_load: 0.5, concurrency: 2_147_483_648 }, 'concurrency: must be <= 2147483647'],
    [{ timestamp: 'yesterday', cpu_load: 0.5, concurrency: 1 }, 'timestamp: unparseable'],
    [
      { timestamp: '2026-11-26T00:00:00', cpu_load: 0.5, concurrency: 1 },
      'timestamp: ISO-8601 timestamp without a UTC offset',
    ],
    [{ timestamp: '2026-02-30T00:00:00Z', cpu_load: 0.5, concurrency: 1 }, 'timestamp: not a valid date'],
    [{ timestamp: -1, cpu_load: 0.5, concurrency: 1 }, 'timestamp: out of range'],
    [
      { timestamp: T0 * 1000, cpu_load: 0.5, concurrency: 1 },
      'timestamp: out of range: must be from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z (this looks like milliseconds',
    ],
    [{ timestamp: '9999-12-31T23:59:59-01:00', cpu_load: 0.5, concurrency: 1 }, 'timestamp: out of range'],
    [
      { timestamp: String(T0), cpu_load: 0.5, concurrency: 1 },
      'timestamp: epoch seconds must be a JSON number',
    ],
    ['{"timestamp": 1795651230, "cpu_load": 0.5, "concurrency": 1', 'record: malformed JSON'],
    ['[1, 2]', 'record: must be a JSON object'],
    ['', null], // blank lines are skipped
    [{ timestamp: T0 + 60, cpu_load: 0.75, concurrency: 2 }, null],
  ];
  const CSV_LINES: [string, string | null][] = [
    ['timestamp,cpu_load,concurrency', null],
    [`${T0 + 86_400},0.5,1`, null],
    [`${T0 + 86_401},0.5`, 'record: expected 3 fields as in the header, got 2'],
    [`${T0 + 86_402},"0.5"x,1`, 'record: malformed CSV: a closing quote must be followed by a comma'],
    [`${T0 + 86_403},"0.5,1`, 'record: malformed CSV: quote not closed'],
    [`${T0 + 86_404},NaN,1`, 'cpu_load: must be a finite number'],
    [`${T0 + 86_405},Infinity,1`, 'cpu_load: must be a finite number'],
    [`${T0 + 86_406},abc,1`, 'cpu_load: must be a number, got "abc"'],
    [`${T0 + 86_407},,`, 'cpu_load: missing, and so is concurrency'],
    [`${T0 + 86_408},0.5,1e400`, 'concurrency: must be an integer'],
    ['not-a-time,0.5,1', 'timestamp: unparseable'],
    // Valid: the unclosed quote four lines up did not swallow it.
    [`${T0 + 86_460},0.25,4`, null],
  ];

  it('reports each bad NDJSON and CSV record at its line with field and reason, and loads the rest', async () => {
    const ndjson = await file(
      'bad.ndjson',
      NDJSON_LINES.map(([l]) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n'),
    );
    const csv = await file('bad.csv', CSV_LINES.map(([l]) => l).join('\n'));
    const result = await runIngest(fixture.db.url, [ndjson, csv]);
    expect(result.code).toBe(1);
    const expected = [
      ...NDJSON_LINES.flatMap(([, problem], i) => (problem ? [`${ndjson}:${i + 1}: ${problem}`] : [])),
      ...CSV_LINES.flatMap(([, problem], i) => (problem ? [`${csv}:${i + 1}: ${problem}`] : [])),
    ];
    const reported = result.stderr.split('\n').filter((line) => /^\/.+:\d+: /.test(line));
    // Each reported line starts with its expected `file:line: field: reason` prefix.
    expect(reported.map((line, k) => line.slice(0, expected[k]?.length))).toEqual(expected);
    expect(summaryLine(result.stderr)).toMatch(/read 34, inserted 5, updated 0, duplicates 0, rejected 29/);
    expect(await storedRows(fixture.db.url)).toEqual([
      { ms: T0 * 1000, cpuLoad: 0.5, concurrency: 1 },
      { ms: (T0 + 2) * 1000, cpuLoad: 0.5, concurrency: null },
      { ms: (T0 + 60) * 1000, cpuLoad: 0.75, concurrency: 2 },
      { ms: (T0 + 86_400) * 1000, cpuLoad: 0.5, concurrency: 1 },
      { ms: (T0 + 86_460) * 1000, cpuLoad: 0.25, concurrency: 4 },
    ]);
  });

  it('reports broken structure (JSON elements, a truncated array, a truncated gzip, a CSV without header) and keeps what came before', async () => {
    const badJson = await file(
      'bad.json',
      [
        '[', // 1
        `  {"timestamp": ${T0}, "cpu_load": 0.5, "concurrency": 1},`, // 2
        '  {"timestamp": 1795651201, "cpu_load": 0.5,', // 3 element spans lines 3-4 ...
        '   "concurrency": 1,},', // 4 ... with a trailing comma inside
        '  {"timestamp": "2026-11-26T00:00:02Z", "cpu_load": -2, "concurrency": 1},', // 5
        '  "just a string",', // 6
        `  {"timestamp": ${T0 + 60}, "cpu_load": 0.25, "concurrency": 2, "note": "a, ] } \\" x"}`, // 7
        ']', // 8
      ].join('\n'),
    );
    const truncatedJson = await file(
      'truncated.json',
      `[\n{"timestamp": ${T0 + 120}, "cpu_load": 0.5, "concurrency": 1},\n{"timestamp": ${T0 + 180}, "cpu_lo`,
    );
    const noHeader = await file('no-header.csv', `${T0 + 240},0.5,1\n${T0 + 300},0.5,1\n`);
    const full = gzipSync(
      Array.from({ length: 5000 }, (_, i) =>
        JSON.stringify({ timestamp: T0 + 86_400 + i, cpu_load: i % 7, concurrency: i }),
      ).join('\n'),
    );
    const cutGzip = await file('cut.ndjson.gz', full.subarray(0, Math.floor(full.length * 0.6)));

    const result = await runIngest(fixture.db.url, [badJson, truncatedJson, noHeader, cutGzip]);
    expect(result.code).toBe(1);
    const keys = rejectionKeys(result.stderr);
    expect(keys.slice(0, 5)).toEqual([
      `${badJson}:3: record`,
      `${badJson}:5: cpu_load`,
      `${badJson}:6: record`,
      `${truncatedJson}:3: record`,
      `${noHeader}:1: header`,
    ]);
    expect(keys[5]).toMatch(new RegExp(`^${cutGzip}:\\d+: file$`));
    expect(keys).toHaveLength(6);
    expect(result.stderr).toMatch(/warning: .*bad\.json: .*note \(first on line 7\)/);
    expect(result.stderr).toMatch(
      /truncated\.json:3: record: unexpected end of input: the JSON array is not closed/,
    );
    expect(result.stderr).toMatch(
      /no-header\.csv:1: header: missing columns timestamp, cpu_load or concurrency/,
    );
    expect(result.stderr).toMatch(/cut\.ndjson\.gz:\d+: file: cannot decompress: unexpected end of file/);
    const stored = await storedRows(fixture.db.url);
    expect(stored.slice(0, 3)).toEqual([
      { ms: T0 * 1000, cpuLoad: 0.5, concurrency: 1 },
      { ms: (T0 + 60) * 1000, cpuLoad: 0.25, concurrency: 2 },
      { ms: (T0 + 120) * 1000, cpuLoad: 0.5, concurrency: 1 },
    ]);
    const fromGzip = stored.length - 3;
    expect(fromGzip).toBeGreaterThan(0);
    expect(fromGzip).toBeLessThan(5000);
  });
});
