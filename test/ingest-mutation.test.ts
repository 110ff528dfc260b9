import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { App } from '../src/http/app.js';
import { createTestApp, graphql } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { storedRows } from './support/ingest.js';

const TOKEN = 'test-ingest-token-0123456789abcdef';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const T0 = 1_795_651_200;

const INGEST = /* GraphQL */ `
  mutation Ingest($samples: [MetricInput!]!, $onConflict: IngestConflictPolicy) {
    ingestMetrics(samples: $samples, onConflict: $onConflict) {
      inserted
      updated
      duplicates
      rejected { index field reason }
    }
  }
`;

interface IngestData {
  ingestMetrics: {
    inserted: number;
    updated: number;
    duplicates: number;
    rejected: { index: number; field: string; reason: string }[];
  };
}

let db: TestDatabase;
let app: App;
beforeAll(async () => {
  db = await createTestDatabase();
  // Batches of 2, so a call of a few samples already spans several statements.
  app = createTestApp(db, { INGEST_TOKEN: TOKEN, INGEST_MAX_SAMPLES: '6', INGEST_BATCH_SIZE: '2' });
});
afterAll(() => db.drop());
beforeEach(async () => {
  await db.prisma.$executeRawUnsafe('TRUNCATE metrics');
});

const sample = (minute: number, cpuLoad = 1, concurrency = 1) => ({
  timestamp: T0 + minute * 60,
  cpuLoad,
  concurrency,
});

describe('Mutation.ingestMetrics: authorization', () => {
  it('is disabled, with a clear error, when no INGEST_TOKEN is configured', async () => {
    const disabled = createTestApp(db);
    const result = await graphql(disabled, INGEST, { samples: [sample(0)] }, AUTH);
    expect(result.data).toBeNull();
    expect(result.errors?.[0]?.extensions?.code).toBe('INGEST_DISABLED');
    expect(result.errors?.[0]?.message).toMatch(/set INGEST_TOKEN/);
    expect(await storedRows(db.url)).toEqual([]);
  });

  it.each([
    ['no Authorization header', {}],
    ['a wrong token', { authorization: 'Bearer not-the-right-token-at-all' }],
    ['a token that is a prefix of the right one', { authorization: `Bearer ${TOKEN.slice(0, -1)}` }],
    ['the right token with another scheme', { authorization: `Basic ${TOKEN}` }],
    ['the scheme alone', { authorization: 'Bearer' }],
  ])('is UNAUTHENTICATED and writes nothing with %s', async (_label, headers) => {
    const result = await graphql(app, INGEST, { samples: [sample(0)] }, headers);
    expect(result.data).toBeNull();
    expect(result.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(await storedRows(db.url)).toEqual([]);
  });

  it('leaves reads public', async () => {
    const result = await graphql(app, '{ metrics(first: 1) { totalCount } }');
    expect(result.errors).toBeUndefined();
    expect(result.data).toEqual({ metrics: { totalCount: 0 } });
  });
});

describe('Mutation.ingestMetrics: the future horizon (MAX_FUTURE)', () => {
  const HOUR = 3_600_000;

  it('refuses each sample more than a day ahead of now, naming the field and the horizon, and stores the rest', async () => {
    const soon = new Date(Date.now() + 23 * HOUR).toISOString();
    const result = await graphql<IngestData>(
      app,
      INGEST,
      {
        samples: [
          sample(0),
          { timestamp: '2036-01-01T00:00:00Z', cpuLoad: 1, concurrency: 1 },
          { timestamp: soon, cpuLoad: 2, concurrency: 2 },
          { timestamp: new Date(Date.now() + 25 * HOUR).toISOString(), cpuLoad: 3, concurrency: 3 },
        ],
      },
      AUTH,
    );
    expect(result.errors).toBeUndefined();
    expect(result.data?.ingestMetrics).toEqual({
      inserted: 2,
      updated: 0,
      duplicates: 0,
      rejected: [
        {
          index: 1,
          field: 'timestamp',
          reason: '2036-01-01T00:00:00.000Z is more than 1d ahead of now (MAX_FUTURE)',
        },
        {
          index: 3,
          field: 'timestamp',
          reason: expect.stringMatching(/is more than 1d ahead of now \(MAX_FUTURE\)$/),
        },
      ],
    });
    expect((await storedRows(db.url)).map((row) => row.ms)).toEqual([T0 * 1000, Date.parse(soon)]);
  });

  it('follows MAX_FUTURE', async () => {
    const samples = [
      { timestamp: new Date(Date.now() + 3 * HOUR).toISOString(), cpuLoad: 1, concurrency: 1 },
    ];
    const strict = createTestApp(db, { INGEST_TOKEN: TOKEN, MAX_FUTURE: '1h30m' });
    const refused = await graphql<IngestData>(strict, INGEST, { samples }, AUTH);
    expect(refused.data?.ingestMetrics).toMatchObject({
      inserted: 0,
      rejected: [
        {
          index: 0,
          field: 'timestamp',
          reason: expect.stringMatching(/ is more than 1h30m ahead of now \(MAX_FUTURE\)$/),
        },
      ],
    });
  });

  it('allows any time with MAX_FUTURE=off', async () => {
    const open = createTestApp(db, { INGEST_TOKEN: TOKEN, MAX_FUTURE: 'off' });
    const far = [{ timestamp: '2036-01-01T00:00:00Z', cpuLoad: 1, concurrency: 1 }];
    const stored = await graphql<IngestData>(open, INGEST, { samples: far }, AUTH);
    expect(stored.data?.ingestMetrics).toMatchObject({ inserted: 1, rejected: [] });
    expect((await storedRows(db.url)).map((row) => row.ms)).toEqual([Date.UTC(2036, 0, 1)]);
  });
});

describe('Mutation.ingestMetrics: with the right token', () => {
  it('stores the valid samples, epoch seconds or ISO-8601, and reports each invalid one by index', async () => {
    const result = await graphql<IngestData>(
      app,
      INGEST,
      {
        samples: [
          sample(0, 0.5, 3),
          { timestamp: '2026-11-26T01:01:00+01:00', cpuLoad: 1.5, concurrency: 4 },
          sample(2, -1, 1),
          sample(3, 1, -2),
          sample(4, 1e39, 1),
          sample(5, 2.25, 5),
        ],
      },
      AUTH,
    );
    expect(result.errors).toBeUndefined();
    expect(result.data?.ingestMetrics).toEqual({
      inserted: 3,
      updated: 0,
      duplicates: 0,
      rejected: [
        { index: 2, field: 'cpuLoad', reason: 'must be >= 0, got -1' },
        { index: 3, field: 'concurrency', reason: 'must be >= 0, got -2' },
        { index: 4, field: 'cpuLoad', reason: expect.stringMatching(/32-bit float/) },
      ],
    });
    expect(await storedRows(db.url)).toEqual([
      { ms: T0 * 1000, cpuLoad: 0.5, concurrency: 3 },
      { ms: (T0 + 60) * 1000, cpuLoad: 1.5, concurrency: 4 },
      { ms: (T0 + 300) * 1000, cpuLoad: 2.25, concurrency: 5 },
    ]);
  });

  it('counts duplicates within a call and across calls; SKIP keeps the first, UPDATE takes the last', async () => {
    const samples = [sample(0, 1), sample(1, 2), sample(0, 9), sample(2, 3), sample(1, 8)];
    const first = await graphql<IngestData>(app, INGEST, { samples }, AUTH);
    expect(first.data?.ingestMetrics).toMatchObject({ inserted: 3, updated: 0, duplicates: 2, rejected: [] });
    expect((await storedRows(db.url)).map((r) => r.cpuLoad)).toEqual([1, 2, 3]);

    const again = await graphql<IngestData>(app, INGEST, { samples }, AUTH);
    expect(again.data?.ingestMetrics).toMatchObject({ inserted: 0, updated: 0, duplicates: 5 });

    const update = await graphql<IngestData>(app, INGEST, { samples, onConflict: 'UPDATE' }, AUTH);
    expect(update.errors).toBeUndefined();
    // A and B change; C is re-sent unchanged, which is a duplicate, not an update.
    expect(update.data?.ingestMetrics).toMatchObject({ inserted: 0, updated: 2, duplicates: 3 });
    expect((await storedRows(db.url)).map((r) => r.cpuLoad)).toEqual([9, 8, 3]);
  });

  it('refuses more samples than INGEST_MAX_SAMPLES and writes none of them', async () => {
    const samples = Array.from({ length: 7 }, (_, i) => sample(i));
    const result = await graphql(app, INGEST, { samples }, AUTH);
    expect(result.data).toBeNull();
    expect(result.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(result.errors?.[0]?.message).toMatch(/samples: at most 6 samples per call, got 7/);
    expect(await storedRows(db.url)).toEqual([]);
  });

  it('refuses a timestamp the DateTime scalar cannot read, before anything is written', async () => {
    const result = await graphql(
      app,
      INGEST,
      { samples: [sample(0), { timestamp: '2026-11-26T00:00:00', cpuLoad: 1, concurrency: 1 }] },
      AUTH,
    );
    expect(result.errors?.[0]?.message).toMatch(/without a UTC offset/);
    expect(await storedRows(db.url)).toEqual([]);
  });
});
