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

  it('still serves introspection, which GraphiQL needs', async () => {
    const result = await graphql<{ __schema: { queryType: { name: string } } }>(
      app,
      '{ __schema { queryType { name } types { name fields { name type { name ofType { name ofType { name ofType { name } } } } } } } }',
    );
    expect(result.errors).toBeUndefined();
    expect(result.data?.__schema.queryType.name).toBe('Query');
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

describe('error masking', () => {
  const query = '{ metrics(first: 1) { edges { cursor } } }';

  it('hides unexpected errors in production', async () => {
    // A database without the migrations: every statement fails, and not because it is away.
    const empty = await createEmptyDatabase();
    const unmigrated = connectTest(empty.url, 1);
    const production = createTestApp(unmigrated, { NODE_ENV: 'production' });
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
    const production = createTestApp(db, { NODE_ENV: 'production' });
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
