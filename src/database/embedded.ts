import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import type { Logger } from '../observability/logger.js';
import { projectRoot } from '../paths.js';
import { migrateDeploy } from './migrations.js';

export interface EmbeddedDatabase {
  url: string;
  /** Whether this start created the data directory. */
  created: boolean;
  stop(): Promise<void>;
}

/**
 * Runs PGlite (PostgreSQL compiled to WebAssembly) persisted in `dataDir`, served over the
 * Postgres wire protocol on a loopback port so the service uses the same adapter-pg code path as
 * with a real server. Pending migrations are applied on every start.
 */
export async function startEmbeddedDatabase(options: {
  dataDir: string;
  maxConnections: number;
  logger: Logger;
}): Promise<EmbeddedDatabase> {
  const dataDir = resolve(projectRoot, options.dataDir);
  const started = performance.now();
  const created = await mkdir(dataDir, { recursive: true }).then((made) => made !== undefined);
  options.logger.info(
    { dataDir },
    created
      ? 'Creating the embedded database (first start takes up to 15 s)'
      : 'Opening the embedded database (about 2 s)',
  );
  const db = await PGlite.create(dataDir);
  const server = new PGLiteSocketServer({
    db,
    host: '127.0.0.1',
    port: 0,
    maxConnections: options.maxConnections,
  });
  await server.start();
  const url = `postgresql://postgres@${server.getServerConn()}/postgres?sslmode=disable`;
  const stop = async () => {
    await server.stop();
    await db.close();
  };
  try {
    await migrateDeploy(url);
  } catch (error) {
    await stop();
    throw error;
  }
  options.logger.info({ ms: Math.round(performance.now() - started), url }, 'Embedded database ready');
  return { url, created, stop };
}
