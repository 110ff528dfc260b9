import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { closedPort } from './support/ports.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await db.prisma.metric.create({
    data: { timestamp: new Date('2026-11-26T00:00:00Z'), cpuLoad: 0.75, concurrency: 3 },
  });
});
afterAll(() => db.drop());

interface RunningServer {
  child: ChildProcess;
  url: string;
  output: () => string;
}

/** Starts `src/server.ts` as `npm start` would run it, on a free loopback port. */
async function startServer(env: Record<string, string>): Promise<RunningServer> {
  const port = await closedPort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: {
      ...process.env,
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const deadline = Date.now() + 30_000;
  while (!output.includes('metrics-api listening')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`server did not start:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { child, url: `http://127.0.0.1:${port}`, output: () => output };
}

const query = (url: string, body: string) =>
  fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

describe('the server over a real socket', () => {
  it('serves REST and GraphQL, and drains in-flight requests on SIGTERM before exiting 0', async () => {
    const server = await startServer({ DATABASE_URL: db.url });
    expect(server.output()).toContain(`"url":"${server.url}/graphql"`);
    const health = await fetch(`${server.url}/healthz`);
    expect(await health.json()).toBe('Ping!');
    const page = await query(
      server.url,
      JSON.stringify({ query: '{ metrics { edges { node { cpuLoad concurrency } } } }' }),
    );
    expect(await page.json()).toEqual({
      data: { metrics: { edges: [{ node: { cpuLoad: 0.75, concurrency: 3 } }] } },
    });

    // Hold a lock so that the next request is provably in flight when the signal arrives.
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE metrics IN ACCESS EXCLUSIVE MODE');
    const inFlight = query(server.url, JSON.stringify({ query: '{ metricsSummary { count } }' }));
    for (let waited = 0; ; waited += 50) {
      const { rows } = await blocker.query(
        "SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
      );
      if (rows[0].waiting > 0) break;
      if (waited > 10_000) throw new Error('the request never reached the database');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const exited = once(server.child, 'exit');
    server.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(server.child.exitCode).toBeNull();
    // New connections are refused while draining.
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
    await blocker.query('COMMIT');
    await blocker.end();

    const response = await inFlight;
    expect(await response.json()).toEqual({ data: { metricsSummary: { count: 1 } } });
    const [code] = await exited;
    expect(code).toBe(0);
    expect(server.output()).toContain('Stopped');
  });

  it('refuses to start with an invalid environment, listing every problem', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      env: { ...process.env, PORT: 'eighty', DATABASE_POOL_SIZE: '0', DATABASE_URL: 'mysql://x' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const [code] = await once(child, 'exit');
    expect(code).toBe(1);
    expect(stderr).toMatch(/PORT/);
    expect(stderr).toMatch(/DATABASE_POOL_SIZE/);
    expect(stderr).toMatch(/DATABASE_URL/);
  });
});
