import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../generated/prisma/client.js';
import type { Logger } from '../observability/logger.js';
import { DatabaseAvailability } from './availability.js';
import { ProbeConnection } from './probe-connection.js';

export type { PrismaClient };

/**
 * One PostgreSQL database: a pg pool, the Prisma client on it, and what tells an outage from a
 * failed statement. The keyset page, the hottest query, runs on the pool directly: Prisma's query
 * compiler and result mapping cost 2.5x the CPU of pg for the same rows (bench/PROFILE.md).
 * Prisma and pg share the one pool.
 */
export interface PostgresConnection {
  pool: pg.Pool;
  prisma: PrismaClient;
  availability: DatabaseAvailability;
  /** A connection of its own for readiness, never waiting behind the pool (see ProbeConnection). */
  probe: ProbeConnection;
  /** Whether the server takes `COPY ... FROM STDIN` (PostgreSQL does; PGlite's wire protocol does not). */
  copyFromStdin: boolean;
  close(): Promise<void>;
}

export interface ConnectOptions {
  poolSize: number;
  /** How long to wait for a new connection before failing: an unreachable server must not hang requests. */
  connectTimeoutMs: number;
  logger: Logger;
  /** Defaults to true. */
  copyFromStdin?: boolean;
}

export function connectPostgres(databaseUrl: string, options: ConnectOptions): PostgresConnection {
  // pg ignores Prisma's `?schema=` URL parameter: adapter-pg takes it as an option, and raw SQL
  // finds the table through the search path.
  const schema = new URL(databaseUrl).searchParams.get('schema') ?? undefined;
  const clientConfig: pg.ClientConfig = {
    connectionString: databaseUrl,
    connectionTimeoutMillis: options.connectTimeoutMs,
    options: schema ? `-c search_path="${schema.replaceAll('"', '""')}"` : undefined,
  };
  const pool = new pg.Pool({ ...clientConfig, max: options.poolSize });
  const probe = new ProbeConnection(clientConfig);
  const availability = new DatabaseAvailability(options.logger);
  // An idle connection that the server closes must not crash the process (pg emits 'error' on the
  // pool); the next query opens a new one and reports any lasting failure itself.
  pool.on('error', () => {});
  pool.on('connect', (client) => {
    availability.connected();
    // pg-pool listens for a client's 'error' only while the client is idle in the pool. A client
    // checked out (a transaction, a COPY, Prisma's own) also gets 'error' when the server ends its
    // session (57P01 at a restart or failover, pg_terminate_backend), even after failing the query
    // in flight: unheard, that event would crash the process. The query in flight fails by itself,
    // and the pool drops the client, no longer queryable, when it is released.
    client.on('error', (error) => availability.classify(error));
  });
  // disposeExternalPool: $disconnect() ends the pool, as it does for a pool adapter-pg creates.
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool, { schema, disposeExternalPool: true }) });
  return {
    pool,
    prisma,
    availability,
    probe,
    copyFromStdin: options.copyFromStdin ?? true,
    async close() {
      await probe.close();
      await prisma.$disconnect();
      // $disconnect() ends the pool only if Prisma ran a query on it; idle connections would
      // otherwise keep the process alive for pg's idle timeout.
      if (!pool.ending) await pool.end();
    },
  };
}
