import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ConflictMode } from '../src/domain/writes.js';
import { type Format, READERS } from '../src/ingest/inputs.js';
import {
  type IngestOptions,
  type IngestSummary,
  ingestInputs,
  type Rejection,
} from '../src/ingest/pipeline.js';
import type { InputItem } from '../src/ingest/readers.js';
import { MetricStore } from '../src/store/metric-store.js';
import { ingestFixture, sourcedRows, storedRows } from './support/ingest.js';

const fixture = ingestFixture();

const ingestFile = (path: string, options: IngestOptions = {}): Promise<IngestSummary> =>
  ingestInputs(new MetricStore(fixture.db), [{ name: path, path }], options);

const T0 = 1_795_651_200;

type Value = number | string | boolean | null | undefined;
type TestRecord =
  | {
      kind: 'valid';
      ms: number;
      timestamp: Value;
      cpu_load: number | undefined;
      concurrency: number | undefined;
      source: string | undefined;
    }
  | { kind: 'invalid'; timestamp: Value; cpu_load: Value; concurrency: Value; source: Value }
  | { kind: 'malformed' };

// Valid records share a small set of instants and sources, so duplicates are common; some have one
// value only. A timestamp is sent as epoch seconds or as ISO-8601: the same instant either way.
const validRecord: fc.Arbitrary<TestRecord> = fc
  .record({
    minute: fc.integer({ min: 0, max: 30 }),
    iso: fc.boolean(),
    cpu_load: fc.oneof(fc.double({ min: 0, max: 3e38, noNaN: true }), fc.integer({ min: 0, max: 1000 })),
    concurrency: fc.integer({ min: 0, max: 2_147_483_647 }),
    absent: fc.constantFrom(undefined, undefined, 'cpu_load', 'concurrency'),
    source: fc.constantFrom(undefined, 'web-1', 'db-1'),
  })
  .map(({ minute, iso, cpu_load, concurrency, absent, source }) => {
    const ms = (T0 + minute * 60) * 1000;
    return {
      kind: 'valid' as const,
      ms,
      timestamp: iso ? new Date(ms).toISOString() : ms / 1000,
      cpu_load: absent === 'cpu_load' ? undefined : cpu_load,
      concurrency: absent === 'concurrency' ? undefined : concurrency,
      source,
    };
  });

// One field broken, with a value that is wrong in every format; or both values left out.
const BAD_VALUES = {
  timestamp: [-5, 1e15, 'not a time', '2026-11-26T00:00:00', undefined, true],
  cpu_load: [-1, -0.001, 1e39, 'abc'],
  concurrency: [-1, 1.5, 2_147_483_648, 'x'],
  source: ['bell\u0007', 'x'.repeat(257)],
} as const;
const invalidRecord: fc.Arbitrary<TestRecord> = fc.oneof(
  fc
    .tuple(
      validRecord,
      fc.constantFrom('timestamp', 'cpu_load', 'concurrency', 'source') as fc.Arbitrary<
        keyof typeof BAD_VALUES
      >,
    )
    .chain(([base, field]) =>
      fc.constantFrom(...BAD_VALUES[field]).map((bad) => {
        const { ms: _ms, kind: _kind, ...fields } = base as Extract<TestRecord, { kind: 'valid' }>;
        return { ...fields, kind: 'invalid' as const, [field]: bad };
      }),
    ),
  validRecord.map((base): TestRecord => {
    const { ms: _ms, kind: _kind, ...fields } = base as Extract<TestRecord, { kind: 'valid' }>;
    return { ...fields, kind: 'invalid', cpu_load: undefined, concurrency: undefined };
  }),
);
const anyRecord = fc.oneof(
  { weight: 6, arbitrary: validRecord },
  { weight: 3, arbitrary: invalidRecord },
  { weight: 1, arbitrary: fc.constant<TestRecord>({ kind: 'malformed' }) },
);

function fields(record: Exclude<TestRecord, { kind: 'malformed' }>) {
  const out: Record<string, Value> = {};
  for (const key of ['timestamp', 'cpu_load', 'concurrency', 'source'] as const) {
    if (record[key] !== undefined) out[key] = record[key];
  }
  return out;
}

/** The file's text, and the line each record ends up on. */
function serialize(records: TestRecord[], format: Format): { text: string; lines: number[] } {
  if (format === 'csv') {
    const cell = (value: Value) => (value === undefined || value === null ? '' : String(value));
    const rows = records.map((r) =>
      r.kind === 'malformed'
        ? `${T0},"1,1`
        : `${cell(r.timestamp)},${cell(r.cpu_load)},${cell(r.concurrency)},${cell(r.source)}`,
    );
    return {
      text: ['timestamp,cpu_load,concurrency,source', ...rows].join('\n'),
      lines: records.map((_, i) => i + 2),
    };
  }
  const elements = records.map((r) =>
    r.kind === 'malformed'
      ? format === 'json'
        ? '{"timestamp": }'
        : '{"timestamp": '
      : JSON.stringify(fields(r)),
  );
  if (format === 'ndjson') return { text: elements.join('\n'), lines: records.map((_, i) => i + 1) };
  return { text: `[\n${elements.join(',\n')}\n]`, lines: records.map((_, i) => i + 2) };
}

describe('ingest at the edges of real (float4)', () => {
  it('stores values at the limits of float4 without the database refusing them', async () => {
    await fixture.db.prisma.$executeRawUnsafe('TRUNCATE metrics');
    const values = [0, 1e-300, 1e-45, 1.1754943508222875e-38, 0.1, 3.4028235e38];
    const path = join(fixture.dir.path, 'float4.ndjson');
    await writeFile(
      path,
      values.map((cpu_load, i) => JSON.stringify({ timestamp: T0 + i, cpu_load, concurrency: i })).join('\n'),
    );
    const summary = await ingestFile(path);
    expect(summary).toMatchObject({ inserted: values.length, rejected: 0 });
    // 1e-300 is below float4's smallest value: stored as 0, as Math.fround rounds it.
    expect((await storedRows(fixture.db.url)).map((r) => Math.fround(r.cpuLoad ?? Number.NaN))).toEqual(
      values.map((v) => Math.fround(v)),
    );
  });
});

describe('ingest, property-based', () => {
  it('loads exactly the valid records (first or last per instant) and rejects exactly the others, at their lines', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(anyRecord, { maxLength: 60 }),
        fc.constantFrom<Format>('json', 'ndjson', 'csv'),
        fc.constantFrom<ConflictMode>('skip', 'update'),
        fc.integer({ min: 1, max: 25 }),
        async (records, format, onConflict, batchSize) => {
          await fixture.db.prisma.$executeRawUnsafe('TRUNCATE metrics');
          const { text, lines } = serialize(records, format);
          const path = join(fixture.dir.path, `run-${run++}.${format}`);
          await writeFile(path, text);
          const rejected: Rejection[] = [];
          const summary = await ingestFile(path, {
            onConflict,
            batchSize,
            onRejected: (r) => rejected.push(r),
          });

          const expectedRejectedLines = records.flatMap((r, i) => (r.kind === 'valid' ? [] : [lines[i]]));
          expect(rejected.map((r) => r.line)).toEqual(expectedRejectedLines);
          const byKey = new Map<string, Extract<TestRecord, { kind: 'valid' }>>();
          for (const r of records) {
            if (r.kind !== 'valid') continue;
            const key = `${r.source ?? 'default'} ${r.ms}`;
            if (onConflict === 'update' || !byKey.has(key)) byKey.set(key, r);
          }
          const expected = [...byKey.values()]
            .map((r) => ({
              source: r.source ?? 'default',
              ms: r.ms,
              cpuLoad: r.cpu_load === undefined ? null : Math.fround(r.cpu_load),
              concurrency: r.concurrency ?? null,
            }))
            .sort((a, b) => a.ms - b.ms || (a.source < b.source ? -1 : a.source > b.source ? 1 : 0));
          const stored = (await sourcedRows(fixture.db.url)).map((r) => ({
            ...r,
            cpuLoad: r.cpuLoad === null ? null : Math.fround(r.cpuLoad),
          }));
          expect(stored).toEqual(expected);

          const valid = records.filter((r) => r.kind === 'valid').length;
          expect(summary).toMatchObject({
            read: records.length,
            valid,
            rejected: records.length - valid,
            inserted: byKey.size,
          });
          expect(summary.updated + summary.duplicates).toBe(valid - byKey.size);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('readers give the same records and problems however the input is split into chunks', async () => {
    const collect = async (format: Format, chunks: string[]) => {
      const items: InputItem[] = [];
      async function* source() {
        yield* chunks;
      }
      for await (const batch of READERS[format](source())) items.push(...batch);
      return items;
    };
    await fc.assert(
      fc.asyncProperty(
        fc.array(anyRecord, { maxLength: 20 }),
        fc.constantFrom<Format>('json', 'ndjson', 'csv'),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 200 }),
        async (records, format, sizes) => {
          const { text } = serialize(records, format);
          const chunks: string[] = [];
          for (let at = 0, i = 0; at < text.length; i++) {
            const size = sizes[i % sizes.length] as number;
            chunks.push(text.slice(at, at + size));
            at += size;
          }
          expect(await collect(format, chunks)).toEqual(await collect(format, [text]));
        },
      ),
      { numRuns: 200 },
    );
  });
});
