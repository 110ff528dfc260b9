// The Prometheus-compatible read API over HTTP, with Prometheus 2.42 as the oracle: the same data
// set pushed to the service through its remote-write receiver and built into Prometheus' TSDB by
// promtool; every query of the conformance list answered by both; promtool's own client pointed at
// the service; the requests Grafana makes; and the errors.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../src/paths.js';
import type { QueryData } from '../src/promql/index.js';
import { remoteWriteBody, type TestSeries } from './support/agent-payloads.js';
import { createTestApp } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { connectLogged } from './support/logged-statements.js';
import { differences, type Outcome, theirs } from './support/promql-compare.js';
import {
  CONFORMANCE_ERRORS,
  CONFORMANCE_QUERIES,
  INSTANT_TIMES_MS,
  RANGE_WINDOWS,
} from './support/promql-conformance-queries.js';
import { DATASET, datasetAsOpenMetrics } from './support/promql-dataset.js';
import { PROMTOOL_BINARY, type RunningPrometheus, startPrometheus } from './support/promql-prometheus.js';
import { type ServedApp, serve } from './support/sse.js';

const TOKEN = 'prometheus-api-token-0123456789';
const READ_TOKEN = 'prometheus-api-read-token-0123';

let db: TestDatabase;
let served: ServedApp;
let prometheus: RunningPrometheus;

/** The data set as remote-write pushes of at most 2,000 samples, as Prometheus sends them. */
function pushes(): TestSeries[][] {
  const batches: TestSeries[][] = [];
  for (const series of DATASET) {
    for (let at = 0; at < series.timestamps.length; at += 2000) {
      batches.push([
        {
          labels: series.labels,
          samples: series.timestamps
            .slice(at, at + 2000)
            .map((timestamp, i) => ({ timestamp, value: series.values[at + i] as number })),
        },
      ]);
    }
  }
  return batches;
}

beforeAll(async () => {
  [db, prometheus] = await Promise.all([createTestDatabase(), startPrometheus(datasetAsOpenMetrics())]);
  const app = createTestApp(db, {
    INGEST_TOKEN: TOKEN,
    READ_TOKEN,
    AGENT_CPU_LOAD_METRICS: 'cpu_load',
    AGENT_CONCURRENCY_METRICS: 'concurrency',
    AGENT_SOURCE_LABELS: 'source',
  });
  served = await serve(app);
  for (const batch of pushes()) {
    const response = await fetch(`${served.url}/api/v1/write`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-protobuf',
        'content-encoding': 'snappy',
        authorization: `Bearer ${TOKEN}`,
      },
      body: remoteWriteBody(batch) as BodyInit,
    });
    expect(response.status).toBe(204);
  }
}, 60_000);
afterAll(async () => {
  await served?.close();
  await prometheus?.stop();
  await db?.drop();
});

const readHeaders = { authorization: `Bearer ${READ_TOKEN}` };

async function get(path: string, parameters: Record<string, string | string[]> = {}): Promise<Response> {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(parameters))
    for (const one of Array.isArray(value) ? value : [value]) query.append(name, one);
  return fetch(`${served.url}${path}?${query}`, { headers: readHeaders });
}

async function ours(path: string, parameters: Record<string, string>): Promise<Outcome> {
  const body = (await (await get(path, parameters)).json()) as
    | { status: 'success'; data: QueryData }
    | { status: 'error'; errorType: string; error: string };
  return body.status === 'success'
    ? body
    : {
        status: 'error',
        errorType: body.errorType,
        error: body.error.replace('invalid parameter "query": ', ''),
      };
}

const seconds = (ms: number) => String(ms / 1000);
/** Fewer times and windows than the evaluator's own test: each is a request to both servers. */
const TIMES = INSTANT_TIMES_MS.filter((_, index) => index % 3 === 1);
const WINDOWS = RANGE_WINDOWS.slice(0, 3);

describe('answers as Prometheus 2.42 over the same data', () => {
  it.each(CONFORMANCE_QUERIES)('$query', async ({ query, ordered = false, instantOnly = false }) => {
    const asked = [
      ...TIMES.map((time) => ({ path: '/api/v1/query', parameters: { query, time: seconds(time) } })),
      ...(instantOnly ? [] : WINDOWS).map(({ startMs, endMs, stepMs }) => ({
        path: '/api/v1/query_range',
        parameters: { query, start: seconds(startMs), end: seconds(endMs), step: seconds(stepMs) },
      })),
    ];
    const mismatches: string[] = [];
    for (const { path, parameters } of asked) {
      const [mine, prometheusOwn] = await Promise.all([
        ours(path, parameters),
        prometheus.get(path, parameters).then(theirs),
      ]);
      for (const line of differences(mine, prometheusOwn, ordered))
        mismatches.push(`${path} ${JSON.stringify(parameters)}: ${line}`);
    }
    expect(mismatches).toEqual([]);
  });

  it.each(CONFORMANCE_ERRORS)('refuses %j with the same error type and status', async (query) => {
    const parameters = { query, time: seconds(INSTANT_TIMES_MS[3] as number) };
    const [mine, prometheusOwn] = await Promise.all([
      get('/api/v1/query', parameters),
      fetch(`${prometheus.url}/api/v1/query?${new URLSearchParams(parameters)}`),
    ]);
    expect(mine.status).toBe(prometheusOwn.status);
    const [a, b] = [await mine.json(), await prometheusOwn.json()];
    expect(a).toEqual(b);
  });
});

/** The whole minutes of the data set (it starts between two): where ranges read the minute rollups. */
const FIRST_MINUTE_MS = Math.ceil((DATASET[0]?.timestamps[0] as number) / 60_000) * 60_000;
/**
 * Rollups sum CPU loads as stored, 32-bit floats widened, where Prometheus sums the data set's
 * decimals: equal to float32's precision, not to the last bit.
 */
const FLOAT32_TOLERANCE = 1e-6;

describe('range functions over whole minutes read the minute rollups and answer as Prometheus', () => {
  it("gives a mean of CPU loads to float32's seven digits, not the widening's", async () => {
    const parameters = {
      query: 'avg_over_time(cpu_load{source="web-1"}[5m])',
      time: seconds(FIRST_MINUTE_MS + 45 * 60_000),
    };
    const mine = (await (await get('/api/v1/query', parameters)).json()) as {
      data: { result: { value: [number, string] }[] };
    };
    const theirsAnswer = (await prometheus.get('/api/v1/query', parameters)) as {
      data: { result: { value: [number, string] }[] };
    };
    const value = mine.data.result[0]?.value[1] as string;
    expect(value).toBe(String(Number(Number(theirsAnswer.data.result[0]?.value[1]).toPrecision(7))));
  });

  const queries = CONFORMANCE_QUERIES.filter(({ query }) =>
    /\b(min|max|sum|count|avg)_over_time\(/.test(query),
  );

  it.each(queries)('$query', async ({ query, ordered = false }) => {
    const logged = connectLogged(db.url);
    const open = createTestApp({ ...logged.connection, url: db.url });
    try {
      const asked = [
        ...[1, 45, 61, 105].map((minute) => ({
          path: '/api/v1/query',
          parameters: { query, time: seconds(FIRST_MINUTE_MS + minute * 60_000) },
        })),
        ...[60_000, 300_000].map((stepMs) => ({
          path: '/api/v1/query_range',
          parameters: {
            query,
            start: seconds(FIRST_MINUTE_MS),
            end: seconds(FIRST_MINUTE_MS + 120 * 60_000),
            step: seconds(stepMs),
          },
        })),
      ];
      const mismatches: string[] = [];
      for (const { path, parameters } of asked) {
        const response = await open.fetch(`http://localhost${path}?${new URLSearchParams(parameters)}`);
        const mine = (await response.json()) as Outcome;
        const prometheusOwn = theirs(await prometheus.get(path, parameters));
        for (const line of differences(mine, prometheusOwn, ordered, FLOAT32_TOLERANCE))
          mismatches.push(`${path} ${JSON.stringify(parameters)}: ${line}`);
      }
      expect(mismatches).toEqual([]);
      if (!query.includes(' offset ') && /\[\d+[mh]/.test(query))
        expect(logged.statements.some(({ text }) => text.includes('metric_rollups_minute'))).toBe(true);
    } finally {
      await open.dispose();
      await logged.connection.close();
    }
  });
});

describe('the metadata endpoints', () => {
  const window = { start: seconds(DATASET[0]?.timestamps[0] as number), end: seconds(Date.now()) };

  it('lists label names, label values and series as Prometheus does', async () => {
    for (const [path, parameters] of [
      ['/api/v1/labels', window],
      ['/api/v1/label/source/values', window],
      ['/api/v1/label/__name__/values', window],
      ['/api/v1/label/tier/values', { ...window, 'match[]': 'cpu_load{region="eu"}' }],
      ['/api/v1/series', { ...window, 'match[]': 'cpu_load{tier=~"w.*"}' }],
    ] as const) {
      const mine = (await (await get(path, parameters)).json()) as { data: unknown[] };
      const theirsAnswer = await prometheus.get(path, parameters);
      const sort = (list: unknown[]) => list.map((item) => JSON.stringify(item)).sort();
      expect(sort(mine.data), path).toEqual(sort((theirsAnswer as { data: unknown[] }).data));
    }
  });

  it('answers the health check (1+1), buildinfo and metadata', async () => {
    const health = (await (
      await get('/api/v1/query', { query: '1+1', time: '1700000000' })
    ).json()) as object;
    expect(health).toEqual({ status: 'success', data: { resultType: 'scalar', result: [1700000000, '2'] } });
    const build = (await (await get('/api/v1/status/buildinfo')).json()) as { data: { version: string } };
    expect(build.data.version).toMatch(/^2\.\d+\.\d+$/);
    const metadata = (await (await get('/api/v1/metadata')).json()) as {
      data: Record<string, { type: string }[]>;
    };
    expect(Object.keys(metadata.data).sort()).toEqual(['concurrency', 'cpu_load']);
    expect(metadata.data.cpu_load?.[0]?.type).toBe('gauge');
  });

  it('takes its parameters as a form, as Grafana posts them', async () => {
    const response = await fetch(`${served.url}/api/v1/query_range`, {
      method: 'POST',
      headers: { ...readHeaders, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        query: 'max by (region) (max_over_time(cpu_load[5m]))',
        start: '1700000000',
        end: '1700003600',
        step: '60',
      }),
    });
    const body = (await response.json()) as {
      status: string;
      data: { resultType: string; result: unknown[] };
    };
    expect(body.status).toBe('success');
    expect(body.data.resultType).toBe('matrix');
    expect(body.data.result).toHaveLength(2);
  });
});

describe("promtool's client against the service", () => {
  /** promtool's output for `args` with `server` in its place; run asynchronously, as the service answers in this process. */
  async function promtool(server: string, args: (server: string) => string[]): Promise<string> {
    const { stdout } = await promisify(execFile)(PROMTOOL_BINARY, ['query', ...args(server)], {
      timeout: 20_000,
    });
    return stdout;
  }

  it('prints the same answers for query instant, query range, query labels and query series', async () => {
    // promtool sends no token: an app of its own on the same database, reads open.
    const open = await serve(createTestApp(db));
    try {
      const time = seconds(INSTANT_TIMES_MS[4] as number);
      const start = seconds(RANGE_WINDOWS[0]?.startMs as number);
      const end = seconds(RANGE_WINDOWS[0]?.endMs as number);
      for (const args of [
        (server: string) => ['instant', `--time=${time}`, server, 'sum by (tier) (cpu_load)'],
        (server: string) => ['instant', `--time=${time}`, server, 'cpu_load{region="eu"}'],
        (server: string) => [
          'range',
          `--start=${start}`,
          `--end=${end}`,
          '--step=5m',
          server,
          'avg_over_time(concurrency{source="web-1"}[5m])',
        ],
        (server: string) => ['labels', `--start=${start}`, `--end=${end}`, server, 'region'],
        (server: string) => [
          'series',
          '--match=concurrency{tier="db"}',
          `--start=${start}`,
          `--end=${end}`,
          server,
        ],
      ]) {
        const mine = await promtool(open.url, args);
        expect(mine.length).toBeGreaterThan(0);
        // Values to 12 digits: the service stores CPU loads as 32-bit floats (the data set's
        // 3.3529999999999998 comes back 3.353), and means may differ in their last bit.
        const sortedLines = (text: string) =>
          text
            .replace(/(\S+) @\[/g, (_, value: string) => `${Number(value).toPrecision(12)} @[`)
            .split('\n')
            .sort()
            .join('\n');
        expect(sortedLines(mine), args('').join(' ')).toBe(sortedLines(await promtool(prometheus.url, args)));
      }
    } finally {
      await open.close();
    }
  });
});

describe('refusals', () => {
  it('401 without the read token', async () => {
    const response = await fetch(`${served.url}/api/v1/query?query=cpu_load`);
    expect(response.status).toBe(401);
  });

  it('bad_data naming what is not supported, or what is wrong with a parameter', async () => {
    const unsupported = await get('/api/v1/query', { query: 'rate(cpu_load[5m])' });
    expect(unsupported.status).toBe(400);
    expect(await unsupported.json()).toEqual({
      status: 'error',
      errorType: 'bad_data',
      error: 'invalid parameter "query": unsupported in this service: function "rate"',
    });
    const badTime = (await (await get('/api/v1/query', { query: 'cpu_load', time: 'yesterday' })).json()) as {
      error: string;
    };
    expect(badTime.error).toBe('invalid parameter "time": cannot parse "yesterday" to a valid timestamp');
    const tooFine = await get('/api/v1/query_range', {
      query: 'cpu_load',
      start: '0',
      end: '86400',
      step: '1',
    });
    expect(tooFine.status).toBe(400);
    expect(((await tooFine.json()) as { error: string }).error).toMatch(/11,000 points/);
    const badRegex = await get('/api/v1/query', { query: 'cpu_load{source=~"web-("}' });
    expect(badRegex.status).toBe(400);
    // Times far outside what PostgreSQL holds are answered (nothing is there), not refused by it.
    for (const time of ['8e12', '-8e12']) {
      const far = await get('/api/v1/query', { query: 'max_over_time(cpu_load[5m])', time });
      expect(far.status).toBe(200);
      expect(((await far.json()) as { data: { result: unknown[] } }).data.result).toEqual([]);
    }
    // Beyond the dates JavaScript holds (±275,000 years), a time is refused.
    expect(
      (await get('/api/v1/query_range', { query: '1', start: '1e17', end: '1e17', step: '1' })).status,
    ).toBe(400);
    // Nesting the parser cannot follow is the client's mistake, not a crash.
    const deep = await fetch(`${served.url}/api/v1/query`, {
      method: 'POST',
      headers: { ...readHeaders, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ query: `${'-'.repeat(9000)}1` }),
    });
    expect(deep.status, await deep.clone().text()).toBeLessThan(500);
    const unencoded = await get('/api/v1/label/%E0%A4%A/values');
    expect(unencoded.status).toBe(400);
    const flagged = await get('/api/v1/query', {
      query: '{__name__=~"(?i)CPU_LOAD", source=~"(?i)WEB-1"}',
      time: '1700001000',
    });
    expect(((await flagged.json()) as { data: { result: unknown[] } }).data.result).toHaveLength(1);
    const selectors = Array.from({ length: 101 }, (_, index) => `cpu_load{source="s${index}"}`);
    const tooMany = await get('/api/v1/series', { 'match[]': selectors });
    expect(tooMany.status).toBe(400);
    expect(((await tooMany.json()) as { error: string }).error).toBe(
      'at most 100 match[] selectors a request, got 101',
    );
  });
});

/**
 * What Grafana (10 and 11, Prometheus data source, `httpMethod: POST`) sends, request by request:
 * docs/prometheus-api.md lists them. Panels' queries come from deploy/grafana/samples.json, with the
 * template variables as Grafana fills them ($source: All, $__interval: the step).
 */
describe('the requests Grafana makes', () => {
  const [start, end] = [
    seconds(RANGE_WINDOWS[0]?.startMs as number),
    seconds(RANGE_WINDOWS[0]?.endMs as number),
  ];
  const post = (path: string, form: Record<string, string>) =>
    fetch(`${served.url}${path}`, {
      method: 'POST',
      headers: {
        ...readHeaders,
        'content-type': 'application/x-www-form-urlencoded',
        'x-grafana-org-id': '1',
      },
      body: new URLSearchParams(form),
    });
  const succeeded = async (response: Response) => {
    const body = (await response.json()) as { status: string; data: unknown };
    expect(response.status, JSON.stringify(body)).toBe(200);
    expect(body.status).toBe('success');
    return body.data;
  };

  it('the health check (Save & test): 1+1 and buildinfo', async () => {
    expect(await succeeded(await get('/api/v1/query', { query: '1+1', time: end }))).toEqual({
      resultType: 'scalar',
      result: [Number(end), '2'],
    });
    expect(await succeeded(await get('/api/v1/status/buildinfo'))).toMatchObject({ version: '2.42.0' });
  });

  it('the metric browser and the query builder: names, labels, values, series, metadata', async () => {
    expect(await succeeded(await get('/api/v1/label/__name__/values', { start, end }))).toEqual([
      'concurrency',
      'cpu_load',
    ]);
    expect(
      await succeeded(await get('/api/v1/labels', { start, end, 'match[]': '{__name__="cpu_load"}' })),
    ).toEqual(['__name__', 'region', 'source', 'tier']);
    const series = (await succeeded(
      await post('/api/v1/series', { 'match[]': 'cpu_load', start, end }),
    )) as object[];
    expect(series).toHaveLength(5);
    expect(Object.keys((await succeeded(await get('/api/v1/metadata'))) as object)).toEqual([
      'concurrency',
      'cpu_load',
    ]);
  });

  it("the dashboard's variable: label_values(cpu_load, source)", async () => {
    expect(
      await succeeded(await get('/api/v1/label/source/values', { 'match[]': 'cpu_load', start, end })),
    ).toEqual(['batch-1', 'db-1', 'db-2', 'web-1', 'web-2']);
  });

  it('every panel of deploy/grafana/samples.json, answered as Prometheus answers it; exemplars empty', async () => {
    const dashboard = JSON.parse(
      await readFile(join(projectRoot, 'deploy/grafana/samples.json'), 'utf8'),
    ) as {
      panels: { targets: { expr: string; instant?: boolean }[] }[];
    };
    const targets = dashboard.panels.flatMap((panel) => panel.targets);
    expect(targets.length).toBeGreaterThanOrEqual(5);
    for (const { expr, instant } of targets) {
      const query = expr.replaceAll('$source', '.*').replaceAll('$__interval', '60s');
      const [path, form] = instant
        ? ['/api/v1/query', { query, time: end }]
        : ['/api/v1/query_range', { query, start, end, step: '60' }];
      const mine: Outcome = {
        status: 'success',
        data: (await succeeded(await post(path, form))) as QueryData,
      };
      const prometheusOwn = theirs(await prometheus.get(path, form));
      expect(differences(mine, prometheusOwn, instant === true), query).toEqual([]);
      expect(await succeeded(await post('/api/v1/query_exemplars', { query, start, end }))).toEqual([]);
    }
  });
});
