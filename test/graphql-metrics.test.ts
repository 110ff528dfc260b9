import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../src/http/app.js';
import { createTestApp, graphql } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

// 2,503 samples a minute apart from T0, some with milliseconds, so page sizes never divide evenly.
const T0 = Date.UTC(2026, 0, 1);
const ROWS = 2503;
const sample = (i: number) => ({
  timestamp: new Date(T0 + i * 60_000 + (i % 7 === 0 ? 123 : 0)),
  // Values exactly representable as float4, so expected aggregates need no rounding slack.
  cpuLoad: ((i * 37) % 400) / 16,
  concurrency: (i * 13) % 97,
});
const samples = Array.from({ length: ROWS }, (_, i) => sample(i));
const iso = (ms: number) => new Date(ms).toISOString();

let db: TestDatabase;
let app: App;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.prisma.metric.createMany({ data: samples });
  app = createTestApp(db);
});
afterAll(() => db.drop());

interface PageResult {
  metrics: {
    totalCount?: number;
    edges: { cursor: string; node: { timestamp: string; cpuLoad: number; concurrency: number } }[];
    pageInfo: {
      hasNextPage: boolean;
      hasPreviousPage: boolean;
      startCursor: string | null;
      endCursor: string | null;
    };
  };
}

const PAGE = `
  query Page($first: Int, $after: String, $last: Int, $before: String, $start: DateTime, $end: DateTime, $order: SortOrder! = ASC) {
    metrics(first: $first, after: $after, last: $last, before: $before, start: $start, end: $end, order: $order) {
      edges { cursor node { timestamp cpuLoad concurrency } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }`;

async function page(variables: Record<string, unknown>) {
  const result = await graphql<PageResult>(app, PAGE, variables);
  expect(result.errors).toBeUndefined();
  return result.data?.metrics as PageResult['metrics'];
}

async function pageForward(pageSize: number, extra: Record<string, unknown> = {}) {
  const seen: string[] = [];
  let after: string | null = null;
  for (let pages = 0; pages < 10_000; pages++) {
    const { edges, pageInfo } = await page({ first: pageSize, after, ...extra });
    seen.push(...edges.map((edge) => edge.node.timestamp));
    if (!pageInfo.hasNextPage) return seen;
    after = pageInfo.endCursor;
  }
  throw new Error('paging did not end');
}

async function pageBackward(pageSize: number, extra: Record<string, unknown> = {}) {
  const seen: string[] = [];
  let before: string | null = null;
  for (let pages = 0; pages < 10_000; pages++) {
    const { edges, pageInfo } = await page({ last: pageSize, before, ...extra });
    seen.unshift(...edges.map((edge) => edge.node.timestamp));
    if (!pageInfo.hasPreviousPage) return seen;
    before = pageInfo.startCursor;
  }
  throw new Error('paging did not end');
}

const allTimestamps = samples.map((s) => s.timestamp.toISOString());

describe('metrics connection: pagination', () => {
  it('returns the default page of 100, oldest first, with Metric fields', async () => {
    const result = await graphql<{
      metrics: {
        edges: {
          node: { id: string; timestamp: string; unixTime: number; cpuLoad: number; concurrency: number };
        }[];
      };
    }>(app, '{ metrics { edges { node { id timestamp unixTime cpuLoad concurrency } } } }');
    const nodes = result.data?.metrics.edges.map((edge) => edge.node) ?? [];
    expect(nodes).toHaveLength(100);
    const first = samples[0] as (typeof samples)[number];
    expect(nodes[0]).toMatchObject({
      timestamp: first.timestamp.toISOString(),
      unixTime: first.timestamp.getTime() / 1000,
      cpuLoad: first.cpuLoad,
      concurrency: first.concurrency,
    });
    expect(nodes[7]?.timestamp).toMatch(/\.123Z$/);
    expect(nodes[7]?.unixTime).toBe((samples[7] as (typeof samples)[number]).timestamp.getTime() / 1000);
  });

  it.each([7, 333, 1000])(
    'visits every row exactly once, in order, paging forward %i at a time',
    async (size) => {
      expect(await pageForward(size)).toEqual(allTimestamps);
    },
  );

  it('visits every row of a window exactly once paging forward 1 at a time', async () => {
    const window = { start: allTimestamps[1000], end: allTimestamps[1150] };
    expect(await pageForward(1, window)).toEqual(allTimestamps.slice(1000, 1150));
  });

  it.each([9, 250])('visits every row exactly once paging backward %i at a time', async (size) => {
    expect(await pageBackward(size)).toEqual(allTimestamps);
  });

  it('pages newest first with order: DESC, forward and backward', async () => {
    const reversed = [...allTimestamps].reverse();
    expect(await pageForward(401, { order: 'DESC' })).toEqual(reversed);
    expect(await pageBackward(77, { order: 'DESC' })).toEqual(reversed);
  });

  it('reports page boundaries', async () => {
    const firstPage = await page({ first: 10 });
    expect(firstPage.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: false });
    expect(firstPage.pageInfo.startCursor).toBe(firstPage.edges[0]?.cursor);
    expect(firstPage.pageInfo.endCursor).toBe(firstPage.edges[9]?.cursor);
    const second = await page({ first: 10, after: firstPage.pageInfo.endCursor });
    expect(second.pageInfo.hasPreviousPage).toBe(true);
    expect(second.edges[0]?.node.timestamp).toBe(allTimestamps[10]);
    const lastPage = await page({ last: 3 });
    expect(lastPage.edges.map((edge) => edge.node.timestamp)).toEqual(allTimestamps.slice(-3));
    expect(lastPage.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: true });
    const empty = await page({ first: 0 });
    expect(empty.edges).toEqual([]);
    expect(empty.pageInfo).toMatchObject({ hasNextPage: true, startCursor: null, endCursor: null });
  });

  it('combines after and before into a range', async () => {
    const anchors = await page({ first: 21 });
    const after = anchors.edges[4]?.cursor;
    const before = anchors.edges[20]?.cursor;
    const between = await page({ first: 100, after, before });
    expect(between.edges.map((edge) => edge.node.timestamp)).toEqual(allTimestamps.slice(5, 20));
    expect(between.pageInfo.hasNextPage).toBe(false);
  });

  it('visits every pre-existing row exactly once while rows are being inserted', async () => {
    const writer = await createTestDatabase();
    try {
      const base = Date.UTC(2027, 0, 1);
      await writer.prisma.metric.createMany({
        data: Array.from({ length: 600 }, (_, i) => ({
          timestamp: new Date(base + i * 2000),
          cpuLoad: 1,
          concurrency: 1,
        })),
      });
      const writerApp = createTestApp(writer);
      const seen: string[] = [];
      let after: string | null = null;
      let inserted = 0;
      for (;;) {
        const result: { data?: PageResult | null } = await graphql<PageResult>(writerApp, PAGE, {
          first: 37,
          after,
        });
        const metrics = result.data?.metrics as PageResult['metrics'];
        seen.push(...metrics.edges.map((edge) => edge.node.timestamp));
        // Between pages, new samples land both behind the cursor (odd seconds) and ahead of it.
        await writer.prisma.metric.createMany({
          data: [0, 1].map((k) => ({
            timestamp: new Date(base + (inserted * 2 + k) * 1000 + 1),
            cpuLoad: 2,
            concurrency: 2,
          })),
        });
        inserted++;
        if (!metrics.pageInfo.hasNextPage) break;
        after = metrics.pageInfo.endCursor;
      }
      expect(new Set(seen).size).toBe(seen.length);
      expect([...seen].sort()).toEqual(seen);
      const original = Array.from({ length: 600 }, (_, i) => iso(base + i * 2000));
      expect(original.every((timestamp) => seen.includes(timestamp))).toBe(true);
    } finally {
      await writer.drop();
    }
  });
});

describe('metrics connection: time filters', () => {
  const at = (i: number) => (samples[i] as (typeof samples)[number]).timestamp;

  it('treats start as inclusive and end as exclusive', async () => {
    const { edges } = await page({ first: 1000, start: at(10).toISOString(), end: at(20).toISOString() });
    expect(edges.map((edge) => edge.node.timestamp)).toEqual(allTimestamps.slice(10, 20));
  });

  it('lets adjacent windows tile without overlap or gap', async () => {
    const windows = [0, 500, 1234, 2000, ROWS];
    const tiled: string[] = [];
    for (let w = 0; w + 1 < windows.length; w++) {
      const start = at(windows[w] as number).toISOString();
      const end = windows[w + 1] === ROWS ? undefined : at(windows[w + 1] as number).toISOString();
      tiled.push(...(await pageForward(1000, { start, end })));
    }
    expect(tiled).toEqual(allTimestamps);
  });

  it('accepts start alone and end alone', async () => {
    expect(await pageForward(1000, { start: at(2400).toISOString() })).toEqual(allTimestamps.slice(2400));
    expect(await pageForward(1000, { end: at(30).toISOString() })).toEqual(allTimestamps.slice(0, 30));
  });

  it('accepts epoch seconds, fractional epoch seconds and ISO-8601 with any offset as the same instant', async () => {
    const instant = at(7); // has .123 ms
    const forms = [
      instant.getTime() / 1000,
      instant.toISOString(),
      iso(instant.getTime()).replace('Z', '+00:00'),
      new Date(instant.getTime()).toISOString().replace('T00:07', 'T02:07').replace('Z', '+02:00'),
    ];
    for (const start of forms) {
      const { edges } = await page({ first: 2, start });
      expect(edges[0]?.node.timestamp, `start: ${start}`).toBe(instant.toISOString());
    }
    const literal = await graphql<PageResult>(
      app,
      `{ metrics(first: 1, start: ${at(3).getTime() / 1000}) { edges { node { timestamp } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`,
    );
    expect(literal.data?.metrics.edges[0]?.node.timestamp).toBe(at(3).toISOString());
  });

  it('returns empty pages for empty windows', async () => {
    for (const window of [
      { start: iso(T0 - 10_000), end: iso(T0) },
      { start: at(5).toISOString(), end: at(5).toISOString() },
      { start: iso(T0 + ROWS * 60_000 + 1000) },
    ]) {
      const result = await page({ first: 10, ...window });
      expect(result.edges).toEqual([]);
      expect(result.pageInfo.hasNextPage).toBe(false);
    }
  });

  it('counts totalCount within the filters only when asked', async () => {
    const query = `query ($start: DateTime, $end: DateTime) { metrics(first: 1, start: $start, end: $end) { totalCount } }`;
    const all = await graphql<PageResult>(app, query);
    expect(all.data?.metrics.totalCount).toBe(ROWS);
    const window = await graphql<PageResult>(app, query, {
      start: at(100).toISOString(),
      end: at(150).toISOString(),
    });
    expect(window.data?.metrics.totalCount).toBe(50);
  });
});

describe('metrics connection: bad input', () => {
  const cases: [string, string, Record<string, unknown>, RegExp][] = [
    ['first and last together', PAGE, { first: 1, last: 1 }, /first: cannot be combined with last/],
    ['a negative first', PAGE, { first: -1 }, /first: must not be negative/],
    ['a negative last', PAGE, { last: -5 }, /last: must not be negative/],
    ['first over the maximum', PAGE, { first: 1001 }, /first: must be at most 1000/],
    ['last over the maximum', PAGE, { last: 5000 }, /last: must be at most 1000/],
    ['a malformed after cursor', PAGE, { first: 1, after: 'not-a-cursor!' }, /after: is not a cursor/],
    [
      'a foreign base64 before cursor',
      PAGE,
      { last: 1, before: Buffer.from('arrayconnection:5').toString('base64') },
      /before: is not a cursor/,
    ],
    ['start after end', PAGE, { start: iso(T0 + 1000), end: iso(T0) }, /start: must not be after end/],
    ['a date-time without offset', PAGE, { start: '2026-01-01T00:00:00' }, /without a UTC offset/],
    ['a date-only string', PAGE, { end: '2026-01-01' }, /expected epoch seconds or ISO-8601 with offset/],
    ['an impossible date', PAGE, { end: '2026-02-30T00:00:00Z' }, /not a valid date and time/],
    ['a boolean date-time', PAGE, { start: true }, /must be epoch seconds or an ISO-8601 string/],
    ['an epoch before 1970', PAGE, { start: -1 }, /out of range/],
    ['epoch milliseconds sent as seconds', PAGE, { start: 1_767_225_600_000 }, /looks like milliseconds/],
    ['a node id that is not a global id', '{ node(id: "zzz") { id } }', {}, /global ID/i],
  ];

  it.each(cases)('rejects %s with BAD_USER_INPUT', async (_label, query, variables, message) => {
    const result = await graphql(app, query, variables);
    expect(result.status).toBeLessThan(500);
    expect(result.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(result.errors?.[0]?.message).toMatch(message);
  });

  it('rejects a date-time literal in the query document with BAD_USER_INPUT', async () => {
    const result = await graphql(app, '{ metrics(start: "yesterday") { edges { cursor } } }');
    expect(result.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('honours a configured maximum page size', async () => {
    const small = createTestApp(db, { MAX_PAGE_SIZE: '50', DEFAULT_PAGE_SIZE: '20' });
    const tooBig = await graphql(small, PAGE, { first: 51 });
    expect(tooBig.errors?.[0]?.message).toMatch(/at most 50/);
    const byDefault = await graphql<PageResult>(small, PAGE);
    expect(byDefault.data?.metrics.edges).toHaveLength(20);
  });
});

describe('node', () => {
  it('resolves a Metric by its global id, and an unknown id to null', async () => {
    const listed = await graphql<{ metrics: { edges: { node: { id: string; timestamp: string } }[] } }>(
      app,
      '{ metrics(first: 1, start: 3600) { edges { node { id timestamp } } } }',
    );
    const node = listed.data?.metrics.edges[0]?.node;
    expect(node).toBeDefined();
    const found = await graphql<{ node: { id: string; timestamp: string } | null }>(
      app,
      'query ($id: ID!) { node(id: $id) { id ... on Metric { timestamp } } }',
      { id: node?.id },
    );
    expect(found.data?.node).toEqual(node);
    const missing = await graphql<{ node: null }>(app, 'query ($id: ID!) { node(id: $id) { id } }', {
      id: Buffer.from('Metric:999999999').toString('base64'),
    });
    expect(missing.errors).toBeUndefined();
    expect(missing.data?.node).toBeNull();
  });
});

/** Linear-interpolation percentile, the definition of Postgres' percentile_cont. */
function percentile(sorted: number[], fraction: number): number {
  const position = fraction * (sorted.length - 1);
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  const low = sorted[lower] as number;
  return low + ((sorted[upper] as number) - low) * (position - lower);
}
const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
// cpu_load aggregates come back at float4 precision: compare to 6 significant digits.
const closeToFloat4 = (actual: number | null | undefined, expected: number) =>
  expect(Math.abs((actual as number) - expected)).toBeLessThanOrEqual(Math.abs(expected) * 1e-6 + 1e-6);

describe('metricsSummary', () => {
  const SUMMARY = `query ($start: DateTime, $end: DateTime) {
    metricsSummary(start: $start, end: $end) {
      count firstTimestamp lastTimestamp
      cpuLoad { min max avg p50 p95 p99 }
      concurrency { min max avg p95 }
    }
  }`;
  type Summary = {
    metricsSummary: {
      count: number;
      firstTimestamp: string | null;
      lastTimestamp: string | null;
      cpuLoad: Record<'min' | 'max' | 'avg' | 'p50' | 'p95' | 'p99', number | null>;
      concurrency: Record<'min' | 'max' | 'avg' | 'p95', number | null>;
    };
  };

  it.each([
    ['the whole table', 0, ROWS],
    ['a window', 100, 1100],
    ['a single sample', 42, 43],
  ])('matches values computed independently over %s', async (_label, from, to) => {
    const window = samples.slice(from, to);
    const variables = {
      start: (samples[from] as (typeof samples)[number]).timestamp.toISOString(),
      end: to < ROWS ? (samples[to] as (typeof samples)[number]).timestamp.toISOString() : undefined,
    };
    const result = await graphql<Summary>(app, SUMMARY, variables);
    expect(result.errors).toBeUndefined();
    const summary = result.data?.metricsSummary as Summary['metricsSummary'];
    const loads = window.map((s) => s.cpuLoad).sort((a, b) => a - b);
    const concurrency = window.map((s) => s.concurrency).sort((a, b) => a - b);
    expect(summary.count).toBe(window.length);
    expect(summary.firstTimestamp).toBe(window[0]?.timestamp.toISOString());
    expect(summary.lastTimestamp).toBe(window.at(-1)?.timestamp.toISOString());
    expect(summary.cpuLoad.min).toBe(loads[0]);
    expect(summary.cpuLoad.max).toBe(loads.at(-1));
    closeToFloat4(summary.cpuLoad.avg, mean(loads));
    closeToFloat4(summary.cpuLoad.p50, percentile(loads, 0.5));
    closeToFloat4(summary.cpuLoad.p95, percentile(loads, 0.95));
    closeToFloat4(summary.cpuLoad.p99, percentile(loads, 0.99));
    expect(summary.concurrency.min).toBe(concurrency[0]);
    expect(summary.concurrency.max).toBe(concurrency.at(-1));
    expect(summary.concurrency.avg).toBeCloseTo(mean(concurrency), 9);
    expect(summary.concurrency.p95).toBeCloseTo(percentile(concurrency, 0.95), 9);
  });

  it('returns a zero count and nulls for an empty window', async () => {
    const result = await graphql<Summary>(app, SUMMARY, { start: iso(T0 - 5000), end: iso(T0 - 1000) });
    expect(result.data?.metricsSummary).toEqual({
      count: 0,
      firstTimestamp: null,
      lastTimestamp: null,
      cpuLoad: { min: null, max: null, avg: null, p50: null, p95: null, p99: null },
      concurrency: { min: null, max: null, avg: null, p95: null },
    });
  });

  it('rejects start after end with BAD_USER_INPUT', async () => {
    const result = await graphql(app, SUMMARY, { start: iso(T0 + 1), end: iso(T0) });
    expect(result.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});

describe('metricSeries', () => {
  const SERIES = `query ($start: DateTime!, $end: DateTime!, $bucket: Duration!) {
    metricSeries(start: $start, end: $end, bucket: $bucket) {
      start count cpuLoad { min max avg } concurrency { min max avg }
    }
  }`;
  type Bucket = {
    start: string;
    count: number;
    cpuLoad: { min: number; max: number; avg: number };
    concurrency: { min: number; max: number; avg: number };
  };

  function expectedBuckets(startMs: number, endMs: number, bucketSeconds: number) {
    const groups = new Map<number, typeof samples>();
    for (const s of samples) {
      const t = s.timestamp.getTime();
      if (t < startMs || t >= endMs) continue;
      const key = Math.floor(t / (bucketSeconds * 1000)) * bucketSeconds * 1000;
      groups.set(key, [...(groups.get(key) ?? []), s]);
    }
    return [...groups.entries()]
      .sort(([a], [b]) => a - b)
      .map(([key, group]) => ({ start: iso(key), group }));
  }

  it.each([
    ['15m', 900, T0 + 7 * 60_000, T0 + 20 * 3_600_000],
    ['1h', 3600, T0, T0 + ROWS * 60_000],
    [3600 * 24, 86_400, T0 - 86_400_000, T0 + 10 * 86_400_000],
    ['7m', 420, T0 + 61_000, T0 + 5 * 3_600_000 + 17_000],
  ])(
    'buckets by %s aligned to the epoch, matching an independent computation',
    async (bucket, seconds, startMs, endMs) => {
      const result = await graphql<{ metricSeries: Bucket[] }>(app, SERIES, {
        start: iso(startMs),
        end: iso(endMs),
        bucket,
      });
      expect(result.errors).toBeUndefined();
      const expected = expectedBuckets(startMs, endMs, seconds);
      const actual = result.data?.metricSeries ?? [];
      expect(actual.map((b) => b.start)).toEqual(expected.map((b) => b.start));
      actual.forEach((bucketResult, index) => {
        const group = (expected[index] as (typeof expected)[number]).group;
        const loads = group.map((s) => s.cpuLoad);
        const concurrency = group.map((s) => s.concurrency);
        expect(bucketResult.count).toBe(group.length);
        expect(bucketResult.cpuLoad.min).toBe(Math.min(...loads));
        expect(bucketResult.cpuLoad.max).toBe(Math.max(...loads));
        closeToFloat4(bucketResult.cpuLoad.avg, mean(loads));
        expect(bucketResult.concurrency.min).toBe(Math.min(...concurrency));
        expect(bucketResult.concurrency.max).toBe(Math.max(...concurrency));
        expect(bucketResult.concurrency.avg).toBeCloseTo(mean(concurrency), 9);
      });
    },
  );

  it('omits empty buckets', async () => {
    const result = await graphql<{ metricSeries: Bucket[] }>(app, SERIES, {
      start: iso(T0 - 3 * 3_600_000),
      end: iso(T0 + 2 * 3_600_000),
      bucket: '1h',
    });
    expect(result.data?.metricSeries.map((b) => b.start)).toEqual([iso(T0), iso(T0 + 3_600_000)]);
  });

  it.each([
    ['a malformed duration', { bucket: '5 minutes' }, /Duration/],
    ['a zero duration', { bucket: 0 }, /Duration/],
    ['a fractional duration', { bucket: 1.5 }, /Duration/],
    [
      'more than 10,000 buckets',
      { bucket: '1s', end: iso(T0 + 10_001_000) },
      /spans 10001 buckets; the limit is 10000/,
    ],
    ['start after end', { start: iso(T0 + 1000), end: iso(T0) }, /start: must not be after end/],
  ])('rejects %s with BAD_USER_INPUT', async (_label, overrides, message) => {
    const result = await graphql(app, SERIES, {
      start: iso(T0),
      end: iso(T0 + 3_600_000),
      bucket: '1m',
      ...overrides,
    });
    expect(result.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(result.errors?.[0]?.message).toMatch(message);
  });

  it('defaults a missing end to now and a missing start to MAX_SERIES_BUCKETS buckets before the end', async () => {
    const OPEN = `query ($start: DateTime, $end: DateTime, $bucket: Duration!) {
      metricSeries(start: $start, end: $end, bucket: $bucket) { start count }
    }`;
    const all = await graphql<{ metricSeries: Bucket[] }>(app, OPEN, {
      start: iso(T0),
      end: iso(Date.now() + 3_600_000),
      bucket: '1h',
    });
    expect(all.errors).toBeUndefined();
    expect(all.data?.metricSeries.length).toBeGreaterThan(0);
    // Each bound left out: the samples (all in the past, within 10,000 hours) are the same.
    for (const bounds of [{ start: iso(T0) }, { end: iso(Date.now() + 3_600_000) }, {}]) {
      const open = await graphql<{ metricSeries: Bucket[] }>(app, OPEN, { ...bounds, bucket: '1h' });
      expect(open.errors, JSON.stringify(bounds)).toBeUndefined();
      expect(open.data?.metricSeries).toEqual(all.data?.metricSeries);
    }
    // A missing start never spans more buckets than allowed, whatever the bucket.
    const seconds = await graphql<{ metricSeries: Bucket[] }>(app, OPEN, {
      end: iso(T0 + 3_600_000),
      bucket: 1,
    });
    expect(seconds.errors).toBeUndefined();
    expect(seconds.data?.metricSeries.at(-1)?.start).toBe(iso(T0 + 59 * 60_000));
    expect(Date.parse(seconds.data?.metricSeries[0]?.start ?? '')).toBeGreaterThanOrEqual(
      T0 + 3_600_000 - 10_000_000,
    );
  });

  it('accepts exactly 10,000 buckets', async () => {
    const result = await graphql<{ metricSeries: Bucket[] }>(app, SERIES, {
      start: iso(T0),
      end: iso(T0 + 10_000_000),
      bucket: 1,
    });
    expect(result.errors).toBeUndefined();
  });
});
