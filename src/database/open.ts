import type { Config } from '../config.js';
import type { Logger } from '../observability/logger.js';
import { type ChangeListener, EmbeddedChangeListener, PostgresChangeListener } from './change-listener.js';
import { connectPostgres, type PostgresConnection } from './connection.js';
import { startEmbeddedDatabase } from './embedded.js';

/** Connections the embedded database's socket keeps for a command (ingest, seed, ...) writing through a running server. */
export const COMMAND_CONNECTIONS = 1;

export interface Database extends PostgresConnection {
  url: string;
  /** Whether this is the embedded PGlite database rather than `DATABASE_URL`. */
  embedded: boolean;
  /** Whether this start created the embedded database's data directory (the demo's first start). */
  created: boolean;
  /** The one listener for changes to `metrics` (made once, started on first use). */
  changes: ChangeListener;
  /** The streaming standby reads go to (`DATABASE_READ_URL`), when there is one. */
  replica: (PostgresConnection & { url: string }) | undefined;
}

/**
 * Opens the database the configuration names, or the embedded one when `DATABASE_URL` is unset.
 * It only connects: seeding is the server's first start and `npm run db:seed`, never this.
 */
export async function openDatabase(config: Config, logger: Logger): Promise<Database> {
  const options = {
    poolSize: config.databasePoolSize,
    connectTimeoutMs: config.databaseConnectTimeoutMs,
    logger,
  };
  if (config.databaseUrl) {
    const primary = connectPostgres(config.databaseUrl, options);
    const replica = config.databaseReadUrl
      ? { ...connectPostgres(config.databaseReadUrl, options), url: config.databaseReadUrl }
      : undefined;
    return {
      ...primary,
      url: config.databaseUrl,
      embedded: false,
      created: false,
      // A standby refuses LISTEN, and a pooler in transaction mode loses it: the primary itself.
      changes: new PostgresChangeListener(config.databaseListenUrl ?? config.databaseUrl, {
        logger,
        connectTimeoutMs: config.databaseConnectTimeoutMs,
      }),
      replica,
      async close() {
        await replica?.close();
        await primary.close();
      },
    };
  }
  const embedded = await startEmbeddedDatabase({
    dataDir: config.embedded.dataDir,
    // The pool's connections, readiness's own (ProbeConnection), and a command's writing through it.
    maxConnections: config.databasePoolSize + 1 + COMMAND_CONNECTIONS,
    logger,
  });
  const changes = new EmbeddedChangeListener((statement) => connection.pool.query(statement));
  // From the database rather than the pool's connections: a command writing through this
  // server's socket gets the notification of its own write, and subscribers here must hear it.
  embedded.onNotification(changes.relay);
  const connection = connectPostgres(embedded.url, { ...options, copyFromStdin: false });
  return {
    ...connection,
    url: embedded.url,
    embedded: true,
    created: embedded.created,
    changes,
    replica: undefined,
    async close() {
      await connection.close();
      await embedded.stop();
    },
  };
}
