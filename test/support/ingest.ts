import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { run } from '../../src/cli/ingest/run.js';
import { projectRoot } from '../../src/paths.js';
import { createTestDatabase, type TestDatabase } from './database.js';
import { WITHOUT_DOTENV } from './environment.js';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Environment for a spawned script: the given database, quiet logs, no developer's .env. */
export function scriptEnv(
  databaseUrl: string | undefined,
  extra: Record<string, string> = {},
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...WITHOUT_DOTENV, LOG_LEVEL: 'warn', ...extra };
  if (databaseUrl === undefined) delete env.DATABASE_URL;
  else env.DATABASE_URL = databaseUrl;
  return env;
}

/** Spawns a TypeScript script the way users run it (tsx), optionally feeding standard input. */
export function runScript(
  script: string,
  args: string[],
  options: { env: NodeJS.ProcessEnv; input?: string | Buffer },
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      cwd: projectRoot,
      env: options.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({
        code,
        signal,
        stdout: Buffer.concat(stdout).toString(),
        stderr: Buffer.concat(stderr).toString(),
      }),
    );
    child.stdin.on('error', () => {}); // the script may exit (usage error) before reading its input
    child.stdin.end(options.input ?? '');
  });
}

/** A stream that keeps what is written to it. */
export function collector(): Writable & { text(): string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      done();
    },
  });
  return Object.assign(stream, { text: () => Buffer.concat(chunks).toString() });
}

/**
 * Runs the ingest command in this process, through the same `run(argv, io)` that
 * scripts/ingest.ts calls, with the given database and standard input.
 */
export async function runIngest(
  databaseUrl: string | undefined,
  args: string[],
  input?: string | Buffer,
  env: Record<string, string> = {},
): Promise<RunResult> {
  const stdout = collector();
  const stderr = collector();
  const stdin = input === undefined ? new PassThrough().end() : Readable.from([Buffer.from(input)]);
  const code = await run(args, { env: scriptEnv(databaseUrl, env), stdin, stdout, stderr });
  return { code, signal: null, stdout: stdout.text(), stderr: stderr.text() };
}

/** Runs scripts/ingest.ts as a user does, in a process of its own. */
export function spawnIngest(databaseUrl: string | undefined, args: string[], input?: string | Buffer) {
  return runScript('scripts/ingest.ts', args, { env: scriptEnv(databaseUrl), input });
}

/** Error lines (`source:line: field: reason`) as `source:line: field`, in order. */
export function rejectionKeys(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((line) => /^.+:\d+: [\w]+: /.test(line))
    .map((line) => line.replace(/^(.+?:\d+: \w+): .*$/, '$1'));
}

/** The last stderr line, the summary. */
export function summaryLine(stderr: string): string {
  return stderr.trim().split('\n').at(-1) ?? '';
}

export async function tempDirectory(): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), 'metrics-ingest-test-'));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

export interface StoredRow {
  ms: number;
  cpuLoad: number | null;
  concurrency: number | null;
}

/** Every stored sample in timestamp order, read with plain pg (fast for 10^5 rows). */
export async function storedRows(databaseUrl: string): Promise<StoredRow[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ ms: string; cpu_load: number | null; concurrency: number | null }>(
      `SELECT (extract(epoch FROM "timestamp") * 1000)::bigint::text AS ms, cpu_load, concurrency
       FROM metrics ORDER BY "timestamp"`,
    );
    return rows.map((row) => ({ ms: Number(row.ms), cpuLoad: row.cpu_load, concurrency: row.concurrency }));
  } finally {
    await client.end();
  }
}

export interface SourcedRow extends StoredRow {
  source: string;
}

/** Every stored sample with its source's name, in time order, then by source name. */
export async function sourcedRows(databaseUrl: string): Promise<SourcedRow[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{
      source: string;
      ms: string;
      cpu_load: number | null;
      concurrency: number | null;
    }>(
      `SELECT s.name AS source, (extract(epoch FROM m."timestamp") * 1000)::bigint::text AS ms, m.cpu_load, m.concurrency
       FROM metrics AS m JOIN sources AS s ON s.id = m.source_id ORDER BY m."timestamp", s.name`,
    );
    return rows.map((row) => ({
      source: row.source,
      ms: Number(row.ms),
      cpuLoad: row.cpu_load,
      concurrency: row.concurrency,
    }));
  } finally {
    await client.end();
  }
}

/** A database of the file's own and a temporary folder, made before its tests and removed after. */
export function ingestFixture(): { db: TestDatabase; dir: { path: string; remove(): Promise<void> } } {
  const fixture = {} as ReturnType<typeof ingestFixture>;
  beforeAll(async () => {
    fixture.db = await createTestDatabase();
    fixture.dir = await tempDirectory();
  });
  afterAll(async () => {
    await fixture.db?.drop();
    await fixture.dir?.remove();
  });
  return fixture;
}
