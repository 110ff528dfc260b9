import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { projectRoot } from '../paths.js';

const require = createRequire(import.meta.url);

/**
 * Applies pending migrations with the real `prisma migrate deploy`, so the embedded database keeps
 * the same `_prisma_migrations` history as any other.
 */
export async function migrateDeploy(databaseUrl: string): Promise<void> {
  const prismaCli = require.resolve('prisma/build/index.js');
  const output: Buffer[] = [];
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(process.execPath, [prismaCli, 'migrate', 'deploy'], {
      cwd: projectRoot,
      env: { ...process.env, DATABASE_URL: databaseUrl, PRISMA_HIDE_UPDATE_MESSAGE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (chunk: Buffer) => output.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => output.push(chunk));
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (exitCode !== 0) {
    throw new Error(`prisma migrate deploy failed (exit ${exitCode}):\n${Buffer.concat(output).toString()}`);
  }
}
