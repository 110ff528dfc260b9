import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../../src/paths.js';
import { WITHOUT_DOTENV } from './environment.js';

/** The WebAssembly schema engine that prisma.config.ts hands to the Prisma CLI. */
export const SCHEMA_ENGINE_SHIM = join(projectRoot, 'tools/schema-engine-wasm.mjs');
const PRISMA_CLI = join(projectRoot, 'node_modules/prisma/build/index.js');

/**
 * Where the CLI would download engines from. Nothing listens there, so any download attempt fails
 * the command instead of silently succeeding on a machine that happens to be online.
 */
export const UNREACHABLE_ENGINES_MIRROR = 'http://127.0.0.1:9';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved, for assertions that do not care which stream a line went to. */
  output: string;
}

export interface RunOptions {
  cwd?: string;
  databaseUrl?: string;
  /** Extra variables; `undefined` removes one. */
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
}

/** Runs the real Prisma CLI (`node node_modules/prisma/build/index.js ...`) and collects its output. */
export function runPrisma(args: string[], options: RunOptions = {}): Promise<CliResult> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    PRISMA_HIDE_UPDATE_MESSAGE: '1',
    CHECKPOINT_DISABLE: '1',
    NO_COLOR: '1',
    PRISMA_ENGINES_MIRROR: UNREACHABLE_ENGINES_MIRROR,
    // prisma.config.ts reads .env: never the developer's.
    ...WITHOUT_DOTENV,
    // Whatever the developer's shell has set must not decide which engine or database a test uses.
    PRISMA_SCHEMA_ENGINE_BINARY: undefined,
    PRISMA_SCHEMA_ENGINE_WASM_DEBUG: undefined,
    DEBUG: undefined,
    DATABASE_URL: options.databaseUrl,
    ...options.env,
  };
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete env[name];

  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PRISMA_CLI, ...args], {
      cwd: options.cwd ?? projectRoot,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    const output: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => {
      stdout.push(chunk);
      output.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr.push(chunk);
      output.push(chunk);
    });
    const timeoutMs = options.timeoutMs ?? 60_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `prisma ${args.join(' ')} did not finish within ${timeoutMs} ms:\n${Buffer.concat(output).toString()}`,
        ),
      );
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({
        code,
        stdout: Buffer.concat(stdout).toString(),
        stderr: Buffer.concat(stderr).toString(),
        output: Buffer.concat(output).toString(),
      });
    });
  });
}

export const sha256 = (content: string | Buffer) => createHash('sha256').update(content).digest('hex');

/** The committed migrations, as `migrate deploy` must record them. */
export async function committedMigrations(): Promise<{ name: string; checksum: string }[]> {
  const dir = join(projectRoot, 'prisma/migrations');
  const entries = await readdir(dir, { withFileTypes: true });
  const migrations = await Promise.all(
    entries
      .filter((entry) => entry.isDirectory())
      .map(async (entry) => ({
        name: entry.name,
        checksum: sha256(await readFile(join(dir, entry.name, 'migration.sql'))),
      })),
  );
  return migrations.sort((a, b) => a.name.localeCompare(b.name));
}

/** This repository's schema without its generators: the datasource and the models. */
export async function repositoryDatamodel(): Promise<string> {
  const schema = await readFile(join(projectRoot, 'prisma/schema.prisma'), 'utf8');
  const withoutGenerators = schema.replace(/^generator \w+ \{[^}]*\}\n/gm, '');
  if (withoutGenerators.includes('generator ') || !withoutGenerators.includes('model Metric')) {
    throw new Error('prisma/schema.prisma no longer has the shape these tests expect');
  }
  return withoutGenerators;
}

/** `datamodel` with `fieldLine` added to the Metric model. */
export function withMetricField(datamodel: string, fieldLine: string): string {
  const changed = datamodel.replace(/(model Metric \{[^}]*?)(\n\s*@@map)/, `$1\n  ${fieldLine}$2`);
  if (changed === datamodel) throw new Error('Could not add a field to the Metric model');
  return changed;
}

export interface TempProject {
  dir: string;
  migrationsDir: string;
  writeSchema(schema: string): Promise<void>;
  addMigration(name: string, sql: string): Promise<void>;
  run(args: string[], options?: RunOptions): Promise<CliResult>;
  remove(): Promise<void>;
}

/**
 * A throw-away Prisma project in the system temp folder: its own prisma.config.ts that, like this
 * repository's, uses the WebAssembly schema engine unless PRISMA_SCHEMA_ENGINE_BINARY is set, a
 * symlink to this repository's node_modules, and optionally a copy of prisma/migrations.
 */
export async function createTempProject(options: {
  schema: string;
  copyMigrations?: boolean;
  useShim?: boolean;
}): Promise<TempProject> {
  const dir = await mkdtemp(join(tmpdir(), 'metrics-prisma-'));
  const migrationsDir = join(dir, 'prisma/migrations');
  await symlink(join(projectRoot, 'node_modules'), join(dir, 'node_modules'), 'dir');
  await writeFile(join(dir, 'package.json'), '{ "private": true, "type": "module" }\n');
  const engineLine =
    options.useShim === false
      ? ''
      : `process.env.PRISMA_SCHEMA_ENGINE_BINARY ??= ${JSON.stringify(SCHEMA_ENGINE_SHIM)};\n`;
  await writeFile(
    join(dir, 'prisma.config.ts'),
    `import { defineConfig } from 'prisma/config';

${engineLine}
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? '' },
});
`,
  );
  await mkdir(join(dir, 'prisma'), { recursive: true });
  if (options.copyMigrations) {
    await cp(join(projectRoot, 'prisma/migrations'), migrationsDir, { recursive: true });
  }
  const project: TempProject = {
    dir,
    migrationsDir,
    writeSchema: (schema) => writeFile(join(dir, 'prisma/schema.prisma'), schema),
    async addMigration(name, sql) {
      await mkdir(join(migrationsDir, name), { recursive: true });
      await writeFile(join(migrationsDir, name, 'migration.sql'), sql);
      // Prisma reads the provider from the lock file; keep a copied one.
      await writeFile(join(migrationsDir, 'migration_lock.toml'), 'provider = "postgresql"\n', {
        flag: 'wx',
      }).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error;
      });
    },
    run: (args, runOptions) => runPrisma(args, { ...runOptions, cwd: dir }),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
  await project.writeSchema(options.schema);
  return project;
}
