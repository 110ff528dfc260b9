// Reads from a real streaming standby (pg_basebackup -R), writes and LISTEN on the primary; and
// several stateless API instances on one database answering alike while writes go on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresConnection } from '../src/database/connection.js';
import { migrateDeploy } from '../src/database/migrations.js';
import type { App } from '../src/http/app.js';
import { readyz } from '../src/http/health.js';
import { createTestApp, createTestService, graphql } from './support/app.js';
import { connectTest } from './support/database.js';
import { type ReplicatedCluster, startReplicatedCluster } from './support/replica.js';
import { SseSubscription, serve } from './support/sse.js';

const TOKEN = 'test-ingest-token-0123456789abcdef';
const ENV = { INGEST_TOKEN: TOKEN, INGEST_MAX_SAMPLES: '10000' };
const DAY = Date.parse('2026-05-01T00:00:00Z');

let cluster: ReplicatedCluster;
let primary: PostgresConnection & { url: string };
let standby: PostgresConnection & { url: string };
/** Reads on the standby. */
let replicated: App;
/** The same service without a replica: the answers to compare with. */
let direct: App;

const withUrl = (url: string) => ({ ...connectTest(url), url });

beforeAll(async () => {
  cluster = await startReplicatedCluster();
  const primaryUrl = cluster.primaryUrl.replace(/\/postgres$/, '/metrics');
  await migrateDeploy(primaryUrl);
  await cluster.caughtUp();
  primary = withUrl(primaryUrl);
  standby = withUrl(cluster.standbyUrl.replace(/\/postgres$/, '/metrics'));
  replicated = createTestService(primary, ENV, { replica: standby }).app;
  direct = createTestApp(primary, ENV);
});
afterAll(async () => {
  await replicated?.dispose();
  await direct?.dispose();
  await standby?.close();
  await primary?.close();
  await cluster?.stop();
});

/** Samples one a minute from `from` (a minute index of DAY), written through the mutation. */
async function ingest(app: App, from: number, count: number): Promise<void> {
  const samples = Array.from({ length: count }, (_, i) => ({
    timestamp: new Date(DAY + (from + i) * 60_000).toISOString(),
    cpuLoad: ((from + i) % 40) / 8,
    concurrency: (from + i) % 17,
  }));
  const result = await graphql(
    app,
    'mutation($s: [MetricInput!]!) { ingestMetrics(samples: $s) { inserted } }',
    { s: samples },
    { authorization: `Bearer ${TOKEN}` },
  );
  expect(result.data).toEqual({ ingestMetrics: { inserted: count } });
}

const READS = /* GraphQL */ `
  query Reads($start: DateTime!, $end: DateTime!) {
    first: metrics(start: $start, end: $end, first: 5) {
      totalCount
      edges { cursor node { id timestamp cpuLoad concurrency } }
      pageInfo { hasNextPage endCursor }
    }
    last: metrics(start: $start, end: $end, last: 3, order: DESC) { edges { node { id } } }
    metricsSummary(start: $start, end: $end) {
      count firstTimestamp lastTimestamp
      cpuLoad { min max avg p50 p95 p99 }
      concurrency { min max avg p95 }
    }
    metricSeries(start: $start, end: $end, bucket: "1h") {
      start count cpuLoad { min max avg } concurrency { min max avg }
    }
  }
`;

const countQuery = '{ metricsSummary { count } }';
const countOf = async (app: App, headers: Record<string, string> = {}) =>
  (await graphql<{ metricsSummary: { count: number } }>(app, countQuery, {}, headers)).data?.metricsSummary
    .count;

describe('reads from a streaming standby', () => {
  it('answers pages, nodes, summaries and series exactly as the primary does', async () => {
    await ingest(direct, 0, 600);
    await cluster.caughtUp();
    const window = {
      start: new Date(DAY + 60 * 60_000).toISOString(),
      end: new Date(DAY + 400 * 60_000).toISOString(),
    };
    const everything = {
      start: new Date(DAY - 86_400_000).toISOString(),
      end: new Date(DAY + 30 * 86_400_000).toISOString(),
    };
    for (const variables of [everything, window]) {
      const onStandby = await graphql(replicated, READS, variables);
      expect(onStandby.errors).toBeUndefined();
      expect(onStandby).toEqual(await graphql(direct, READS, variables));
    }
    const page = await graphql<{ metrics: { edges: { node: { id: string } }[] } }>(
      replicated,
      '{ metrics(first: 2) { edges { node { id } } } }',
    );
    const id = page.data?.metrics.edges[1]?.node.id;
    const node = await graphql(
      replicated,
      'query($id: ID!) { node(id: $id) { id ... on Metric { concurrency } } }',
      {
        id,
      },
    );
    expect(node.data).toEqual({ node: { id, concurrency: 1 } });
  });

  it('shows a write once the standby has replayed it; X-Read-From: primary shows it at once', async () => {
    const before = await countOf(replicated);
    await cluster.pauseReplay();
    try {
      await ingest(replicated, 10_000, 3);
      // The standby still shows the data as it was, remembered summary and all.
      expect(await countOf(replicated)).toBe(before);
      expect(await countOf(replicated, { 'x-read-from': 'replica' })).toBe(before);
      expect(await countOf(replicated, { 'x-read-from': 'primary' })).toBe((before ?? 0) + 3);
      const page = '{ metrics(start: "2026-05-07T00:00:00Z") { edges { node { timestamp } } } }';
      const edges = async (headers: Record<string, string> = {}) =>
        (await graphql<{ metrics: { edges: unknown[] } }>(replicated, page, {}, headers)).data?.metrics.edges;
      expect(await edges()).toEqual([]);
      expect(await edges({ 'x-read-from': 'primary' })).toHaveLength(3);
      const rest = await replicated.fetch('http://localhost/api/metrics?start=2026-05-07T00:00:00Z', {
        headers: { 'x-read-from': 'Primary' },
      });
      expect(await rest.json()).toHaveLength(3);
    } finally {
      await cluster.resumeReplay();
    }
    await cluster.caughtUp();
    // Replayed: the revision moved with the rows, so the remembered answer is not reused.
    expect(await countOf(replicated)).toBe((before ?? 0) + 3);
  });

  it('refuses an X-Read-From it does not know, as the client mistake it is', async () => {
    const response = await replicated.fetch('http://localhost/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-read-from': 'nearest' },
      body: JSON.stringify({ query: countQuery }),
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { errors: { message: string; extensions: { code: string } }[] };
    expect(body.errors[0]?.extensions.code).toBe('BAD_USER_INPUT');
    expect(body.errors[0]?.message).toMatch(/x-read-from: must be primary or replica/);
    const rest = await replicated.fetch('http://localhost/api/metrics', {
      headers: { 'x-read-from': 'nearest' },
    });
    expect(rest.status).toBe(400);
    expect(await rest.json()).toMatchObject({ error: 'Bad Request', header: 'x-read-from' });
  });

  it('delivers live samples from the primary even while the standby lags', async () => {
    const served = await serve(createTestService(primary, ENV, { replica: standby }).app);
    const subscription = new SseSubscription<{ metricsAdded: { node: { timestamp: string } } }>(
      served.url,
      'subscription { metricsAdded { node { timestamp } } }',
    );
    try {
      // A stream opens once its replica listens: nothing written after `opened` can be missed.
      await subscription.opened;
      await cluster.pauseReplay();
      await ingest(direct, 20_000, 2);
      await subscription.take(2);
      expect(subscription.events.map((event) => event.data?.metricsAdded.node.timestamp)).toEqual([
        new Date(DAY + 20_000 * 60_000).toISOString(),
        new Date(DAY + 20_001 * 60_000).toISOString(),
      ]);
    } finally {
      await cluster.resumeReplay();
      subscription.close();
      await served.close();
    }
  });

  it('is ready while both answer, reporting the replica lag, and unavailable while the standby is down', async () => {
    const ready = await replicated.fetch('http://localhost/readyz');
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as { status: string; replica: { lagSeconds: number } };
    expect(body.status).toBe('ready');
    expect(body.replica.lagSeconds).toBeGreaterThanOrEqual(0);

    await cluster.stopStandby();
    try {
      const down = await replicated.fetch('http://localhost/readyz');
      expect(down.status).toBe(503);
      expect(await down.json()).toMatchObject({
        status: 'unavailable',
        reason: expect.stringMatching(/^read replica: /),
      });
      const read = await graphql(replicated, countQuery);
      expect(read.errors?.[0]?.extensions?.code).toBe('DATABASE_UNAVAILABLE');
      // Writes do not need the standby.
      await ingest(replicated, 30_000, 1);
    } finally {
      await cluster.startStandby();
    }
    await cluster.caughtUp();
    expect((await replicated.fetch('http://localhost/readyz')).status).toBe(200);
  });
});

describe('a standby cut off from its primary', () => {
  type Readiness = { status: string; reason?: string; replica?: { streaming: boolean; lagSeconds: number } };
  const readiness = async (app: App) => {
    const response = await app.fetch('http://localhost/readyz');
    return { status: response.status, body: (await response.json()) as Readiness };
  };

  it('is unready while it does not stream, though it answers and its replay matches what it received', async () => {
    await cluster.caughtUp();
    expect(await readiness(replicated)).toEqual({
      status: 200,
      body: { status: 'ready', replica: { streaming: true, lagSeconds: 0 } },
    });
    const before = await countOf(replicated);
    await cluster.cutOff();
    try {
      await ingest(direct, 50_000, 2);
      // Its reads are stale: the rows written on the primary never arrive.
      expect(await countOf(replicated)).toBe(before);
      await expect
        .poll(async () => (await readiness(replicated)).body, { timeout: 15_000, interval: 200 })
        .toMatchObject({
          status: 'unavailable',
          reason: 'read replica: not streaming from the primary (its reads go stale)',
          replica: { streaming: false },
        });
      expect((await readiness(replicated)).status).toBe(503);
    } finally {
      await cluster.reconnect();
    }
    await cluster.caughtUp(30_000);
    expect(await countOf(replicated)).toBe((before ?? 0) + 2);
    await expect
      .poll(async () => (await readiness(replicated)).status, { timeout: 15_000, interval: 200 })
      .toBe(200);
  });

  it('is unready while its replay lags the primary past the bound, measured from the primary position', async () => {
    const { app, store } = createTestService(primary, ENV, { replica: standby });
    try {
      await cluster.caughtUp();
      const probe = async () => {
        const response = await readyz(store, 2000, 1);
        return { status: response.status, body: (await response.json()) as Readiness };
      };
      expect(await probe()).toMatchObject({
        status: 200,
        body: { replica: { streaming: true, lagSeconds: 0 } },
      });
      await cluster.pauseReplay();
      try {
        await ingest(direct, 60_000, 1);
        // The first probe sees the primary ahead; the lag is how long ago that was.
        const first = await probe();
        expect(first.body.replica?.lagSeconds).toBeLessThan(1);
        await new Promise((resolve) => setTimeout(resolve, 1500));
        const late = await probe();
        expect(late.status).toBe(503);
        expect(late.body.replica?.streaming).toBe(true);
        expect(late.body.replica?.lagSeconds).toBeGreaterThanOrEqual(1.5);
        expect(late.body.reason).toMatch(/^read replica: [\d.]+ s behind the primary \(at most 1 s\)$/);
      } finally {
        await cluster.resumeReplay();
      }
      await cluster.caughtUp();
      expect(await probe()).toMatchObject({
        status: 200,
        body: { replica: { streaming: true, lagSeconds: 0 } },
      });
    } finally {
      await app.dispose();
    }
  });
});

describe('several API instances on one database', () => {
  it('answer the same questions identically while writes go on, on the primary and on the standby', async () => {
    const instances = [createTestApp(primary, ENV), createTestApp(primary, ENV), createTestApp(primary, ENV)];
    const onStandby = createTestService(primary, ENV, { replica: standby }).app;
    const window = { start: new Date(DAY).toISOString(), end: new Date(DAY + 600 * 60_000).toISOString() };
    let writing = true;
    const writes = (async () => {
      for (let batch = 0; writing; batch++)
        await ingest(instances[batch % 3] as App, 40_000 + batch * 10, 10);
    })();
    try {
      for (let round = 0; round < 5; round++) {
        const answers = await Promise.all(
          [...instances, onStandby].map((app) => graphql(app, READS, window)),
        );
        expect(answers[0]?.errors).toBeUndefined();
        for (const answer of answers.slice(1)) expect(answer).toEqual(answers[0]);
      }
    } finally {
      writing = false;
      await writes;
      await Promise.all([...instances, onStandby].map((app) => app.dispose()));
    }
    // Every write through any instance is one row, seen by all.
    await cluster.caughtUp();
    const counts = await Promise.all([direct, replicated].map((app) => countOf(app)));
    expect(new Set(counts).size).toBe(1);
  });
});
