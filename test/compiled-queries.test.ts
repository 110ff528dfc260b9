import { GraphQLScalarType } from 'graphql';
import { createSchema, createYoga } from 'graphql-yoga';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCompiledQueries } from '../src/graphql/plugins/compiled-queries.js';
import type { App } from '../src/http/app.js';
import { createTestApp } from './support/app.js';
import {
  connectTest,
  createEmptyDatabase,
  createTestDatabase,
  type TestDatabase,
} from './support/database.js';

async function post(app: { fetch: App['fetch'] }, query: string, variables: Record<string, unknown> = {}) {
  const response = await app.fetch('http://localhost/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return response.text();
}

describe('useCompiledQueries', () => {
  /**
   * `loose` is a scalar whose serialize returns null: graphql-js reports that as an error,
   * graphql-jit does not, so the answer tells which of the two ran.
   */
  function probeServer({ maskedErrors = false } = {}) {
    const calls = { count: 0, echo: 0 };
    const yoga = createYoga({
      schema: createSchema({
        typeDefs: `scalar Loose
          type Query { loose: Loose! count: Int! echo(n: Int!): Int! missing: Int! }
          type Mutation { loose: Loose! }`,
        resolvers: {
          Loose: new GraphQLScalarType({ name: 'Loose', serialize: () => null }),
          Query: {
            loose: () => 'anything',
            missing: () => null,
            count: () => {
              calls.count++;
              throw new Error('count failed');
            },
            echo: (_root: unknown, { n }: { n: number }) => {
              calls.echo++;
              return n;
            },
          },
          Mutation: { loose: () => 'anything' },
        },
      }),
      plugins: [useCompiledQueries()],
      maskedErrors,
      logging: false,
    });
    return { calls, post: async (query: string) => JSON.parse(await post(yoga, query)) };
  }

  it('compiles a query document the second time it runs', async () => {
    const { post } = probeServer();
    expect((await post('{ loose }')).errors?.[0]?.message).toMatch(/Expected `Loose.serialize/);
    expect(await post('{ loose }')).toEqual({ data: { loose: null } });
  });

  it('never compiles a mutation', async () => {
    const { post } = probeServer();
    for (let run = 0; run < 3; run++) {
      expect((await post('mutation { loose }')).errors?.[0]?.message).toMatch(/Expected `Loose.serialize/);
    }
  });

  it('sends a compiled run that failed in a resolver as it is, without running the query again', async () => {
    const { calls, post } = probeServer();
    await post('{ count }');
    const compiled = await post('{ count }');
    expect(compiled.errors?.[0]).toMatchObject({
      message: 'count failed',
      locations: [{ line: 1, column: 3 }],
    });
    expect(calls.count).toBe(2);
  });

  it('answers with Yoga’s executor when graphql-jit makes an error of its own', async () => {
    // A null for a non-null field: graphql-js's error is masked like any unexpected error;
    // graphql-jit's, which has no original error, would not be.
    const { post } = probeServer({ maskedErrors: true });
    const first = await post('{ missing echo(n: 1) }');
    expect(first.errors?.[0]).toMatchObject({ message: 'Unexpected error.', path: ['missing'] });
    expect(await post('{ missing echo(n: 1) }')).toEqual(first);
  });

  it('runs the query through Yoga’s executor when graphql-jit refuses the variables', async () => {
    // graphql-jit refuses an omitted non-null variable that has a default; graphql-js uses the default.
    const { calls, post } = probeServer();
    const query = 'query ($n: Int! = 3) { echo(n: $n) }';
    expect(await post(query)).toEqual({ data: { echo: 3 } });
    expect(await post(query)).toEqual({ data: { echo: 3 } });
    expect(calls.echo).toBe(2);
  });
});

describe('the service, compiled and not', () => {
  const T0 = Date.UTC(2026, 0, 1);
  let db: TestDatabase;
  let app: App;

  beforeAll(async () => {
    db = await createTestDatabase();
    await db.prisma.metric.createMany({
      data: Array.from({ length: 250 }, (_, i) => ({
        timestamp: new Date(T0 + i * 1000 + (i % 3)),
        cpuLoad: (i % 40) / 8,
        concurrency: i % 13,
      })),
    });
    app = createTestApp(db);
  });
  afterAll(() => db.drop());

  const cases: [string, string, Record<string, unknown>][] = [
    [
      'a page with every field',
      `{ metrics(first: 100) { totalCount edges { cursor node { __typename id timestamp unixTime cpuLoad concurrency } }
         pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`,
      {},
    ],
    [
      'variables, aliases, fragments, @include and @skip',
      `query ($start: DateTime, $last: Int, $withCursor: Boolean!) {
         recent: metrics(start: $start, last: $last, order: DESC) {
           edges { cursor @include(if: $withCursor) node { ...sample } }
           pageInfo { startCursor @skip(if: $withCursor) }
         }
       }
       fragment sample on Metric { id timestamp concurrency }`,
      { start: new Date(T0 + 30_000).toISOString(), last: 7, withCursor: false },
    ],
    [
      'node lookups and aggregates',
      `query ($id: ID!) {
         node(id: $id) { __typename id ... on Metric { timestamp cpuLoad } }
         metricsSummary { count firstTimestamp lastTimestamp cpuLoad { min max avg p50 p95 p99 } concurrency { min max avg p95 } }
         metricSeries(start: "2026-01-01T00:00:00Z", end: "2026-01-01T00:05:00Z", bucket: "1m") {
           start count cpuLoad { min max avg } concurrency { min max avg }
         }
       }`,
      { id: Buffer.from('Metric:3').toString('base64') },
    ],
    [
      'a resolver refusing an argument',
      '{ metricsSummary { count }\n  metrics(first: 5000) { edges { cursor } } }',
      {},
    ],
    ['a malformed cursor', '{ metrics(\n  after: "nope") { edges { cursor } } }', {}],
    ['a malformed global id', '{ node(id: "bad") { id } }', {}],
    [
      'a variable without a UTC offset',
      'query ($start: DateTime) { metricsSummary(start: $start) { count } }',
      { start: '2026-01-01T00:00:00' },
    ],
    [
      'an omitted non-null variable with a default',
      'query ($order: SortOrder! = DESC) { metrics(first: 2, order: $order) { edges { node { timestamp } } } }',
      {},
    ],
  ];

  it.each(cases)(
    'answers %s with the same bytes before and after compiling',
    async (_name, query, variables) => {
      const first = await post(app, query, variables);
      const second = await post(app, query, variables);
      expect(second).toBe(first);
      expect(JSON.parse(first)).not.toHaveProperty('errors.0.extensions.code', 'INTERNAL_SERVER_ERROR');
    },
  );

  it('masks an unexpected error the same way before and after compiling', async () => {
    const empty = await createEmptyDatabase();
    const unmigrated = connectTest(empty.url, 1);
    try {
      const production = createTestApp(unmigrated, { NODE_ENV: 'production', METRICS_PUBLIC: 'true' });
      const query = '{ metrics(first: 1) { edges { cursor } } }';
      const first = await post(production, query);
      expect(JSON.parse(first).errors[0]).toEqual({
        message: 'Unexpected error.',
        locations: [{ line: 1, column: 3 }],
        path: ['metrics'],
        extensions: { code: 'INTERNAL_SERVER_ERROR' },
      });
      expect(await post(production, query)).toBe(first);
    } finally {
      await unmigrated.close();
      await empty.drop();
    }
  });
});
