import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CURSOR_MAX_MS, CURSOR_MIN_MS } from '../src/domain/cursor.js';
import type { App } from '../src/http/app.js';
import { createTestApp, graphql } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

const T0 = Date.UTC(2026, 5, 1);
const plainCursor = (ms: number) => Buffer.from(`metric:${ms}`).toString('base64url');
/** One millisecond before timestamptz begins (4714-11-24 BC), and past any Date. */
const FORGED = [plainCursor(CURSOR_MIN_MS - 1), plainCursor(CURSOR_MAX_MS + 1)];
const PAGE = `query Page($after: String, $before: String) {
  metrics(first: 2, after: $after, before: $before) { edges { node { timestamp } } }
}`;

let db: TestDatabase;
let app: App;
beforeAll(async () => {
  db = await createTestDatabase();
  await db.prisma.metric.createMany({
    data: [0, 1, 2].map((i) => ({ timestamp: new Date(T0 + i * 1000), cpuLoad: 0.5, concurrency: 1 })),
  });
  app = createTestApp(db);
});
afterAll(async () => {
  await app?.dispose();
  await db?.drop();
});

describe('page cursors at the edges of what PostgreSQL holds', () => {
  it('page from the earliest and to the latest instant a cursor may name', async () => {
    const fromEarliest = await graphql(app, PAGE, { after: plainCursor(CURSOR_MIN_MS) });
    expect(fromEarliest.errors).toBeUndefined();
    expect(fromEarliest.data).toEqual({
      metrics: { edges: [0, 1].map((i) => ({ node: { timestamp: new Date(T0 + i * 1000).toISOString() } })) },
    });
    const toLatest = await graphql(app, PAGE, { before: plainCursor(CURSOR_MAX_MS) });
    expect(toLatest.errors).toBeUndefined();
    const rest = await app.fetch(`http://localhost/api/metrics?cursor=${plainCursor(CURSOR_MIN_MS)}`);
    expect(rest.status).toBe(200);
    expect(((await rest.json()) as unknown[]).length).toBe(3);
  });

  it('refuse a forged cursor outside that range as the client’s mistake: BAD_USER_INPUT', async () => {
    for (const cursor of FORGED) {
      for (const argument of ['after', 'before']) {
        const answer = await graphql(app, PAGE, { [argument]: cursor });
        expect(answer.status).toBe(200);
        expect(answer.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument });
      }
    }
  });

  it('refuse it on the REST endpoint with 400 and a JSON body naming the parameter', async () => {
    for (const cursor of FORGED) {
      const response = await app.fetch(`http://localhost/api/metrics?cursor=${cursor}`);
      expect(response.status).toBe(400);
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await response.json()).toMatchObject({ error: 'Bad Request', parameter: 'cursor' });
    }
  });
});
