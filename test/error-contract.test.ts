// Every GraphQL error carries extensions.code, every 4xx a JSON body, and a client's mistake never
// looks like a server fault.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../src/http/app.js';
import { createTestApp, graphql } from './support/app.js';
import {
  connectTest,
  createEmptyDatabase,
  createTestDatabase,
  type TestDatabase,
} from './support/database.js';

let db: TestDatabase;
let app: App;
beforeAll(async () => {
  db = await createTestDatabase();
  await db.prisma.metric.createMany({
    data: Array.from({ length: 5 }, (_, i) => ({
      timestamp: new Date(Date.UTC(2026, 0, 1, 0, i)),
      cpuLoad: i / 2,
      concurrency: i,
    })),
  });
  app = createTestApp(db, { INGEST_TOKEN: 'a-token-of-sixteen-chars' });
});
afterAll(() => db.drop());

const globalId = (text: string) => Buffer.from(text).toString('base64');

describe('variables that do not fit their types', () => {
  const PAGE = 'query ($first: Int, $after: String) { metrics(first: $first, after: $after) { totalCount } }';
  it.each([
    ['a fraction for an Int', PAGE, { first: 1.5 }, 'first', 'first'],
    ['a string for an Int', PAGE, { first: '1' }, 'first', 'first'],
    ['an Int past 2^31', PAGE, { first: 2_147_483_648 }, 'first', 'first'],
    ['a number for a String', PAGE, { after: 1 }, 'after', 'after'],
    [
      'a string for a Boolean',
      'query ($all: Boolean!) { metrics(first: 1) @include(if: $all) { totalCount } }',
      { all: 'yes' },
      'all',
      'if',
    ],
    [
      'an Int past 2^31 inside a list of inputs',
      'mutation ($samples: [MetricInput!]!) { ingestMetrics(samples: $samples) { inserted } }',
      { samples: [{ timestamp: '2026-01-02T00:00:00Z', cpuLoad: 1, concurrency: 2_147_483_648 }] },
      'samples',
      'samples',
    ],
    [
      'a DateTime without an offset, in a variable named otherwise',
      'query ($from: DateTime) { metricsSummary(start: $from) { count } }',
      { from: '2026-01-01T00:00:00' },
      'from',
      'start',
    ],
  ])('%s is BAD_USER_INPUT naming the argument', async (_name, query, variables, variable, argument) => {
    const result = await graphql(app, query, variables);
    expect(result.data ?? undefined).toBeUndefined();
    expect(result.errors).toHaveLength(1);
    expect(result.errors?.[0]?.extensions).toEqual({ code: 'BAD_USER_INPUT', argument });
    expect(result.errors?.[0]?.message).toMatch(new RegExp(`^Variable "\\$${variable}"`));
  });

  it('names the argument of a custom scalar’s refusal, in a variable and in a literal', async () => {
    const variable = await graphql(app, 'query ($end: DateTime) { metricsSummary(end: $end) { count } }', {
      end: '2026-01-01T00:00:00',
    });
    expect(variable.errors).toEqual([
      expect.objectContaining({
        message:
          'Variable "$end" got an invalid value for end: not a DateTime: ISO-8601 timestamp without a UTC offset is ambiguous; add Z or ±hh:mm: "2026-01-01T00:00:00"',
        extensions: { code: 'BAD_USER_INPUT', argument: 'end' },
      }),
    ]);
    const literal = await graphql(app, '{ metricsSummary(start: "2026-01-01T00:00:00") { count } }');
    expect(literal.errors).toEqual([
      {
        message:
          'start: not a DateTime: ISO-8601 timestamp without a UTC offset is ambiguous; add Z or ±hh:mm: "2026-01-01T00:00:00"',
        locations: [{ line: 1, column: 25 }],
        extensions: { code: 'BAD_USER_INPUT', argument: 'start' },
      },
    ]);
    const duration = await graphql(app, '{ metricSeries(bucket: "soon") { count } }');
    expect(duration.errors?.[0]).toMatchObject({
      message: expect.stringMatching(/^bucket: "soon" is not a Duration/),
      extensions: { code: 'BAD_USER_INPUT', argument: 'bucket' },
    });
  });
});

describe('large input in errors', () => {
  const huge = 'x'.repeat(1_900_000);
  it.each([
    ['a Duration variable', 'query ($b: Duration!) { metricSeries(bucket: $b) { count } }', { b: huge }],
    ['a Duration literal', `{ metricSeries(bucket: "${huge}") { count } }`, {}],
    ['a DateTime variable', 'query ($s: DateTime) { metricsSummary(start: $s) { count } }', { s: huge }],
    ['an enum variable', 'query ($o: SortOrder!) { metrics(order: $o) { totalCount } }', { o: huge }],
    ['an enum literal', `{ metrics(order: ${huge}) { totalCount } }`, {}],
    ['an Int variable', 'query ($f: Int) { metrics(first: $f) { totalCount } }', { f: huge }],
    ['an Int literal', `{ metrics(first: "${huge}") { totalCount } }`, {}],
    ['a global id', 'query ($id: ID!) { node(id: $id) { id } }', { id: huge }],
    [
      'a global id of another type',
      'query ($id: ID!) { node(id: $id) { id } }',
      { id: globalId(`${huge.slice(0, 1_000_000)}:1`) },
    ],
    ['a page cursor', 'query ($a: String) { metrics(after: $a) { totalCount } }', { a: huge }],
    ['an unknown name', `{ ${huge} }`, {}],
    ['a syntax error', `{ metrics(first: 1) { ${huge}" } }`, {}],
    [
      'an object for a DateTime',
      'query ($s: DateTime) { metricsSummary(start: $s) { count } }',
      {
        s: Object.fromEntries(Array.from({ length: 50_000 }, (_, i) => [`k${i}`, i])),
      },
    ],
  ])('quotes a short prefix of %s, never the whole', async (_name, query, variables) => {
    const response = await app.fetch('http://localhost/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query, variables }),
    });
    const text = await response.text();
    expect(text.length).toBeLessThan(2000);
    const { errors } = JSON.parse(text) as { errors: { message: string; extensions: { code: string } }[] };
    expect(text).not.toContain('x'.repeat(41));
    expect(errors[0]?.extensions.code).toMatch(
      /^(BAD_USER_INPUT|GRAPHQL_VALIDATION_FAILED|GRAPHQL_PARSE_FAILED)$/,
    );
  });
});

describe('node(id:)', () => {
  const NODE = 'query ($id: ID!) { node(id: $id) { id } }';
  it.each([['Metric:abc'], ['Metric:1.5'], ['Metric:99999999999999999999999'], ['Metric:0'], ['Metric:-1']])(
    'refuses the well-formed global id %s as BAD_USER_INPUT: its key is not a Metric id',
    async (text) => {
      const result = await graphql(app, NODE, { id: globalId(text) });
      expect(result.data).toEqual({ node: null });
      expect(result.errors?.[0]).toMatchObject({
        message: expect.stringMatching(/^id: .*not a Metric id/),
        extensions: { code: 'BAD_USER_INPUT', argument: 'id' },
        path: ['node'],
      });
    },
  );

  it('refuses an id of a type this API does not have as BAD_USER_INPUT', async () => {
    const result = await graphql(app, NODE, { id: globalId('Other:1') });
    expect(result.errors?.[0]).toMatchObject({
      message: 'id: "Other" is not a type of this API; node ids are Metric and Source ids',
      extensions: { code: 'BAD_USER_INPUT', argument: 'id' },
    });
  });

  it('answers null for a well-formed id of a row that does not exist, and the row for one that does', async () => {
    const [first] = (await db.prisma.metric.findMany({ orderBy: { id: 'asc' }, take: 1 })) as {
      id: bigint;
    }[];
    const found = await graphql<{ nodes: ({ id: string; concurrency: number } | null)[] }>(
      app,
      'query ($ids: [ID!]!) { nodes(ids: $ids) { id ... on Metric { concurrency } } }',
      { ids: [globalId(`Metric:${first?.id}`), globalId('Metric:9223372036854775807')] },
    );
    expect(found.errors).toBeUndefined();
    expect(found.data?.nodes).toEqual([{ id: globalId(`Metric:${first?.id}`), concurrency: 0 }, null]);
  });
});

describe('the MetricConnection nodes shortcut', () => {
  const QUERY = '{ metrics(first: 3, order: DESC) { nodes { concurrency } edges { node { concurrency } } } }';
  it('lists the same nodes as edges, before and after the query is compiled', async () => {
    for (let run = 0; run < 3; run++) {
      const result = await graphql<{
        metrics: { nodes: { concurrency: number }[]; edges: { node: { concurrency: number } }[] };
      }>(app, QUERY);
      expect(result.errors).toBeUndefined();
      expect(result.data?.metrics.nodes).toEqual([
        { concurrency: 4 },
        { concurrency: 3 },
        { concurrency: 2 },
      ]);
      expect(result.data?.metrics.edges.map((edge) => edge.node)).toEqual(result.data?.metrics.nodes);
    }
  });
});

describe('request bodies', () => {
  const body = JSON.stringify({ query: '{ metricsSummary { count } }' });
  const streamed = (text: string) =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        // In pieces, as a proxy or a streaming fetch sends it.
        const bytes = new TextEncoder().encode(text);
        for (let at = 0; at < bytes.length; at += 7) controller.enqueue(bytes.slice(at, at + 7));
        controller.close();
      },
    });

  it('answers a POST with an unsupported content type 415 with a JSON body', async () => {
    const response = await app.fetch('http://localhost/graphql', {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body,
    });
    expect(response.status).toBe(415);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.json()).toMatchObject({
      error: 'Unsupported Media Type',
      message: expect.stringContaining('text/plain'),
    });
  });

  it('accepts a streamed body without Content-Length', async () => {
    const response = await app.fetch('http://localhost/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: streamed(body),
      duplex: 'half',
    } as RequestInit);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ data: { metricsSummary: { count: 5 } } });
  });

  it('refuses a streamed body past MAX_BODY_BYTES with 413, as one with Content-Length', async () => {
    const limited = createTestApp(db, { MAX_BODY_BYTES: '2048' });
    const large = JSON.stringify({
      query: '{ metricsSummary { count } }',
      variables: { pad: 'x'.repeat(4000) },
    });
    const response = await limited.fetch('http://localhost/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: streamed(large),
      duplex: 'half',
    } as RequestInit);
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ error: 'Payload Too Large' });
  });
});

describe('/', () => {
  it('leads a browser to the dashboard', async () => {
    const response = await app.fetch('http://localhost/', {
      redirect: 'manual',
      headers: { accept: 'text/html,application/xhtml+xml' },
    });
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe('/dashboard');
  });

  it('lists the endpoints as JSON for other clients', async () => {
    const response = await app.fetch('http://localhost/');
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      graphql: '/graphql',
      dashboard: '/dashboard',
      health: '/healthz',
      prometheus: '/api/v1/query',
      otlp: '/v1/metrics',
      remoteWrite: '/api/v1/write',
    });
  });
});

describe('unexpected errors', () => {
  it.each(['test', 'production'])(
    'carry no cause, stack or path outside development (NODE_ENV=%s)',
    async (env) => {
      const empty = await createEmptyDatabase();
      const unmigrated = connectTest(empty.url, 1);
      try {
        const masked = createTestApp(unmigrated, { NODE_ENV: env, METRICS_PUBLIC: 'true' });
        for (const path of ['/graphql', '/api/metrics']) {
          const response =
            path === '/graphql'
              ? await masked.fetch(`http://localhost${path}`, {
                  method: 'POST',
                  headers: { 'content-type': 'application/json' },
                  body: JSON.stringify({ query: '{ metrics(first: 1) { totalCount } }' }),
                })
              : await masked.fetch(`http://localhost${path}`);
          const text = await response.text();
          expect(text).toMatch(/INTERNAL_SERVER_ERROR/);
          expect(text).not.toMatch(/relation|stack|\/src\/|node_modules|at \w+ \(/i);
          if (path !== '/graphql') expect(response.status).toBe(500);
        }
      } finally {
        await unmigrated.close();
        await empty.drop();
      }
    },
  );
});
