import { describe, expect, it } from 'vitest';
import { checkConcurrency, checkCpuLoad, validateRecord } from '../src/domain/sample.js';
import { MAX_TIMESTAMP_MS, parseIsoTimestamp, parseTimestamp } from '../src/domain/time.js';
import { detectFormat } from '../src/ingest/inputs.js';
import { Batch, dedupe } from '../src/store/sample-batch.js';

const FLOAT4_MAX = 3.4028234663852886e38;

describe('timestamps', () => {
  it.each([
    ['2026-11-26T00:00:00Z', Date.UTC(2026, 10, 26)],
    ['2026-11-26t00:00:00z', Date.UTC(2026, 10, 26)],
    ['2026-11-26 00:00:00Z', Date.UTC(2026, 10, 26)],
    ['2026-11-26T01:00+01:00', Date.UTC(2026, 10, 26)],
    ['2026-11-25T19:00:00-0500', Date.UTC(2026, 10, 26)],
    ['2026-11-26T05:30:00+05', Date.UTC(2026, 10, 26, 0, 30)],
    ['2026-11-26T00:00:00.5Z', Date.UTC(2026, 10, 26) + 500],
    ['2026-11-26T00:00:00,123Z', Date.UTC(2026, 10, 26) + 123],
    ['2026-11-26T00:00:00.0004Z', Date.UTC(2026, 10, 26)],
    ['2026-11-26T00:00:00.0005Z', Date.UTC(2026, 10, 26) + 1],
    ['2026-11-26T23:59:59.9999Z', Date.UTC(2026, 10, 27)],
    ['2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29)],
    ['2000-02-29T00:00:00Z', Date.UTC(2000, 1, 29)],
    ['  2026-11-26T00:00:00Z  ', Date.UTC(2026, 10, 26)],
  ])('parses %s', (text, ms) => {
    expect(parseIsoTimestamp(text)).toEqual({ ms });
  });

  it.each([
    ['2026-11-26T00:00:00', /without a UTC offset/],
    ['2026-11-26', /unparseable/],
    ['2026-13-01T00:00:00Z', /not a valid date/],
    ['2026-02-29T00:00:00Z', /not a valid date/],
    ['1900-02-29T00:00:00Z', /not a valid date/],
    ['2026-04-31T00:00:00Z', /not a valid date/],
    ['2026-11-26T24:00:00Z', /not a valid date/],
    ['2026-11-26T00:60:00Z', /not a valid date/],
    ['2026-11-26T00:00:60Z', /not a valid date/],
    ['2026-11-26T00:00:00+24:00', /not a valid date/],
    ['26/11/2026', /unparseable/],
    ['', /unparseable/],
  ])('refuses %s', (text, reason) => {
    const result = parseIsoTimestamp(text);
    expect('error' in result && result.error).toMatch(reason);
  });

  it('takes numbers as epoch seconds, rounded to the millisecond', () => {
    expect(parseTimestamp(1_795_651_200, false)).toEqual({ ms: 1_795_651_200_000 });
    expect(parseTimestamp(1_795_651_200.0004, false)).toEqual({ ms: 1_795_651_200_000 });
    expect(parseTimestamp(1_795_651_200.0006, false)).toEqual({ ms: 1_795_651_200_001 });
    expect(parseTimestamp(0, false)).toEqual({ ms: 0 });
  });

  it('takes numeric text as epoch seconds in CSV only', () => {
    expect(parseTimestamp('1795651200.5', true)).toEqual({ ms: 1_795_651_200_500 });
    expect(parseTimestamp('1795651200.5', false)).toEqual({
      error: expect.stringMatching(/must be a JSON number/),
    });
  });

  it('accepts 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z, and nothing outside', () => {
    expect(parseTimestamp('1970-01-01T00:00:00Z', false)).toEqual({ ms: 0 });
    expect(parseTimestamp('9999-12-31T23:59:59.999Z', false)).toEqual({ ms: MAX_TIMESTAMP_MS });
    expect(parseTimestamp(-0.001, false)).toMatchObject({ error: expect.stringMatching(/out of range/) });
    expect(parseTimestamp('1969-12-31T23:59:59.999Z', false)).toMatchObject({
      error: expect.stringMatching(/out of range/),
    });
    expect(parseTimestamp('1970-01-01T00:30:00+01:00', false)).toMatchObject({
      error: expect.stringMatching(/out of range/),
    });
    expect(parseTimestamp(MAX_TIMESTAMP_MS / 1000 + 0.001, false)).toMatchObject({
      error: expect.stringMatching(/out of range/),
    });
    expect(parseTimestamp(1_795_651_200_000, false)).toMatchObject({
      error: expect.stringMatching(/milliseconds/),
    });
  });

  it('refuses other types', () => {
    for (const value of [null, true, {}, [], Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(parseTimestamp(value, false)).toHaveProperty('error');
    }
  });
});

describe('cpu_load and concurrency', () => {
  it('cpu_load: finite, >= 0, and within float4 (the column is real)', () => {
    for (const ok of [0, 0.5, 1e-45, 1e-300, FLOAT4_MAX, 3.4028235e38]) expect(checkCpuLoad(ok)).toBeNull();
    expect(checkCpuLoad(-0.0001)).toMatch(/>= 0/);
    expect(checkCpuLoad(Number.NaN)).toMatch(/finite/);
    expect(checkCpuLoad(Number.POSITIVE_INFINITY)).toMatch(/finite/);
    expect(checkCpuLoad(3.4028236e38)).toMatch(/32-bit float/);
    expect(checkCpuLoad(1e39)).toMatch(/32-bit float/);
  });

  it('concurrency: an integer from 0 to 2147483647', () => {
    for (const ok of [0, 1, 2_147_483_647]) expect(checkConcurrency(ok)).toBeNull();
    expect(checkConcurrency(-1)).toMatch(/>= 0/);
    expect(checkConcurrency(0.5)).toMatch(/integer/);
    expect(checkConcurrency(2_147_483_648)).toMatch(/<= 2147483647/);
    expect(checkConcurrency(Number.NaN)).toMatch(/integer/);
  });
});

describe('records', () => {
  it('accepts cpu_load or cpuLoad, but not both', () => {
    expect(validateRecord({ timestamp: 0, cpuLoad: 1, concurrency: 1 })).toEqual({
      ok: true,
      sample: { timestampMs: 0, cpuLoad: 1, concurrency: 1 },
    });
    expect(validateRecord({ timestamp: 0, cpu_load: 1, cpuLoad: 1, concurrency: 1 })).toEqual({
      ok: false,
      problem: { field: 'cpu_load', reason: expect.stringMatching(/both/) },
    });
  });

  it('reports a problem under the name the record used', () => {
    expect(validateRecord({ timestamp: 0, cpuLoad: -1, concurrency: 1 })).toMatchObject({
      problem: { field: 'cpuLoad' },
    });
  });

  it('reads CSV cells as numbers, with surrounding spaces, exponents and signs', () => {
    expect(validateRecord({ timestamp: ' 10 ', cpu_load: '+1.5e1', concurrency: '3' }, true)).toEqual({
      ok: true,
      sample: { timestampMs: 10_000, cpuLoad: 15, concurrency: 3 },
    });
    expect(validateRecord({ timestamp: '10', cpu_load: '0x10', concurrency: '3' }, true)).toMatchObject({
      problem: { field: 'cpu_load' },
    });
    expect(validateRecord({ timestamp: '10', cpu_load: '1', concurrency: '' }, true)).toEqual({
      ok: true,
      sample: { timestampMs: 10_000, cpuLoad: 1, concurrency: null },
    });
  });

  it('takes a sample of one value, and refuses one of neither, naming both fields', () => {
    expect(validateRecord({ timestamp: 0, concurrency: 3 })).toEqual({
      ok: true,
      sample: { timestampMs: 0, cpuLoad: null, concurrency: 3 },
    });
    expect(validateRecord({ timestamp: 0, cpu_load: 0.5, concurrency: null })).toEqual({
      ok: true,
      sample: { timestampMs: 0, cpuLoad: 0.5, concurrency: null },
    });
    expect(validateRecord({ timestamp: 0, cpu_load: null })).toEqual({
      ok: false,
      problem: { field: 'cpu_load', reason: expect.stringMatching(/missing, and so is concurrency/) },
    });
  });
});

describe('format detection', () => {
  it.each([
    ['a.json', '[', 'json'],
    ['a.json', '{', 'ndjson'],
    ['a.JSON.GZ', '[', 'json'],
    ['a.ndjson', '{', 'ndjson'],
    ['a.jsonl.gz', '{', 'ndjson'],
    ['a.csv', 't', 'csv'],
    ['a.csv', '[', 'csv'],
    ['<stdin>', '[', 'json'],
    ['<stdin>', '{', 'ndjson'],
    ['<stdin>', 't', 'csv'],
    ['<stdin>', undefined, 'csv'],
  ] as const)('%s starting with %s is %s', (name, first, format) => {
    expect(detectFormat(name, first)).toBe(format);
  });
});

describe('dedupe within a batch', () => {
  /** Every row of these batches is of the default source: no source of the batch's own to resolve. */
  const NO_SOURCES = new Int32Array(0);
  const batch = () =>
    Batch.of([
      { timestampMs: 2, cpuLoad: 1, concurrency: 1 },
      { timestampMs: 1, cpuLoad: 2, concurrency: 2 },
      { timestampMs: 2, cpuLoad: 3, concurrency: 3 },
    ]);
  const rows = (b: Batch) =>
    Array.from({ length: b.length }, (_, i) => [b.timestamps[i], b.loads[i], b.concurrencies[i]]);

  it('keeps the first per timestamp for skip and the last for update', () => {
    expect(rows(dedupe(batch(), 'skip', NO_SOURCES))).toEqual([
      [2, 1, 1],
      [1, 2, 2],
    ]);
    expect(rows(dedupe(batch(), 'update', NO_SOURCES))).toEqual([
      [2, 3, 3],
      [1, 2, 2],
    ]);
  });

  it('goes by source id: two names of one source are one key, and a refused source is left out', () => {
    const sourced = () => {
      const b = new Batch(5);
      const [a, named, c] = [b.source('a'), b.source('default'), b.source('c')];
      b.push(1, 1, 1, a);
      b.push(1, 2, 2); // the default source, unnamed
      b.push(1, 3, 3, named); // the default source by name: the same key
      b.push(1, 4, 4, c);
      b.push(2, 5, 5, a);
      return b;
    };
    const ids = Int32Array.of(7, 1, 0); // a is 7, "default" is 1, c was refused
    const keyed = (b: Batch) => rows(b).map((row, i) => [b.sourceIds[i], ...row]);
    expect(keyed(dedupe(sourced(), 'skip', ids))).toEqual([
      [7, 1, 1, 1],
      [1, 1, 2, 2],
      [7, 2, 5, 5],
    ]);
    expect(keyed(dedupe(sourced(), 'update', ids))).toEqual([
      [7, 1, 1, 1],
      [1, 1, 3, 3],
      [7, 2, 5, 5],
    ]);
  });

  it('returns a batch increasing by time, then source, as it is', () => {
    const interleaved = new Batch(4);
    const [a, b] = [interleaved.source('a'), interleaved.source('b')];
    for (const ms of [1, 2]) for (const source of [a, b]) interleaved.push(ms, 1, 1, source);
    expect(dedupe(interleaved, 'update', Int32Array.of(2, 3))).toBe(interleaved);
  });

  it('returns an increasing batch as it is', () => {
    const increasing = Batch.of([
      { timestampMs: 1, cpuLoad: 1, concurrency: 1 },
      { timestampMs: 2, cpuLoad: 1, concurrency: 1 },
    ]);
    expect(dedupe(increasing, 'skip', NO_SOURCES)).toBe(increasing);
  });
});
