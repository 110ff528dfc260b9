// End to end with the real agents: Debian's node_exporter on a loopback port, a real Prometheus
// scraping it every second and remote-writing to the service. The node's load arrives as samples
// of the source its instance names, a GraphQL subscriber sees them come, and each stored value is
// the one Prometheus itself holds for that instant.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestService, graphql } from './support/app.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { closedPort } from './support/ports.js';
import { type ServedApp, SseSubscription, serve } from './support/sse.js';

const TOKEN = 'remote-write-e2e-token-0123456789';

let db: TestDatabase;
let served: ServedApp;
let service: ReturnType<typeof createTestService>;
let directory: string;
const children: ChildProcess[] = [];
let nodeAddress: string;
let prometheusUrl: string;

/** Starts `command`; a start that fails shows its output. Stopped in afterAll. */
function start(command: string, args: string[]): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  });
  child.on('exit', (code) => {
    if (code !== null && code !== 0) console.error(`${command} exited ${code}:\n${output}`);
  });
  children.push(child);
  return child;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await probe().catch(() => undefined);
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  service = createTestService(db, { INGEST_TOKEN: TOKEN });
  served = await serve(service.app);
  directory = await mkdtemp(join(tmpdir(), 'remote-write-e2e-'));
  const nodePort = await closedPort();
  nodeAddress = `127.0.0.1:${nodePort}`;
  start('prometheus-node-exporter', [
    `--web.listen-address=${nodeAddress}`,
    '--collector.disable-defaults',
    '--collector.loadavg',
  ]);
  const prometheusPort = await closedPort();
  prometheusUrl = `http://127.0.0.1:${prometheusPort}`;
  const config = join(directory, 'prometheus.yml');
  await writeFile(
    config,
    `global:
  scrape_interval: 1s
scrape_configs:
  - job_name: node
    static_configs: [{ targets: ['${nodeAddress}'] }]
remote_write:
  - url: ${served.url}/api/v1/write
    authorization: { credentials: ${TOKEN} }
    queue_config: { batch_send_deadline: 500ms, min_backoff: 100ms, max_backoff: 1s }
    metadata_config: { send: false }
`,
  );
  start('prometheus', [
    `--config.file=${config}`,
    `--storage.tsdb.path=${join(directory, 'data')}`,
    `--web.listen-address=127.0.0.1:${prometheusPort}`,
  ]);
}, 30_000);

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  }
  await served?.close();
  await db?.drop();
  if (directory) await rm(directory, { recursive: true, force: true });
});

interface Added {
  metricsAdded: { node: { timestamp: string; cpuLoad: number | null; source: { name: string } } };
}

it('stores node_exporter load pushed by Prometheus as the cpu_load of the node, seen live and equal to what Prometheus holds', async () => {
  const subscription = new SseSubscription<Added>(
    served.url,
    `subscription($source: String) { metricsAdded(source: $source) { node { timestamp cpuLoad source { name } } } }`,
    { source: nodeAddress },
  );
  try {
    await subscription.opened;
    await subscription.until(
      () => subscription.events.length >= 3,
      30_000,
      'three samples pushed by Prometheus',
    );
  } finally {
    subscription.close();
  }
  const arrived = subscription.events.map((event) => event.data?.metricsAdded.node);
  for (const node of arrived) expect(node?.source.name).toBe(nodeAddress);

  // The value Prometheus holds at each instant is the one stored (as a 32-bit float).
  for (const node of arrived) {
    const time = Date.parse(node?.timestamp as string) / 1000;
    const answer = await waitFor('Prometheus to answer', async () => {
      const response = await fetch(`${prometheusUrl}/api/v1/query?query=node_load1&time=${time}`);
      const body = (await response.json()) as { data: { result: { value: [number, string] }[] } };
      return body.data.result[0];
    });
    expect(answer.value[0]).toBe(time);
    expect(node?.cpuLoad).toBeCloseTo(Number(answer.value[1]), 5);
  }

  const { data } = await graphql<{ source: { labels: { name: string; value: string }[] } }>(
    service.app,
    `query($name: String!) { source(name: $name) { labels { name value } } }`,
    { name: nodeAddress },
  );
  expect(data?.source.labels).toEqual([{ name: 'job', value: 'node' }]);
}, 60_000);
