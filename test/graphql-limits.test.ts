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
  app = createTestApp(db);
});
afterAll(() => db.drop());

describe('query limits', () => {
  it('refuses a query deeper than MAX_QUERY_DEPTH', async () => {
    const deep = createTestApp(db, { MAX_QUERY_DEPTH: '3' });
    const result = await graphql(deep, '{ metrics { edges { node { id } } } }');
    expect(result.errors?.[0]).toMatchObject({
      message: 'Query depth limit of 3 exceeded, found 4.',
      extensions: { code: 'QUERY_LIMIT_EXCEEDED' },
    });
    expect(result.data).toBeUndefined();
  });

  it('refuses more aliases than MAX_QUERY_ALIASES', async () => {
    const aliases = Array.from({ length: 16 }, (_, i) => `a${i}: metricsSummary { count }`).join(' ');
    const result = await graphql(app, `{ ${aliases} }`);
    expect(result.errors?.[0]).toMatchObject({
      message: 'Aliases limit of 15 exceeded, found 16.',
      extensions: { code: 'QUERY_LIMIT_EXCEEDED' },
    });
  });

  it('refuses documents with more tokens than MAX_QUERY_TOKENS', async () => {
    const small = createTestApp(db, { MAX_QUERY_TOKENS: '20' });
    const result = await graphql(
      small,
      '{ metricsSummary { count cpuLoad { min max avg p50 p95 p99 } concurrency { min max avg p95 } } }',
    );
    expect(result.errors?.[0]?.message).toMatch(/Token limit of 20 exceeded/);
    expect(result.errors?.[0]?.extensions?.code).toBe('QUERY_LIMIT_EXCEEDED');
  });

  it('refuses more directives than 50 with a code, not a bare "Syntax Error"', async () => {
    const result = await graphql(app, `{ metricsSummary { ${'count @include(if: true) '.repeat(51)} } }`);
    expect(result.errors).toEqual([
      { message: 'Directives limit of 50 exceeded, found 51.', extensions: { code: 'QUERY_LIMIT_EXCEEDED' } },
    ]);
  });

  it('refuses request bodies over MAX_BODY_BYTES with 413', async () => {
    const limited = createTestApp(db, { MAX_BODY_BYTES: '2048' });
    const body = JSON.stringify({
      query: '{ metricsSummary { count } }',
      variables: { padding: 'x'.repeat(4000) },
    });
    const response = await limited.fetch('http://localhost/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
      body,
    });
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ error: 'Payload Too Large' });
  });
});

const INTROSPECTION = '{ __schema { queryType { name } types { name fields { name } } } }';

describe('nodes(ids:)', () => {
  const NODES = 'query ($ids: [ID!]!) { nodes(ids: $ids) { id } }';
  const ids = (count: number) =>
    Array.from({ length: count }, (_, i) => Buffer.from(`Metric:${i + 1}`).toString('base64'));

  it('answers MAX_NODE_IDS ids (100 by default)', async () => {
    const result = await graphql<{ nodes: unknown[] }>(app, NODES, { ids: ids(100) });
    expect(result.errors).toBeUndefined();
    expect(result.data?.nodes).toEqual(Array.from({ length: 100 }, () => null));
  });

  it('refuses more ids than MAX_NODE_IDS as BAD_USER_INPUT naming ids and the limit', async () => {
    const result = await graphql(app, NODES, { ids: ids(3000) });
    expect(result.data).toBeNull();
    expect(result.errors).toEqual([
      expect.objectContaining({
        message: 'ids: at most 100 ids per request (MAX_NODE_IDS), got 3000',
        extensions: { code: 'BAD_USER_INPUT', argument: 'ids' },
      }),
    ]);
    const three = createTestApp(db, { MAX_NODE_IDS: '3' });
    expect((await graphql(three, NODES, { ids: ids(4) })).errors?.[0]?.message).toBe(
      'ids: at most 3 ids per request (MAX_NODE_IDS), got 4',
    );
  });
});

describe('introspection', () => {
  it('is served outside production, which GraphiQL needs', async () => {
    const result = await graphql<{ __schema: { queryType: { name: string } } }>(app, INTROSPECTION);
    expect(result.errors).toBeUndefined();
    expect(result.data?.__schema.queryType.name).toBe('Query');
  });

  it('is refused in production with a code, __typename still answered', async () => {
    const production = createTestApp(db, { NODE_ENV: 'production', METRICS_PUBLIC: 'true' });
    const refused = await graphql(production, INTROSPECTION);
    expect(refused.data).toBeUndefined();
    expect(refused.errors?.[0]).toMatchObject({
      message: expect.stringContaining('introspection has been disabled'),
      extensions: { code: 'INTROSPECTION_DISABLED' },
    });
    const typed = await graphql(production, '{ __type(name: "Metric") { name } }');
    expect(typed.errors?.[0]?.extensions?.code).toBe('INTROSPECTION_DISABLED');
    expect(await graphql(production, '{ metricsSummary { __typename } }')).toMatchObject({
      data: { metricsSummary: { __typename: 'MetricSummary' } },
    });
  });

  it('is served in production with INTROSPECTION=true', async () => {
    const open = createTestApp(db, { NODE_ENV: 'production', METRICS_PUBLIC: 'true', INTROSPECTION: 'true' });
    const result = await graphql<{ __schema: { queryType: { name: string } } }>(open, INTROSPECTION);
    expect(result.errors).toBeUndefined();
    expect(result.data?.__schema.queryType.name).toBe('Query');
  });
});

describe('error masking', () => {
  const query = '{ metrics(first: 1) { edges { cursor } } }';

  it('hides unexpected errors in production', async () => {
    // A database without the migrations: every statement fails, and not because it is away.
    const empty = await createEmptyDatabase();
    const unmigrated = connectTest(empty.url, 1);
    const production = createTestApp(unmigrated, { NODE_ENV: 'production', METRICS_PUBLIC: 'true' });
    const response = await production.fetch('http://localhost/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query }),
    });
    const text = await response.text();
    expect(JSON.parse(text).errors[0]).toEqual({
      message: 'Unexpected error.',
      locations: [{ line: 1, column: 3 }],
      path: ['metrics'],
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    });
    expect(text).not.toMatch(/relation|metrics_test|stack|\/src\//i);
    await unmigrated.close();
    await empty.drop();
  });

  it('keeps expected errors readable in production', async () => {
    const production = createTestApp(db, { NODE_ENV: 'production', METRICS_PUBLIC: 'true' });
    const result = await graphql(production, '{ metrics(first: -1) { edges { cursor } } }');
    expect(result.errors?.[0]).toMatchObject({
      message: 'first: must not be negative',
      extensions: { code: 'BAD_USER_INPUT' },
    });
  });
});

describe('GraphiQL', () => {
  it('opens on GET from a browser, with an example query', async () => {
    const response = await app.fetch('http://localhost/graphql', { headers: { accept: 'text/html' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/text\/html/);
    const html = await response.text();
    expect(html).toContain('<title>metrics-api</title>');
    expect(html).toContain('metricsSummary');
    // Assets are bundled, not fetched from a CDN: the page works offline.
    expect(html).not.toMatch(/unpkg\.com|cdn\.jsdelivr/);
  });

  it('can be turned off', async () => {
    const off = createTestApp(db, { GRAPHIQL: 'false' });
    const response = await off.fetch('http://localhost/graphql', { headers: { accept: 'text/html' } });
    expect(await response.text()).not.toContain('<title>metrics-api</title>');
  });
});
