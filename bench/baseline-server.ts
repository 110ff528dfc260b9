/**
 * The "limit" server of the benchmark: node:http + pg, hand-written keyset SQL as prepared
 * statements, JSON.stringify, run as compiled JavaScript. It answers the same data as the service,
 * in the same JSON, with the least code a Node service can have, so its req/s is the practical
 * ceiling for any Node service on this database and machine.
 *
 * Endpoints (all GET, all JSON):
 *   /metrics?after=<epoch ms>&start=<epoch ms>&end=<epoch ms>&limit=<n>
 *       keyset page, oldest first: WHERE timestamp > $after [AND >= start AND < end] ORDER BY timestamp
 *       LIMIT n + 1 (the extra row says whether there is a next page), in the service's answer to
 *       `metrics(first) { edges { cursor node { id timestamp cpuLoad concurrency } } pageInfo { hasNextPage endCursor } }`:
 *       {"data":{"metrics":{"edges":[{"cursor","node":{"id","timestamp" (ISO),"cpuLoad","concurrency"}}],"pageInfo":{...}}}}
 *       (global ids and cursors encoded as the service encodes them)
 *   /legacy?limit=<n>             the same page in /api/metrics' shape: [{id,timestamp (s),cpu_load,concurrency}]
 *   /summary?start=&end=          the service's summary SQL (count, extremes, means, percentiles)
 *   /series?start=&end=&bucket=<s> the service's date_bin series SQL
 *   /healthz                      "Ping!"
 *
 * Environment: DATABASE_URL (required), PORT (default 4100), HOST (127.0.0.1), POOL_SIZE (10, the
 * service's default DATABASE_POOL_SIZE, so both systems hold the same number of connections).
 * BASELINE_MODE=old gives the benchmark's earlier baseline, for comparison: statements not
 * prepared, and /metrics as {"rows":[{id,timestamp,cpuLoad,concurrency}],"hasNextPage","endCursor"}.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import pg from 'pg';

const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) {
  process.stderr.write('baseline-server: DATABASE_URL is required\n');
  process.exit(2);
}
const port = Number(process.env.PORT ?? 4100);
const host = process.env.HOST ?? '127.0.0.1';
const pool = new pg.Pool({ connectionString: databaseUrl, max: Number(process.env.POOL_SIZE ?? 10) });
const old = process.env.BASELINE_MODE === 'old';

/** Statement names by SQL text: each distinct text is parsed and planned once per connection. */
const names = new Map<string, string>();
// biome-ignore lint/suspicious/noExplicitAny: rows are read by column name, as pg.Pool.query types them by default
function query<Row extends pg.QueryResultRow = any>(text: string, values: unknown[]) {
  if (old) return pool.query<Row>({ text, values });
  let name = names.get(text);
  if (!name) {
    name = `baseline_${names.size}`;
    names.set(text, name);
  }
  return pool.query<Row>({ name, text, values });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function timeParam(params: URLSearchParams, name: string): Date | undefined {
  const value = params.get(name);
  if (value === null || value === '') return undefined;
  const date = new Date(Number(value));
  if (Number.isNaN(date.getTime())) throw new RangeError(`${name}: not epoch milliseconds`);
  return date;
}

function limitParam(params: URLSearchParams, fallback: number): number {
  const value = Number(params.get('limit') ?? fallback);
  if (!Number.isInteger(value) || value < 1 || value > 10_000) throw new RangeError('limit: 1 to 10000');
  return value;
}

/** The service's page cursor for a row (domain/cursor.ts). */
function cursorOf(timestamp: Date): string {
  return Buffer.from(`metric:${timestamp.getTime()}`).toString('base64url');
}

interface MetricRow {
  id: string;
  timestamp: Date;
  cpu_load: number;
  concurrency: number;
}

/** The keyset page: one range scan of the unique timestamp index whatever the depth. */
async function page(
  params: URLSearchParams,
  fallbackLimit: number,
): Promise<{ rows: MetricRow[]; more: boolean }> {
  const after: Date | string = timeParam(params, 'after') ?? '-infinity';
  const start = timeParam(params, 'start');
  const end = timeParam(params, 'end');
  const limit = limitParam(params, fallbackLimit);
  const values: unknown[] = [after, limit + 1];
  let where = 'timestamp > $1';
  if (start) {
    values.push(start);
    where += ` AND timestamp >= $${values.length}`;
  }
  if (end) {
    values.push(end);
    where += ` AND timestamp < $${values.length}`;
  }
  const result = await query<MetricRow>(
    `SELECT id, timestamp, cpu_load, concurrency FROM metrics WHERE ${where} ORDER BY timestamp LIMIT $2`,
    values,
  );
  const more = result.rows.length > limit;
  return { rows: more ? result.rows.slice(0, limit) : result.rows, more };
}

function windowWhere(params: URLSearchParams, values: unknown[]): string {
  const conditions: string[] = [];
  const start = timeParam(params, 'start');
  const end = timeParam(params, 'end');
  if (start) {
    values.push(start);
    conditions.push(`timestamp >= $${values.length}`);
  }
  if (end) {
    values.push(end);
    conditions.push(`timestamp < $${values.length}`);
  }
  return conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
}

type Handler = (params: URLSearchParams) => Promise<unknown>;

const routes: Record<string, Handler> = {
  async '/metrics'(params) {
    const { rows, more } = await page(params, 100);
    const last = rows.at(-1);
    if (!old) {
      const edges = rows.map((row) => ({
        cursor: cursorOf(row.timestamp),
        node: {
          id: Buffer.from(`Metric:${row.id}`).toString('base64'),
          timestamp: row.timestamp.toISOString(),
          cpuLoad: row.cpu_load,
          concurrency: row.concurrency,
        },
      }));
      return {
        data: {
          metrics: {
            edges,
            pageInfo: { hasNextPage: more, endCursor: last ? cursorOf(last.timestamp) : null },
          },
        },
      };
    }
    return {
      rows: rows.map((row) => ({
        id: row.id,
        timestamp: row.timestamp,
        cpuLoad: row.cpu_load,
        concurrency: row.concurrency,
      })),
      hasNextPage: more,
      endCursor: last ? String(last.timestamp.getTime()) : null,
    };
  },

  async '/legacy'(params) {
    const { rows } = await page(params, 1000);
    return rows.map((row) => ({
      id: Number(row.id),
      timestamp: row.timestamp.getTime() / 1000,
      cpu_load: row.cpu_load,
      concurrency: row.concurrency,
    }));
  },

  async '/summary'(params) {
    const values: unknown[] = [];
    const where = windowWhere(params, values);
    const result = await query(
      `SELECT count(*)::int AS count,
             min("timestamp") AS first,
             max("timestamp") AS last,
             min(cpu_load) AS cpu_min,
             max(cpu_load) AS cpu_max,
             avg(cpu_load)::real AS cpu_avg,
             (percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY cpu_load))::real[] AS cpu_percentiles,
             min(concurrency) AS concurrency_min,
             max(concurrency) AS concurrency_max,
             avg(concurrency)::float8 AS concurrency_avg,
             percentile_cont(0.95) WITHIN GROUP (ORDER BY concurrency) AS concurrency_p95
        FROM metrics ${where}`,
      values,
    );
    const row = result.rows[0];
    const [p50 = null, p95 = null, p99 = null] = row.cpu_percentiles ?? [];
    return {
      count: row.count,
      firstTimestamp: row.first,
      lastTimestamp: row.last,
      cpuLoad: { min: row.cpu_min, max: row.cpu_max, avg: row.cpu_avg, p50, p95, p99 },
      concurrency: {
        min: row.concurrency_min,
        max: row.concurrency_max,
        avg: row.concurrency_avg,
        p95: row.concurrency_p95,
      },
    };
  },

  async '/series'(params) {
    const bucket = Number(params.get('bucket') ?? 60);
    if (!Number.isInteger(bucket) || bucket < 1) throw new RangeError('bucket: whole seconds');
    const values: unknown[] = [bucket];
    const where = windowWhere(params, values);
    const result = await query(
      `SELECT date_bin(make_interval(secs => $1::int), "timestamp", TIMESTAMPTZ 'epoch') AS bucket,
             count(*)::int AS count,
             min(cpu_load) AS cpu_min,
             max(cpu_load) AS cpu_max,
             avg(cpu_load)::real AS cpu_avg,
             min(concurrency) AS concurrency_min,
             max(concurrency) AS concurrency_max,
             avg(concurrency)::float8 AS concurrency_avg
        FROM metrics ${where}
       GROUP BY bucket
       ORDER BY bucket`,
      values,
    );
    return result.rows.map((row) => ({
      start: row.bucket,
      count: row.count,
      cpuLoad: { min: row.cpu_min, max: row.cpu_max, avg: row.cpu_avg },
      concurrency: { min: row.concurrency_min, max: row.concurrency_max, avg: row.concurrency_avg },
    }));
  },

  async '/healthz'() {
    return 'Ping!';
  },
};

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://baseline');
  const route = routes[url.pathname];
  if (!route || req.method !== 'GET') {
    send(res, 404, { error: 'Not Found' });
    return;
  }
  try {
    send(res, 200, await route(url.searchParams));
  } catch (error) {
    if (error instanceof RangeError) send(res, 400, { error: error.message });
    else {
      process.stderr.write(`baseline-server: ${(error as Error).stack ?? String(error)}\n`);
      send(res, 500, { error: 'Internal Server Error' });
    }
  }
}

const server = createServer((req, res) => {
  void handle(req, res);
});
server.listen(port, host, () => {
  process.stdout.write(`baseline-server listening on http://${host}:${port}\n`);
});

function shutdown() {
  server.close();
  server.closeIdleConnections();
  void pool.end().then(() => process.exit(0));
}
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
