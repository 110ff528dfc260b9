// The committed Grafana dashboard asks only for metrics that /metrics exports.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTelemetry, type Telemetry, telemetrySettings } from '../src/observability/telemetry.js';
import { projectRoot } from '../src/paths.js';
import { createTestApp } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

let db: TestDatabase;
let telemetry: Telemetry;
beforeAll(async () => {
  db = await createTestDatabase();
  telemetry = startTelemetry(telemetrySettings({}, 'x'));
});
afterAll(async () => {
  await telemetry.shutdown();
  await db.drop();
});

const METRIC = /\b(?:http|graphql|db|metrics_api|nodejs|v8js|process)_[a-z0-9_]+/g;

describe('deploy/grafana/metrics-api.json', () => {
  it('queries only metrics that GET /metrics exports', async () => {
    const dashboard = JSON.parse(
      await readFile(join(projectRoot, 'deploy/grafana/metrics-api.json'), 'utf8'),
    ) as {
      panels: { targets: { expr: string }[] }[];
    };
    // Metric names: what is left once grouping clauses and label matchers are taken out.
    const names = (expr: string) =>
      expr
        .replace(/\b(by|without) \([^)]*\)/g, '')
        .replace(/\{[^}]*\}/g, '')
        .match(METRIC) ?? [];
    const queried = new Set(
      dashboard.panels.flatMap((panel) => panel.targets.flatMap((target) => names(target.expr))),
    );
    expect(queried.size).toBeGreaterThan(10);

    // Every kind of request the dashboard shows, once.
    const app = createTestApp(db, { INGEST_TOKEN: 'a-token-of-sixteen-chars' }, { telemetry });
    const send = (query: string) =>
      app.fetch('http://localhost/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer a-token-of-sixteen-chars' },
        body: JSON.stringify({ query }),
      });
    await (await send('{ metricsSummary { count } }')).text();
    await (await send('{ metrics(first: -1) { totalCount } }')).text();
    await (
      await send(
        'mutation { ingestMetrics(samples: [{ timestamp: 1800000000, cpuLoad: 1, concurrency: 1 }]) { inserted } }',
      )
    ).text();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const text = await (await app.fetch('http://localhost/metrics')).text();
    const exported = new Set([...text.matchAll(/^([a-zA-Z_:][\w:]*)[{ ]/gm)].map((match) => match[1]));
    const missing = [...queried].filter((name) => !exported.has(name));
    expect(missing).toEqual([]);
  });
});
