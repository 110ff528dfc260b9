import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { codeMigrations } from '../src/database/migrations.js';
import { openDatabase } from '../src/database/open.js';
import { createLogger } from '../src/observability/logger.js';
import { projectRoot } from '../src/paths.js';
import { createEmptyDatabase, createTestDatabase, type TestDatabase } from './support/database.js';
import { WITHOUT_DOTENV } from './support/environment.js';
import { closedPort } from './support/ports.js';
import { runUntilExit as runServerUntilExit } from './support/server-process.js';

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

const MAIN = join(projectRoot, 'src/main.ts');

/** The test runner's environment without the variables the service reads, so a test sets each one. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of ['NODE_ENV', 'HOST', 'PORT', 'LOG_LEVEL', 'DATABASE_URL', 'EMBEDDED_DATA_DIR'])
    delete env[name];
  return env;
}

/**
 * Starts `src/main.ts` as `npm start` would run it, on a free loopback port (unless `port` is
 * given: then the environment or a .env file names it). With `tty`, under `script`, which gives the
 * server a terminal as its stdout.
 */
async function startServer(
  env: Record<string, string>,
  options: { cwd?: string; port?: number; tty?: boolean } = {},
): Promise<RunningServer> {
  const port = options.port ?? (await closedPort());
  const fullEnv = {
    ...cleanEnv(),
    ...(options.cwd === undefined ? WITHOUT_DOTENV : {}),
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    ...(options.port === undefined ? { PORT: String(port) } : {}),
    ...env,
  };
  // tsx by its file URL: a --import specifier resolves from the working directory.
  const command = [process.execPath, '--import', import.meta.resolve('tsx'), MAIN];
  const child = options.tty
    ? spawn('script', ['-qfec', command.map((word) => `'${word}'`).join(' '), '/dev/null'], {
        cwd: options.cwd ?? projectRoot,
        env: fullEnv,
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true,
      })
    : spawn(command[0] as string, command.slice(1), {
        cwd: options.cwd ?? projectRoot,
        env: fullEnv,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const deadline = Date.now() + 60_000;
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
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
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

/** Stops a server started by startServer and waits for it to exit. */
async function stopServer(server: RunningServer): Promise<void> {
  const exited = once(server.child, 'exit');
  // `script` runs the server in a process group of its own.
  if (server.child.spawnargs[0] === 'script') process.kill(-(server.child.pid as number), 'SIGTERM');
  else server.child.kill('SIGTERM');
  await exited;
}

describe('configuration from .env', () => {
  it('reads .env in the working directory, and the real environment wins over it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'metrics-dotenv-'));
    try {
      const [filePort, environmentPort] = [await closedPort(), await closedPort()];
      await writeFile(join(dir, '.env'), `PORT=${filePort}\nDATABASE_URL=${db.url}\n`);
      const fromFile = await startServer({}, { cwd: dir, port: filePort });
      try {
        const page = await query(fromFile.url, JSON.stringify({ query: '{ metricsSummary { count } }' }));
        expect(await page.json()).toEqual({ data: { metricsSummary: { count: 1 } } });
      } finally {
        await stopServer(fromFile);
      }
      const fromEnvironment = await startServer(
        { PORT: String(environmentPort) },
        { cwd: dir, port: environmentPort },
      );
      try {
        expect((await fetch(`${fromEnvironment.url}/healthz`)).status).toBe(200);
        await expect(fetch(`http://127.0.0.1:${filePort}/healthz`)).rejects.toThrow();
      } finally {
        await stopServer(fromEnvironment);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('logs', () => {
  it('are pretty on a terminal in development and JSON lines on a pipe or in production', async () => {
    const pretty = await startServer({ DATABASE_URL: db.url, NODE_ENV: 'development' }, { tty: true });
    await stopServer(pretty);
    expect(pretty.output()).toMatch(/INFO.*metrics-api listening/);
    expect(pretty.output()).not.toMatch(/^\{"level"/m);

    const production = await startServer(
      { DATABASE_URL: db.url, NODE_ENV: 'production', METRICS_PUBLIC: 'true' },
      { tty: true },
    );
    await stopServer(production);
    expect(production.output()).toMatch(/^\{"level":30,.*"msg":"metrics-api listening"/m);

    const piped = await startServer({ DATABASE_URL: db.url, NODE_ENV: 'development' });
    await stopServer(piped);
    expect(piped.output()).toMatch(/^\{"level":30,.*"msg":"metrics-api listening"/m);
  });
});

describe('a chunked request body over a real socket', () => {
  it('is accepted without Content-Length, and refused with 413 past MAX_BODY_BYTES', async () => {
    const server = await startServer({ DATABASE_URL: db.url, MAX_BODY_BYTES: '2048' });
    const post = (body: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const url = new URL(`${server.url}/graphql`);
        const outgoing = request(
          {
            host: url.hostname,
            port: url.port,
            path: url.pathname,
            method: 'POST',
            headers: { 'content-type': 'application/json' },
          },
          (response) => {
            let text = '';
            response.on('data', (chunk) => {
              text += chunk;
            });
            response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
          },
        );
        outgoing.on('error', reject);
        // Two writes before end(): node:http sends Transfer-Encoding: chunked.
        outgoing.write(body.slice(0, 10));
        outgoing.end(body.slice(10));
      });
    try {
      const small = await post(JSON.stringify({ query: '{ metricsSummary { count } }' }));
      expect(small).toEqual({
        status: 200,
        body: JSON.stringify({ data: { metricsSummary: { count: 1 } } }),
      });
      const large = await post(
        JSON.stringify({ query: '{ metricsSummary { count } }', variables: { pad: 'x'.repeat(5000) } }),
      );
      expect(large.status).toBe(413);
      expect(JSON.parse(large.body)).toMatchObject({ error: 'Payload Too Large' });
    } finally {
      await stopServer(server);
    }
  });
});

describe('the embedded database', () => {
  it('is seeded with the sample data on the first start of a new data directory, and only then', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'metrics-first-start-'));
    const dataDir = join(dir, 'pglite');
    const count = async (url: string) =>
      (await (await query(url, JSON.stringify({ query: '{ metricsSummary { count } }' }))).json()).data
        .metricsSummary.count;
    try {
      const first = await startServer({ EMBEDDED_DATA_DIR: dataDir });
      try {
        expect(await count(first.url)).toBe(1440);
      } finally {
        await stopServer(first);
      }
      const config = parseConfig({ EMBEDDED_DATA_DIR: dataDir, LOG_LEVEL: 'silent' });
      const database = await openDatabase(config, createLogger(config, { service: 'test' }));
      await database.pool.query('DELETE FROM metrics');
      await database.close();
      const second = await startServer({ EMBEDDED_DATA_DIR: dataDir });
      try {
        expect(await count(second.url)).toBe(0);
      } finally {
        await stopServer(second);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('METRICS_PORT', () => {
  it('moves /metrics to a port of its own, which serves nothing else', async () => {
    const metricsPort = await closedPort();
    const server = await startServer({ DATABASE_URL: db.url, METRICS_PORT: String(metricsPort) });
    try {
      await (await query(server.url, JSON.stringify({ query: '{ metricsSummary { count } }' }))).text();
      const scrape = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      expect(scrape.status).toBe(200);
      expect(await scrape.text()).toMatch(
        /^http_server_request_duration_count\{.*http_route="\/graphql"\} 1$/m,
      );
      expect((await fetch(`http://127.0.0.1:${metricsPort}/graphql`)).status).toBe(404);
      expect((await fetch(`${server.url}/metrics`)).status).toBe(404);
    } finally {
      await stopServer(server);
    }
  });
});

/** Runs `src/main.ts` with `env` (PORT included) until it exits: its exit code and output. */
const runUntilExit = ({ PORT, ...env }: Record<string, string>) =>
  runServerUntilExit(
    { ...cleanEnv(), ...WITHOUT_DOTENV, NODE_ENV: 'test', LOG_LEVEL: 'info', ...env },
    { port: Number(PORT) },
  );

/** What a refusal to start must not print: a stack trace, or that it serves. */
function expectPlainRefusal({ code, output }: { code: number | null; output: string }) {
  expect(code, output).toBe(1);
  expect(output).not.toMatch(/^\s+at /m);
  expect(output).not.toContain('metrics-api listening');
}

async function queryOne<Row extends pg.QueryResultRow>(url: string, text: string): Promise<Row | undefined> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<Row>(text)).rows[0];
  } finally {
    await client.end();
  }
}

describe("a database whose schema is not the code's", () => {
  it('without migrations: refuses to start, naming them and `npm run db:deploy`, before touching it', async () => {
    const empty = await createEmptyDatabase();
    try {
      const port = await closedPort();
      const run = await runUntilExit({ DATABASE_URL: empty.url, PORT: String(port) });
      expectPlainRefusal(run);
      const migrations = await codeMigrations();
      expect(migrations.length).toBeGreaterThan(0);
      expect(run.output).toContain(
        `The database (DATABASE_URL) is behind the code: ${migrations.length} migration(s) not applied: ${migrations.join(', ')}. ` +
          'Apply them with `npm run db:deploy` (same DATABASE_URL), or start with MIGRATE_ON_START=true.',
      );
      // Nothing made in the empty database: no pg_partman, no table.
      expect(
        await queryOne(
          empty.url,
          "SELECT (SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql')::int AS extensions, (SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace)::int AS relations",
        ),
      ).toEqual({ extensions: 0, relations: 0 });
    } finally {
      await empty.drop();
    }
  });

  it('without migrations and MIGRATE_ON_START=true: applies them, then serves', async () => {
    const empty = await createEmptyDatabase();
    try {
      const server = await startServer({ DATABASE_URL: empty.url, MIGRATE_ON_START: 'true' });
      try {
        expect(server.output()).toContain('Migrations applied');
        const page = await query(server.url, JSON.stringify({ query: '{ metricsSummary { count } }' }));
        expect(await page.json()).toEqual({ data: { metricsSummary: { count: 0 } } });
        expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
      } finally {
        await stopServer(server);
      }
      const applied = await queryOne<{ names: string[] }>(
        empty.url,
        'SELECT array_agg(migration_name ORDER BY migration_name) AS names FROM _prisma_migrations WHERE finished_at IS NOT NULL',
      );
      expect(applied?.names).toEqual(await codeMigrations());
    } finally {
      await empty.drop();
    }
  }, 120_000);

  it('migrated by a newer version (a migration the code does not know): refuses to start, naming it', async () => {
    const newer = await createTestDatabase();
    try {
      await newer.pool.query(
        `INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, finished_at, applied_steps_count)
         VALUES ('future', 'x', '29990101000000_from_a_newer_version', now(), now(), 1)`,
      );
      // Refused even when told to migrate: migrating cannot make the code newer.
      const run = await runUntilExit({
        DATABASE_URL: newer.url,
        PORT: String(await closedPort()),
        MIGRATE_ON_START: 'true',
      });
      expectPlainRefusal(run);
      expect(run.output).toContain(
        'The database (DATABASE_URL) has migrations this version of metrics-api does not know: 29990101000000_from_a_newer_version.',
      );
    } finally {
      await newer.drop();
    }
  });
});

describe('an address already in use', () => {
  it('ends the start with one line naming the address and the variable to set, exit 1', async () => {
    const taken = createNetServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as { port: number };
    try {
      const onPort = await runUntilExit({ DATABASE_URL: db.url, PORT: String(port) });
      expectPlainRefusal(onPort);
      expect(onPort.output).toContain(
        `Cannot listen on 127.0.0.1:${port}: the port is in use by another process. Set PORT (or HOST) to change it.\n`,
      );
      expect(onPort.output).not.toContain('EADDRINUSE');

      const onMetricsPort = await runUntilExit({
        DATABASE_URL: db.url,
        PORT: String(await closedPort()),
        METRICS_PORT: String(port),
      });
      expectPlainRefusal(onMetricsPort);
      expect(onMetricsPort.output).toContain(
        `Cannot listen on 127.0.0.1:${port}: the port is in use by another process. Set METRICS_PORT to change it.\n`,
      );
    } finally {
      taken.close();
    }
  });
});
