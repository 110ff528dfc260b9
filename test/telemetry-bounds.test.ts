// What a client sends never makes a log line or a span grow with it, and a statement's span and
// measurement name the table it really works on.
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseTelemetry, databaseAddress } from '../src/observability/database-telemetry.js';
import { startTelemetry, type Telemetry, telemetrySettings } from '../src/observability/telemetry.js';
import { createTestApp } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { capturingLogger } from './support/logs.js';

let db: TestDatabase;
let exporter: InMemorySpanExporter;
let telemetry: Telemetry;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.prisma.metric.createMany({
    data: Array.from({ length: 10 }, (_, i) => ({
      timestamp: new Date(Date.UTC(2026, 0, 1, 0, i)),
      cpuLoad: i / 4,
      concurrency: i,
    })),
  });
  exporter = new InMemorySpanExporter();
  telemetry = startTelemetry(telemetrySettings({}, 'x'), { spanExporter: exporter, runtimeMetrics: false });
});
afterAll(async () => {
  await telemetry.shutdown();
  await db.drop();
});

/** The longest string anywhere in `value`. */
function longestString(value: unknown): number {
  if (typeof value === 'string') return value.length;
  if (typeof value !== 'object' || value === null) return 0;
  return Math.max(0, ...Object.values(value).map(longestString));
}

describe('a large request', () => {
  it('writes bounded log lines and spans: 10,000 ids, a 200 KB operation name, 1 MB of extensions', async () => {
    const { logger, lines } = capturingLogger('info');
    const app = createTestApp(
      db,
      {
        SLOW_OPERATION_MS: '1',
        MAX_NODE_IDS: '10000',
        MAX_QUERY_COST: '10000000',
        MAX_BODY_BYTES: '8388608',
      },
      { telemetry, logger },
    );
    const page = (await (
      await app.fetch('http://localhost/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ metrics(first: 10) { edges { node { id } } } }' }),
      })
    ).json()) as { data: { metrics: { edges: { node: { id: string } }[] } } };
    const stored = page.data.metrics.edges.map((edge) => edge.node.id);
    const ids = Array.from({ length: 10_000 }, (_, i) => stored[i % stored.length]);
    exporter.reset();
    lines.length = 0;

    const name = `Large${'x'.repeat(200_000)}`;
    const response = await app.fetch(`http://localhost/graphql?${'q'.repeat(6000)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': `agent ${'u'.repeat(6000)}` },
      body: JSON.stringify({
        query: `query ${name}($ids: [ID!]!) { nodes(ids: $ids) { id } }`,
        variables: { ids },
        extensions: { padding: 'p'.repeat(1_000_000) },
      }),
    });
    const body = (await response.json()) as { data?: { nodes: unknown[] }; errors?: unknown };
    expect(JSON.stringify(body.errors ?? null).slice(0, 600)).toBe('null');
    expect(body.data?.nodes).toHaveLength(10_000);

    // The slow-operation line is written once the response has gone (after its plan).
    for (
      let waited = 0;
      !lines.some((line) => line.msg === 'Slow operation') && waited < 10_000;
      waited += 50
    )
      await new Promise((resolve) => setTimeout(resolve, 50));
    const slow = lines.find((line) => line.msg === 'Slow operation');
    expect(slow).toBeDefined();
    const statements = slow?.statements as { text: string; count: number; ms: number }[];
    expect(statements.length).toBeGreaterThan(0);
    expect(statements.length).toBeLessThanOrEqual(20);
    // Every statement the operation ran is counted, however few entries the line keeps.
    expect(statements.reduce((sum, statement) => sum + statement.count, 0)).toBeLessThanOrEqual(
      slow?.statement_count as number,
    );
    expect(String(slow?.operation_name).length).toBeLessThanOrEqual(65);
    for (const line of lines) {
      expect(JSON.stringify(line).length, String(line.msg)).toBeLessThan(32 * 1024);
      expect(longestString(line)).toBeLessThanOrEqual(2048 + 40);
    }
    expect(JSON.stringify(lines)).not.toMatch(/p{100}/);

    const spans = exporter.getFinishedSpans();
    expect(spans.length).toBeGreaterThan(0);
    for (const span of spans) {
      expect(span.name.length, span.name.slice(0, 40)).toBeLessThanOrEqual(100);
      expect(longestString(span.attributes), span.name).toBeLessThanOrEqual(2048 + 40);
      expect(longestString(span.events), span.name).toBeLessThanOrEqual(4096);
    }
    const operation = spans.find((span) => span.attributes['graphql.operation.type'] === 'query');
    expect(operation?.name).toMatch(/^query Largex{59}…$/);
    expect(String(operation?.attributes['graphql.operation.name']).slice(-60)).toMatch(
      /…\[197957 more characters\]$/,
    );
    const server = spans.find((span) => span.name === 'POST /graphql');
    expect(String(server?.attributes['user_agent.original'])).toMatch(/…\[3958 more characters\]$/);
    await app.dispose();
  });

  it('cuts a long SQL text in its span, with a marker of what was cut', async () => {
    const database = new DatabaseTelemetry({ tracer: telemetry.tracer, address: databaseAddress(db.url) });
    const text = `SELECT 1 /* ${'c'.repeat(100_000)} */`;
    exporter.reset();
    await database.statement('SELECT', text, [], () => db.pool.query(text), {
      statements: [],
      trace: undefined,
    });
    await database.statement('SELECT', text, [], () => db.pool.query(text));
    const [span] = exporter.getFinishedSpans();
    expect(String(span?.attributes['db.query.text'])).toBe(
      `${text.slice(0, 2048)}…[${text.length - 2048} more characters]`,
    );
  });

  it('bounds an error message quoted in a log line', () => {
    const { logger, lines } = capturingLogger('info');
    logger.error(new Error(`bad input: ${'e'.repeat(1_000_000)}`));
    logger.warn({ input: 'v'.repeat(10_000), list: Array.from({ length: 1000 }, (_, i) => i) }, 'quoted');
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(JSON.stringify(line).length).toBeLessThan(16 * 1024);
    expect(String(lines[0]?.msg)).toMatch(/…\[\d+ more characters\]$/);
    expect((lines[1]?.list as unknown[] | undefined)?.at(-1)).toBe('…[980 more items]');
  });
});

describe('db.collection.name', () => {
  it("is the table a statement's summary names, and absent where it names none", async () => {
    const kept = new InMemorySpanExporter();
    const own = startTelemetry(telemetrySettings({}, 'x'), { spanExporter: kept, runtimeMetrics: false });
    const database = new DatabaseTelemetry({
      tracer: own.tracer,
      meter: own.meter,
      address: databaseAddress(db.url),
    });
    const run = (summary: string, text: string) =>
      database.statement(summary, text, [], () => db.pool.query(text), { statements: [], trace: undefined });
    // Statements without a scope take the active context's parent: the root, here.
    const root = (summary: string, text: string) =>
      database.statement(summary, text, [], () => db.pool.query(text));
    await root('SELECT metrics', 'SELECT count(*) FROM metrics');
    await root('SELECT metrics_revision', 'SELECT revision FROM metrics_revision');
    await root('SELECT', "SELECT pg_try_advisory_lock(hashtext('test'))");
    await root('SELECT', "SELECT to_regclass('metrics')::text");
    await root('INSERT metrics SELECT metrics_staging', 'SELECT 1');
    await run('SELECT metrics', 'SELECT 1');

    const spans = kept.getFinishedSpans();
    expect(
      spans.map((span) => [
        span.name,
        span.attributes['db.operation.name'],
        span.attributes['db.collection.name'],
      ]),
    ).toEqual([
      ['SELECT metrics', 'SELECT', 'metrics'],
      ['SELECT metrics_revision', 'SELECT', 'metrics_revision'],
      ['SELECT', 'SELECT', undefined],
      ['SELECT', 'SELECT', undefined],
      ['INSERT metrics SELECT metrics_staging', 'INSERT', undefined],
    ]);
    expect(spans[1]?.attributes['db.query.summary']).toBe('SELECT metrics_revision');

    const text = await own.scrape();
    const series = [...text.matchAll(/^db_client_operation_duration_count\{([^}]*)\} (\d+)$/gm)].map(
      (match) => `${match[1]} ${match[2]}`,
    );
    expect(series.sort()).toEqual([
      'db_system_name="postgresql",db_operation_name="INSERT" 1',
      'db_system_name="postgresql",db_operation_name="SELECT" 2',
      'db_system_name="postgresql",db_operation_name="SELECT",db_collection_name="metrics" 2',
      'db_system_name="postgresql",db_operation_name="SELECT",db_collection_name="metrics_revision" 1',
    ]);
    await own.shutdown();
  });
});
