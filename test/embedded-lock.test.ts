// One process at a time opens an embedded data directory: the ingest command writes through the
// running server (whose subscribers see the rows), a second server is refused naming the first,
// and the lock of a process that died is taken over.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCK_FILE } from '../src/database/embedded.js';
import { runScript, scriptEnv } from './support/ingest.js';
import { closedPort } from './support/ports.js';
import { runUntilExit, type ServerProcess, startServer } from './support/server-process.js';
import { SseSubscription } from './support/sse.js';

let tempDir: string;
let dataDir: string;
let env: NodeJS.ProcessEnv;
beforeAll(async () => {
  tempDir = await mkdtemp(join(tmpdir(), 'metrics-embedded-lock-'));
  dataDir = join(tempDir, 'pglite');
  // No DATABASE_URL: the embedded database, in a folder of the test's own.
  env = scriptEnv(undefined, { NODE_ENV: 'test', LOG_LEVEL: 'info', EMBEDDED_DATA_DIR: dataDir });
});
afterAll(() => rm(tempDir, { recursive: true, force: true }));

async function graphql<Data>(url: string, query: string): Promise<Data> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query }),
  });
  const body = (await response.json()) as { data?: Data; errors?: unknown };
  if (!body.data) throw new Error(`no data: ${JSON.stringify(body.errors)}`);
  return body.data;
}

const summaryCount = async (url: string) =>
  (await graphql<{ metricsSummary: { count: number } }>(url, '{ metricsSummary { count } }')).metricsSummary
    .count;

/** A pid no process has: one that just exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await once(child, 'exit');
  return child.pid as number;
}

describe('an embedded data directory', () => {
  let server: ServerProcess;
  // Stopped by the last test; here too when an earlier one fails.
  afterAll(() => server?.stop());

  it('lets the ingest command write through the running server, whose subscribers see the rows', async () => {
    server = await startServer(env);
    const lock = JSON.parse(await readFile(join(dataDir, LOCK_FILE), 'utf8'));
    expect(lock).toMatchObject({
      pid: server.child.pid,
      url: expect.stringMatching(/^postgresql:\/\/.*127\.0\.0\.1:\d+/),
    });
    const before = await summaryCount(server.url);
    expect(before).toBeGreaterThan(0); // the first start's sample data

    const subscription = new SseSubscription<{
      metricsAdded: { node: { timestamp: string; concurrency: number } };
    }>(server.url, 'subscription { metricsAdded { node { timestamp concurrency } } }');
    try {
      await subscription.opened;
      expect(subscription.status).toBe(200);
      const timestamp = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000).toISOString();
      const input = `{"timestamp":"${timestamp}","cpu_load":0.5,"concurrency":77}\n`;
      const ingest = await runScript('scripts/ingest.ts', ['--format', 'ndjson'], { env, input });
      expect(ingest.code, ingest.stderr).toBe(0);
      expect(ingest.stderr).toMatch(/ingest: read 1, inserted 1,/);

      expect(await summaryCount(server.url)).toBe(before + 1);
      const [event] = await subscription.take(1, 20_000);
      expect(event?.data?.metricsAdded.node).toEqual({ timestamp, concurrency: 77 });
    } finally {
      subscription.close();
    }
  }, 180_000);

  it('refuses a second server before it opens the folder, naming the first one', async () => {
    const second = await runUntilExit(env, { port: await closedPort() });
    expect(second.code).toBe(1);
    expect(second.output).toContain(`is open in process ${server.child.pid}`);
    expect(second.output).not.toContain('Opening the embedded database');
    // The fix, not a stack trace.
    expect(second.output).not.toMatch(/^\s+at /m);
    // The first one is unharmed.
    expect(await summaryCount(server.url)).toBeGreaterThan(0);
  }, 60_000);

  it('takes over the lock of a process that died, and the rows written through the first server are kept', async () => {
    const count = await summaryCount(server.url);
    expect(await server.stop()).toBe(0);
    await expect(readFile(join(dataDir, LOCK_FILE))).rejects.toMatchObject({ code: 'ENOENT' });

    const dead = await deadPid();
    await writeFile(
      join(dataDir, LOCK_FILE),
      `${JSON.stringify({ pid: dead, url: 'postgresql://postgres@127.0.0.1:9/postgres' })}\n`,
    );
    const restarted = await startServer(env);
    try {
      expect(JSON.parse(await readFile(join(dataDir, LOCK_FILE), 'utf8')).pid).toBe(restarted.child.pid);
      expect(await summaryCount(restarted.url)).toBe(count);
    } finally {
      expect(await restarted.stop()).toBe(0);
    }
  }, 120_000);
});
