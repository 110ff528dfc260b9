import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../src/http/app.js';
import { createTestApp } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

// Three sources reporting at the same instants, one of them load alone, and the default source.
const T0 = Date.UTC(2026, 5, 1);
const STEPS = 40;

let db: TestDatabase;
let app: App;
let sql: pg.Client;

beforeAll(async () => {
  db = await createTestDatabase();
  sql = new pg.Client({ connectionString: db.url });
  await sql.connect();
  await sql.query(`INSERT INTO sources (id, name, labels) VALUES
    (2, 'web-1', '{"region": "eu", "tier": "web"}'), (3, 'web-2', '{"region": "us", "tier": "web"}'),
    (4, 'node-1', '{"region": "eu", "tier": "db"}')`);
  await sql.query(
    `INSERT INTO metrics (source_id, "timestamp", cpu_load, concurrency)
     SELECT s, to_timestamp(${T0 / 1000} + g * 10), s + g / 8.0, CASE WHEN s = 4 THEN NULL ELSE g END
       FROM generate_series(1, 4) AS s, generate_series(0, ${STEPS - 1}) AS g`,
  );
  app = createTestApp(db);
});
afterAll(async () => {
  await app?.dispose();
  await sql?.end();
  await db?.drop();
});

type Row = { id: number; timestamp: number; cpu_load: number; concurrency: number | null; source?: string };

/** Every row of a request, following its Link headers. */
async function all(path: string): Promise<Row[]> {
  const rows: Row[] = [];
  let next: string | null = path;
  while (next) {
    const response: Response = await app.fetch(new URL(next, 'http://localhost'));
    expect(response.status).toBe(200);
    rows.push(...((await response.json()) as Row[]));
    next = response.headers.get('link')?.match(/^<([^>]+)>; rel="next"$/)?.[1] ?? null;
  }
  return rows;
}

/** The rows of the sources `where` selects, as the endpoint gives them with a filter, by time then source. */
async function expected(where: string): Promise<Row[]> {
  const { rows } = await sql.query(
    `SELECT m.id::int AS id, extract(epoch FROM m."timestamp")::float8 AS timestamp, m.cpu_load, m.concurrency, s.name AS source
       FROM metrics AS m JOIN sources AS s ON s.id = m.source_id WHERE ${where} ORDER BY m."timestamp", m.source_id`,
  );
  return rows as Row[];
}

describe('GET /api/metrics with sources', () => {
  it('answers every source without a filter, by time then source, rows as they always were', async () => {
    const rows = await all('/api/metrics?limit=7');
    const every = await expected('true');
    expect(rows).toEqual(every.map(({ source: _source, ...row }) => row));
    expect(Object.keys(rows[0] as Row).sort()).toEqual(['concurrency', 'cpu_load', 'id', 'timestamp']);
  });

  it.each([
    ['source=web-2', `s.name = 'web-2'`],
    ['source=web-2&source=node-1', `s.name IN ('web-2', 'node-1')`],
    ['label=region%3Deu', `s.labels->>'region' = 'eu'`],
    ['label=region!%3Deu', `coalesce(s.labels->>'region', '') <> 'eu'`],
    ['label=tier%3D~w.*', `s.labels->>'tier' = 'web'`],
    ['label=tier!~w.*&label=region%3Deu', `s.name = 'node-1'`],
    ['source=web-1&label=tier%3Ddb', 'false'],
  ])('narrows to %s, each row naming its source, through every page', async (query, where) => {
    expect(await all(`/api/metrics?limit=9&${query}`)).toEqual(await expected(where));
  });

  it('answers null for a value a sample does not hold', async () => {
    const [row] = await all(`/api/metrics?limit=1&source=node-1&start=${T0 / 1000}&end=${T0 / 1000}`);
    expect(row).toMatchObject({ source: 'node-1', concurrency: null, cpu_load: 4 });
  });

  it.each([
    ['label=region', 'label'],
    ['label=%3Deu', 'label'],
    ['label=region%3D~(', 'label'],
    [`${Array.from({ length: 101 }, (_, i) => `source=s${i}`).join('&')}`, 'source'],
    [`${Array.from({ length: 17 }, (_, i) => `label=l${i}%3Dx`).join('&')}`, 'label'],
  ])('answers %s with 400 naming the parameter', async (query, parameter) => {
    const response = await app.fetch(`http://localhost/api/metrics?${query}`);
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: string; message: string; parameter: string };
    expect(body).toMatchObject({ error: 'Bad Request', parameter });
    expect(body.message.startsWith(`${parameter}: `)).toBe(true);
  });
});
