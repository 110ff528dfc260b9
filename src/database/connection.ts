import { resolve } from 'node:path';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import type { Config } from './config.js';
import { startEmbeddedDatabase } from './embedded-database.js';
import { PrismaClient } from './generated/prisma/client.js';
import { ingestFile } from './ingest/index.js';
import type { Logger } from './logger.js';
import { projectRoot } from './paths.js';

export type { PrismaClient };

export interface Database {
  prisma: PrismaClient;
  url: string;
  /** Whether the service runs on the embedded PGlite database rather than `DATABASE_URL`. */
  embedded: boolean;
  close(): Promise<void>;
}

const pgPools = new WeakMap<PrismaClient, pg.Pool>();

/**
 * The pg pool under a client made by `createPrismaClient`. The keyset page, the hottest query,
 * runs on it directly: Prisma's query compiler and result mapping cost 2.5x the CPU of pg for the
 * same rows (bench/PROFILE.md). Prisma and pg share the one pool.
 */
export function pgPoolOf(prisma: PrismaClient): pg.Pool {
  const pool = pgPools.get(prisma);
  if (!pool) throw new Error('This Prisma client was not made by createPrismaClient');
  return pool;
}

export function createPrismaClient(databaseUrl: string, poolSize: number): PrismaClient {
  // pg ignores Prisma's `?schema=` URL parameter: adapter-pg takes it as an option, and raw SQL
  // finds the table through the search path.
  const schema = new URL(databaseUrl).searchParams.get('schema') ?? undefined;
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: poolSize,
    options: schema ? `-c search_path="${schema.replaceAll('"', '""')}"` : undefined,
  });
  // An idle connection that the server closes must not crash the process (pg emits 'error' on the
  // pool); the next query opens a new one and reports any lasting failure itself.
  pool.on('error', () => {});
  // disposeExternalPool: $disconnect() ends the pool, as it does for a pool adapter-pg creates.
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool, { schema, disposeExternalPool: true }) });
  pgPools.set(prisma, pool);
  return prisma;
}

/**
 * Opens the database the configuration names, or the embedded one when `DATABASE_URL` is unset.
 * This module owns the client: `close()` is the only way to disconnect it.
 */
export async function openDatabase(config: Config, logger: Logger): Promise<Database> {
  if (config.databaseUrl) {
    const prisma = createPrismaClient(config.databaseUrl, config.databasePoolSize);
    return {
      prisma,
      url: config.databaseUrl,
      embedded: false,
      close: () => prisma.$disconnect(),
    };
  }
  const embedded = await startEmbeddedDatabase({
    dataDir: config.embedded.dataDir,
    maxConnections: config.databasePoolSize,
    logger,
  });
  const prisma = createPrismaClient(embedded.url, config.databasePoolSize);
  try {
    await loadSampleDataIfEmpty(prisma, config, logger);
  } catch (error) {
    await prisma.$disconnect();
    await embedded.stop();
    throw error;
  }
  return {
    prisma,
    url: embedded.url,
    embedded: true,
    async close() {
      await prisma.$disconnect();
      await embedded.stop();
    },
  };
}

/**
 * Gives the embedded database something to show on its first start. Keyed on an empty table
 * rather than on a fresh data directory, so a start interrupted mid-load finishes the job (the
 * load skips samples that are already stored).
 */
async function loadSampleDataIfEmpty(prisma: PrismaClient, config: Config, logger: Logger): Promise<void> {
  if (await prisma.metric.findFirst({ select: { id: true } })) return;
  const file = resolve(projectRoot, config.embedded.sampleDataFile);
  const summary = await ingestFile(prisma, file, { batchSize: config.ingest.batchSize });
  logger.info({ file, inserted: summary.inserted, rejected: summary.rejected }, 'Loaded sample data');
}
