import type { Config } from '../config.js';
import { EmbeddedChangeListener } from '../database/change-listener.js';
import { connectPostgres } from '../database/connection.js';
import { EmbeddedDatabaseInUseError } from '../database/embedded.js';
import { COMMAND_CONNECTIONS, type Database, openDatabase } from '../database/open.js';
import type { Logger } from '../observability/logger.js';

/** What openCommandDatabase gives: the commands take its type from here, not from database/. */
export type { Database };

/**
 * The database a command (ingest, rollups, seed) works on. Where a running server has the embedded
 * database open, the command writes through that server's socket instead of opening the folder a
 * second time (which loses the writes of one of the two processes): the server's live subscribers
 * then see the rows at once. Any other refusal (a server still starting) is the caller's to report.
 */
export async function openCommandDatabase(config: Config, logger: Logger): Promise<Database> {
  try {
    return await openDatabase(config, logger);
  } catch (error) {
    const url = error instanceof EmbeddedDatabaseInUseError ? error.holder.url : undefined;
    if (url === undefined) throw error;
    logger.info(
      { pid: (error as EmbeddedDatabaseInUseError).holder.pid, url },
      'Writing through the running server',
    );
    const connection = connectPostgres(url, {
      // The one connection the server keeps for a command (see open.ts): commands write in turn.
      poolSize: COMMAND_CONNECTIONS,
      connectTimeoutMs: config.databaseConnectTimeoutMs,
      logger,
      // PGlite's wire protocol takes no COPY FROM STDIN, as for the server itself.
      copyFromStdin: false,
    });
    return {
      ...connection,
      url,
      embedded: true,
      created: false,
      // A command does not follow changes; the server announces them to its subscribers.
      changes: new EmbeddedChangeListener((statement) => connection.pool.query(statement)),
      replica: undefined,
    };
  }
}
