/**
 * `npm run build`: generates the Prisma client and compiles to dist/. With `--if-stale` (what
 * `npm start` runs first) it does so only when dist/ is missing or older than a source of it, so a
 * second start costs a few stat calls instead of a 20-60 s rebuild.
 */
import { spawn } from 'node:child_process';
import { mkdir, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { projectRoot } from '../src/paths.js';

const require = createRequire(import.meta.url);

/** Written after a build that succeeded; its time is the build's. */
const STAMP = join(projectRoot, 'dist/.build-stamp');
/** Made by `prisma generate`, which the build needs before it compiles. */
const GENERATED = join(projectRoot, 'src/generated');
/** What the compiled output and the generated client are made from. */
const INPUTS = [
  'src',
  'scripts',
  'prisma/schema.prisma',
  'tsconfig.json',
  'tsconfig.build.json',
  'package-lock.json',
];

async function modifiedMs(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).mtimeMs;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** The first file under `path` changed after `since` (the generated client aside), if any. */
async function changedSince(path: string, since: number): Promise<string | undefined> {
  const info = await stat(path).catch(() => undefined);
  if (!info) return undefined;
  if (!info.isDirectory()) return info.mtimeMs > since ? path : undefined;
  for (const entry of await readdir(path, { withFileTypes: true })) {
    const child = join(path, entry.name);
    if (child === GENERATED) continue;
    const changed = await changedSince(child, since);
    if (changed) return changed;
  }
  return undefined;
}

/** Why a build is needed, or undefined when dist/ is up to date. */
async function staleness(): Promise<string | undefined> {
  const built = await modifiedMs(STAMP);
  if (built === undefined) return 'no build yet';
  if ((await modifiedMs(GENERATED)) === undefined) return 'no generated Prisma client';
  for (const input of INPUTS) {
    const changed = await changedSince(join(projectRoot, input), built);
    if (changed) return `${changed.slice(projectRoot.length)} changed since the last build`;
  }
  return undefined;
}

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [command, ...args], { cwd: projectRoot, stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${args.join(' ')} failed (${signal ?? `exit ${code}`})`)),
    );
  });
}

async function build(): Promise<void> {
  const started = performance.now();
  const startedAt = new Date();
  await run(require.resolve('prisma/build/index.js'), ['generate']);
  // typescript's exports map hides bin/tsc from require.resolve.
  await run(join(dirname(require.resolve('typescript/package.json')), 'bin/tsc'), [
    '-p',
    'tsconfig.build.json',
  ]);
  await mkdir(join(projectRoot, 'dist'), { recursive: true });
  await writeFile(STAMP, `${startedAt.toISOString()}\n`);
  // A source saved while the build ran is newer than the stamp, so the next start builds again.
  await utimes(STAMP, startedAt, startedAt);
  process.stderr.write(`build: done in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
}

const ifStale = process.argv.includes('--if-stale');
const reason = ifStale ? await staleness() : 'asked for';
if (reason !== undefined) {
  if (ifStale) process.stderr.write(`build: building first (${reason})\n`);
  try {
    await build();
  } catch (error) {
    process.stderr.write(`build: ${(error as Error).message}\n`);
    process.exitCode = 1;
  }
}
