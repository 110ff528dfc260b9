import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from './support/app.js';
import { connectTest } from './support/database.js';
import { closedPort } from './support/ports.js';
import { type ServedApp, serve } from './support/sse.js';

let served: ServedApp;

beforeAll(async () => {
  const url = `postgresql://postgres@127.0.0.1:${await closedPort()}/none`;
  served = await serve(
    createTestApp({ ...connectTest(url, 1), url }, { DATABASE_CONNECT_TIMEOUT_MS: '300' }),
  );
});
afterAll(() => served?.close());

describe('a subscription while the database cannot be reached', () => {
  it('is refused with DATABASE_UNAVAILABLE (503, Retry-After) before any stream', async () => {
    const response = await fetch(`${served.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: 'subscription { metricsAdded { cursor } }' }),
    });
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('5');
    expect(response.headers.get('content-type')).toMatch(/^application\/graphql-response\+json/);
    const body = (await response.json()) as { errors?: { extensions?: { code?: string } }[] };
    expect(body.errors?.[0]?.extensions?.code).toBe('DATABASE_UNAVAILABLE');
  });
});
