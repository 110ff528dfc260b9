// Mutation.ingestMetrics with sources: source and labels on MetricInput, optional values, a
// refusal per sample naming the field, and MAX_SOURCES as a coded rejection that keeps the rest.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { App } from '../src/http/app.js';
import { createTestApp, graphql } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { sourcedRows } from './support/ingest.js';

const TOKEN = 'test-ingest-token-0123456789abcdef';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const T0 = 1_795_651_200;

const INGEST = /* GraphQL */ `
  mutation Ingest($samples: [MetricInput!]!, $onConflict: IngestConflictPolicy) {
    ingestMetrics(samples: $samples, onConflict: $onConflict) {
      inserted
      updated
      duplicates
      rejected { index field reason code }
    }
  }
`;

interface IngestData {
  ingestMetrics: {
    inserted: number;
    updated: number;
    duplicates: number;
    rejected: { index: number; field: string; reason: string; code: string | null }[];
  };
}

let db: TestDatabase;
let app: App;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.drop());
beforeEach(async () => {
  await db.pool.query('TRUNCATE metrics');
  await db.pool.query('DELETE FROM sources WHERE id <> 1');
  // A new service each time: a service remembers the ids of the sources it met, which are never
  // deleted but here. Source 1 and three more may exist; batches of 2, so one call spans several
  // statements.
  app = createTestApp(db, { INGEST_TOKEN: TOKEN, INGEST_BATCH_SIZE: '2', MAX_SOURCES: '4' });
});

const ingest = async (samples: unknown[], onConflict?: 'SKIP' | 'UPDATE') => {
  const result = await graphql<IngestData>(app, INGEST, { samples, onConflict }, AUTH);
  expect(result.errors).toBeUndefined();
  return (result.data as IngestData).ingestMetrics;
};

describe('Mutation.ingestMetrics with sources', () => {
  it('stores each sample under its source with its labels, a value left out as missing', async () => {
    const result = await ingest([
      {
        timestamp: T0,
        source: 'web-1',
        labels: [
          { name: 'region', value: 'eu' },
          { name: 'k8s.namespace', value: 'shop' },
        ],
        cpuLoad: 0.5,
        concurrency: 3,
      },
      { timestamp: T0, source: 'db-1', concurrency: 7 },
      { timestamp: T0, cpuLoad: 1.5 },
      { timestamp: T0 + 60, source: 'web-1', cpuLoad: 0.75, concurrency: null },
    ]);
    expect(result).toEqual({ inserted: 4, updated: 0, duplicates: 0, rejected: [] });
    expect(await sourcedRows(db.url)).toEqual([
      { source: 'db-1', ms: T0 * 1000, cpuLoad: null, concurrency: 7 },
      { source: 'default', ms: T0 * 1000, cpuLoad: 1.5, concurrency: null },
      { source: 'web-1', ms: T0 * 1000, cpuLoad: 0.5, concurrency: 3 },
      { source: 'web-1', ms: (T0 + 60) * 1000, cpuLoad: 0.75, concurrency: null },
    ]);
    // Read back through the API: the source and its labels.
    const read = await graphql<{ source: { name: string; labels: { name: string; value: string }[] } }>(
      app,
      '{ source(name: "web-1") { name labels { name value } } }',
    );
    expect(read.errors).toBeUndefined();
    expect(read.data?.source.labels).toEqual(
      expect.arrayContaining([
        { name: 'region', value: 'eu' },
        { name: 'k8s.namespace', value: 'shop' },
      ]),
    );
  });

  it('refuses, sample by sample and naming the field, what a sample gets wrong, and stores the rest', async () => {
    const manyLabels = Array.from({ length: 33 }, (_, i) => ({ name: `l${i}`, value: 'x' }));
    const result = await ingest([
      { timestamp: T0, source: 'web-1' },
      { timestamp: T0, labels: [{ name: 'region', value: 'eu' }], cpuLoad: 1 },
      {
        timestamp: T0,
        source: 'web-1',
        labels: [
          { name: 'region', value: 'eu' },
          { name: 'region', value: 'us' },
        ],
        cpuLoad: 1,
      },
      { timestamp: T0, source: 'web-1', labels: manyLabels, cpuLoad: 1 },
      { timestamp: T0, source: 'web-1', labels: [{ name: 'region', value: 'x'.repeat(1025) }], cpuLoad: 1 },
      { timestamp: T0, source: 'web-1', labels: [{ name: '__name__', value: 'x' }], cpuLoad: 1 },
      { timestamp: T0, source: '', cpuLoad: 1 },
      { timestamp: T0, source: 'x'.repeat(257), cpuLoad: 1 },
      { timestamp: T0, source: 'web-1', cpuLoad: -1 },
      { timestamp: T0, source: 'web-1', cpuLoad: 1 },
    ]);
    expect(result.inserted).toBe(2); // the empty source is no source: the default one
    expect(result.rejected).toEqual([
      {
        index: 0,
        field: 'cpuLoad',
        reason: expect.stringMatching(/missing, and so is concurrency/),
        code: null,
      },
      { index: 1, field: 'labels', reason: expect.stringMatching(/given without a source/), code: null },
      { index: 2, field: 'labels', reason: 'label "region" given twice', code: null },
      { index: 3, field: 'labels', reason: 'at most 32 labels, got 33', code: null },
      { index: 4, field: 'labels', reason: expect.stringMatching(/at most 1024 characters/), code: null },
      { index: 5, field: 'labels', reason: 'label name "__name__" is reserved', code: null },
      { index: 7, field: 'source', reason: 'must be at most 256 characters, got 257', code: null },
      { index: 8, field: 'cpuLoad', reason: 'must be >= 0, got -1', code: null },
    ]);
  });

  it('refuses the samples of a new source past MAX_SOURCES with SOURCE_LIMIT_EXCEEDED, and stores the others', async () => {
    const result = await ingest([
      { timestamp: T0, source: 'a', cpuLoad: 1 },
      { timestamp: T0, source: 'b', cpuLoad: 1 },
      { timestamp: T0, source: 'c', cpuLoad: 1 },
      { timestamp: T0, source: 'd', cpuLoad: 1 },
      { timestamp: T0, cpuLoad: 1 },
      { timestamp: T0 + 60, source: 'd', cpuLoad: 1 },
      { timestamp: T0 + 60, source: 'a', cpuLoad: 1 },
    ]);
    expect(result).toEqual({
      inserted: 5,
      updated: 0,
      duplicates: 0,
      rejected: [3, 5].map((index) => ({
        index,
        field: 'source',
        reason: '"d" is a new source and 4 sources exist (MAX_SOURCES): not stored',
        code: 'SOURCE_LIMIT_EXCEEDED',
      })),
    });
    expect(new Set((await sourcedRows(db.url)).map((row) => row.source))).toEqual(
      new Set(['a', 'b', 'c', 'default']),
    );
  });

  it('keeps one sample per source and instant, across the batches of one call', async () => {
    const samples = [
      { timestamp: T0, source: 'a', cpuLoad: 1 },
      { timestamp: T0, source: 'b', cpuLoad: 2 },
      { timestamp: T0, source: 'a', cpuLoad: 3 },
      { timestamp: T0, source: 'default', cpuLoad: 4 },
      { timestamp: T0, cpuLoad: 5 },
    ];
    expect(await ingest(samples)).toMatchObject({ inserted: 3, updated: 0, duplicates: 2 });
    expect(await ingest(samples, 'UPDATE')).toMatchObject({ inserted: 0, updated: 2, duplicates: 3 });
    expect((await sourcedRows(db.url)).map((row) => `${row.source} ${row.cpuLoad}`)).toEqual([
      'a 3',
      'b 2',
      'default 5',
    ]);
  });
});

describe('Mutation.ingestMetrics from many writers at once (group commit)', () => {
  it('answers each call with its own counts and refusals', async () => {
    const calls = Array.from({ length: 120 }, (_, i) => {
      // Calls 0-99: a sample each of one of 3 sources; 100-109 repeat calls 0-9 (duplicates);
      // 110-119 each name a new source, past MAX_SOURCES (source 1 and s0-s2 exist).
      if (i < 100) return [{ timestamp: T0 + Math.floor(i / 3), source: `s${i % 3}`, cpuLoad: i }];
      if (i < 110)
        return [{ timestamp: T0 + Math.floor((i - 100) / 3), source: `s${(i - 100) % 3}`, cpuLoad: 0 }];
      return [
        { timestamp: T0, cpuLoad: 1, concurrency: i },
        { timestamp: T0 + 1000 + i, source: `new-${i}`, cpuLoad: 1 },
      ];
    });
    const results = await Promise.all(calls.map((samples) => ingest(samples)));
    for (let i = 0; i < 100; i++)
      expect(results[i]).toEqual({ inserted: 1, updated: 0, duplicates: 0, rejected: [] });
    for (let i = 100; i < 110; i++)
      expect(results[i]).toEqual({ inserted: 0, updated: 0, duplicates: 1, rejected: [] });
    // Calls 110-119 all write (default, T0): one inserts it, the others count a duplicate; the new
    // source of each is refused, in its own answer.
    const last = results.slice(110);
    expect(last.reduce((sum, r) => sum + (r?.inserted ?? 0), 0)).toBe(1);
    expect(last.reduce((sum, r) => sum + (r?.duplicates ?? 0), 0)).toBe(9);
    const refusals = last.flatMap((r) => r?.rejected ?? []);
    expect(refusals).toHaveLength(10);
    for (const refusal of refusals)
      expect(refusal).toMatchObject({ index: 1, field: 'source', code: 'SOURCE_LIMIT_EXCEEDED' });
    const rows = await sourcedRows(db.url);
    expect(rows).toHaveLength(100 + 1);
    expect(
      rows
        .filter((row) => row.source.startsWith('s'))
        .map((row) => row.cpuLoad)
        .sort((a, b) => (a ?? 0) - (b ?? 0)),
    ).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it('writes the samples of calls that come together in one statement', async () => {
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        ingest([{ timestamp: T0 + i, source: `s${i % 3}`, concurrency: i }]),
      ),
    );
    expect(results.every((result) => result.inserted === 1)).toBe(true);
    // A statement's rows share their (sub)transaction id: fewer of them than calls.
    const { rows } = await db.pool.query<{ statements: number; samples: number }>(
      'SELECT count(DISTINCT xmin::text)::integer AS statements, count(*)::integer AS samples FROM metrics',
    );
    expect(rows[0]?.samples).toBe(100);
    expect(rows[0]?.statements).toBeLessThan(50);
  });
});
