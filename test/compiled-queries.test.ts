import { execute, parse } from 'graphql';
import { createSchema, createYoga } from 'graphql-yoga';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../src/app.js';
import { useCompiledQueries } from '../src/compiled-queries.js';
import { parseConfig } from '../src/config.js';
import { AggregateCache } from '../src/metrics/aggregate-cache.js';
import { schema } from '../src/schema/index.js';
import { createTestApp, graphql } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

describe('useCompiledQueries', () => {
  /** A server whose resolvers fail on their second call only, and count their calls. */
  function flakyServer() {
    const calls = { query: 0, mutation: 0 };
    const failSecond = (count: number) => {
      if (count === 2) throw new Error('second call fails');
      return count;
    };
    const yoga = createYoga({
      schema: createSchema({
        typeDefs: 'type Query { value: Int! } type Mutation { bump: Int! }',
        resolvers: {
          Query: { value: () => failSecond(++calls.query) },
          Mutation: { bump: () => failSecond(++calls.mutation) },
        },
      }),
      plugins: [useCompiledQueries()],
      maskedErrors: false,
      logging: false,
    });
    const post = async (query: string) => {
      const response = await yoga.fetch('http://localhost/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query }),
      });
      return (await response.json()) as {
        data?: unknown;
        errors?: { message: string; locations?: unknown }[];
      };
    };
    return { calls, post };
  }

  it('compiles a query the second time it runs, and answers with graphql-js when the compiled run reports an error', async () => {
    const { calls, post } = flakyServer();
    // First run: graphql-js only.
    expect(await post('{ value }')).toEqual({ data: { value: 1 } });
    expect(calls.query).toBe(1);
    // Second run: compiled; its resolver call fails, so graphql-js runs it again and answers.
    expect(await post('{ value }')).toEqual({ data: { value: 3 } });
    expect(calls.query).toBe(3);
    // Once the compiled run succeeds, its answer is sent and graphql-js does not run.
    expect(await post('{ value }')).toEqual({ data: { value: 4 } });
    expect(calls.query).toBe(4);
  });

  it('never runs a mutation twice', async () => {
    const { calls, post } = flakyServer();
    expect(await post('mutation { bump }')).toEqual({ data: { bump: 1 } });
    const result = await post('mutation { bump }');
    expect(result.errors?.[0]).toMatchObject({
      message: 'second call fails',
      locations: [{ line: 1, column: 12 }],
    });
    expect(calls.mutation).toBe(2);
  });
});

describe('the compiled schema', () => {
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

  const queries: [string, string, Record<string, unknown>][] = [
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
  ];

  it.each(queries)('answers %s exactly as graphql-js does', async (_name, query, variables) => {
    // The first run of a document is graphql-js's; the second is compiled.
    await graphql(app, query, variables);
    const compiled = await graphql(app, query, variables);
    const config = parseConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', DATABASE_URL: db.url });
    const reference = await execute({
      schema,
      document: parse(query),
      variableValues: variables,
      contextValue: {
        prisma: db.prisma,
        config,
        request: new Request('http://localhost/graphql'),
        aggregates: new AggregateCache(0),
      },
    });
    expect(compiled.errors).toBeUndefined();
    expect(JSON.stringify({ data: compiled.data })).toBe(JSON.stringify(reference));
  });
});
