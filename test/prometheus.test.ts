// /metrics against the real Prometheus tools: `promtool check metrics` on a live scrape, and every
// query of the Grafana dashboard evaluated by a real Prometheus that scrapes a served app.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../src/http/app.js';
import { startTelemetry, type Telemetry, telemetrySettings } from '../src/observability/telemetry.js';
import { projectRoot } from '../src/paths.js';
import { createTestApp } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { tempDirectory } from './support/ingest.js';
import { closedPort } from './support/ports.js';
import { type ServedApp, serve } from './support/sse.js';

const TOKEN = 'a-token-of-sixteen-chars';
/** What Grafana puts for $__rate_interval: at least four of the test's 1 s scrapes. */
const RATE_INTERVAL = '10s';

let db: TestDatabase;
let telemetry: Telemetry;
let app: App;
let served: ServedApp;

function send(query: string): Promise<string> {
  return fetch(`${served.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ query }),
  }).then((response) => response.text());
}

/** Every kind of request the dashboard shows: reads (a summary twice: a miss, then a hit), an error, a write. */
async function traffic(): Promise<void> {
  await send('query Summary { metricsSummary { count } }');
  await send('query Summary { metricsSummary { count } }');
  await send('query Page { metrics(first: 1) { totalCount } }');
  await send('{ metrics(first: -1) { totalCount } }');
  await send(
    'mutation Load { ingestMetrics(samples: [{ timestamp: "2026-01-01T00:00:00Z", cpuLoad: 1, concurrency: 1 }]) { inserted } }',
  );
}

beforeAll(async () => {
  db = await createTestDatabase();
  telemetry = startTelemetry(telemetrySettings({}, 'metrics-api-test'));
  app = createTestApp(db, { INGEST_TOKEN: TOKEN }, { telemetry });
  served = await serve(app);
  await traffic();
});
afterAll(async () => {
  await served.close();
  await telemetry.shutdown();
  await db.drop();
});

async function scrape(): Promise<string> {
  return (await fetch(`${served.url}/metrics`)).text();
}

describe('GET /metrics', () => {
  it('passes promtool check metrics', async () => {
    const text = await scrape();
    const check = spawnSync('promtool', ['check', 'metrics'], {
      input: text,
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(check.stderr + check.stdout).toBe('');
    expect(check.status).toBe(0);
  });

  it('stays small whatever operation names clients send: each cut short, the distinct ones capped', async () => {
    const capped = startTelemetry(telemetrySettings({}, 'x'), { runtimeMetrics: false });
    const poisoned = createTestApp(db, { METRICS_MAX_OPERATION_NAMES: '10' }, { telemetry: capped });
    const before = (await capped.scrape()).length;
    // Each name 100 KB and unlike the others: unbounded, the labels alone would be 5 MB.
    for (let i = 0; i < 50; i++) {
      const name = `op${String(i).padStart(2, '0')}${'x'.repeat(100_000)}`;
      const response = await poisoned.fetch('http://localhost/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: `query ${name} { metrics(first: 1) { totalCount } }` }),
      });
      expect(response.status).toBe(200);
      expect(await response.text()).not.toMatch(/errors/);
    }
    const text = await capped.scrape();
    expect(text.length - before).toBeLessThan(64 * 1024);
    const names = new Set(
      [...text.matchAll(/graphql_operation_name="([^"]*)"/g)].map((match) => match[1] as string),
    );
    // 10 names, each its first 64 characters marked as cut, and "(other)" for the other 40.
    expect(names.size).toBe(11);
    expect(names).toContain('(other)');
    for (const name of names) expect(name.length).toBeLessThanOrEqual(65);
    expect(text).toMatch(
      /graphql_server_operations_total\{[^}]*graphql_operation_name="\(other\)"[^}]*\} 40$/m,
    );
    await poisoned.dispose();
    await capped.shutdown();
  });
});

/** The PromQL of every panel of the committed dashboard, with Grafana's interval variable filled in. */
async function dashboardQueries(): Promise<{ panel: string; expr: string }[]> {
  const dashboard = JSON.parse(
    await readFile(join(projectRoot, 'deploy/grafana/metrics-api.json'), 'utf8'),
  ) as { panels: { title: string; targets: { expr: string }[] }[] };
  return dashboard.panels.flatMap((panel) =>
    panel.targets.map((target) => ({
      panel: panel.title,
      expr: target.expr.replaceAll('$__rate_interval', RATE_INTERVAL),
    })),
  );
}

interface QueryAnswer {
  status: string;
  error?: string;
  data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

describe('deploy/grafana/metrics-api.json in a real Prometheus', () => {
  let prometheus: ChildProcess | undefined;
  let directory: { path: string; remove(): Promise<void> };
  let api = '';
  beforeAll(async () => {
    directory = await tempDirectory();
    const port = await closedPort();
    api = `http://127.0.0.1:${port}`;
    const config = join(directory.path, 'prometheus.yml');
    await writeFile(
      config,
      [
        'global:',
        '  scrape_interval: 1s',
        '  scrape_timeout: 1s',
        'scrape_configs:',
        '  - job_name: metrics-api',
        '    static_configs:',
        `      - targets: ['${new URL(served.url).host}']`,
        '',
      ].join('\n'),
    );
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(directory.path, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: 'ignore' },
    );
  });
  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      prometheus.kill('SIGTERM');
      await once(prometheus, 'exit');
    }
    await directory.remove();
  });

  async function query(expr: string): Promise<QueryAnswer> {
    const response = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(expr)}`);
    return (await response.json()) as QueryAnswer;
  }

  it('answers every panel, the 5xx share 0 when nothing failed', async () => {
    // Five scrapes at least, with traffic between them, so that every rate has points to work on.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const answer = await query('count_over_time(up{job="metrics-api"}[1m])').catch(() => undefined);
      const scrapes = Number(answer?.data?.result[0]?.value[1] ?? 0);
      if (scrapes >= 5) break;
      if (Date.now() > deadline) throw new Error(`Prometheus scraped ${scrapes} times in 60 s`);
      await traffic();
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect((await query('up{job="metrics-api"}')).data?.result[0]?.value[1]).toBe('1');

    const queries = await dashboardQueries();
    expect(queries.length).toBeGreaterThan(20);
    const empty: string[] = [];
    for (const { panel, expr } of queries) {
      const answer = await query(expr);
      expect(answer.status, `${panel}: ${expr}: ${answer.error}`).toBe('success');
      if ((answer.data?.result.length ?? 0) === 0) empty.push(`${panel}: ${expr}`);
    }
    expect(empty).toEqual([]);

    const [share] = queries.filter(({ panel }) => panel === 'Share of requests answered 5xx');
    const answer = await query(share?.expr ?? '');
    expect(answer.data?.result.map((sample) => Number(sample.value[1]))).toEqual([0]);
  });
});
