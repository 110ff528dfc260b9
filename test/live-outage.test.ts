import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from './support/app.js';
import { connectTest } from './support/database.js';
import { closedPort } from './support/ports.js';
import { type ServedApp, SseSubscription, serve } from './support/sse.js';

let served: ServedApp;

beforeAll(async () => {
  const url = `postgresql://postgres@127.0.0.1:${await closedPort()}/none`;
  served = await serve(
    createTestApp({ ...connectTest(url, 1), url }, { DATABASE_CONNECT_TIMEOUT_MS: '300' }),
  );
});
afterAll(() => served?.close());

describe('a subscription while the database cannot be reached', () => {
  it('is refused with DATABASE_UNAVAILABLE before any stream', async () => {
    const subscription = new SseSubscription(served.url, 'subscription { metricsAdded { cursor } }');
    const [event] = await subscription.take(1);
    expect(event?.errors?.[0]?.extensions?.code).toBe('DATABASE_UNAVAILABLE');
    await subscription.done;
    expect(subscription.completed).toBe(true);
  });
});
