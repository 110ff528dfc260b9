/**
 * The service's composition root: every part is built here, once, in the order the data flows
 * (config -> logger -> database -> store -> app -> HTTP server), and shut down in reverse.
 */
import { type Config, ConfigError, loadConfig } from './config.js';
import { openDatabase } from './database/open.js';
import { createApp, GRAPHQL_ENDPOINT } from './http/app.js';
import { listen } from './http/server.js';
import { loadSampleData } from './ingest/sample-data.js';
import { createLogger } from './observability/logger.js';
import { AggregateCache } from './store/aggregate-cache.js';
import { MetricStore } from './store/metric-store.js';

function configOrExit(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\nSee .env.example for every variable.\n`);
    process.exit(1);
  }
}

async function main(): Promise<void> {
  const config = configOrExit();
  const logger = createLogger(config, { service: 'metrics-api', isTTY: process.stdout.isTTY });
  const database = await openDatabase(config, logger);
  const store = new MetricStore(database);
  if (database.created) {
    // The demo: a new embedded database starts with something to show.
    await loadSampleData(store, {
      file: config.embedded.sampleDataFile,
      batchSize: config.ingest.batchSize,
      logger,
    });
  }
  const aggregates = new AggregateCache(store, config.aggregateCacheBytes);
  const app = createApp({ config, logger, store, aggregates, prisma: database.prisma });
  const http = await listen(app, { host: config.host, port: config.port, logger });
  logger.info(
    {
      url: `http://${config.host}:${http.port}${GRAPHQL_ENDPOINT}`,
      database: database.embedded ? 'embedded' : 'DATABASE_URL',
    },
    'metrics-api listening',
  );

  let shuttingDown = false;
  const shutdown = async (signal: NodeJS.Signals) => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info({ signal }, 'Shutting down: no new connections; finishing in-flight requests');
    await http.close(config.shutdownTimeoutMs);
    await app.dispose();
    await database.close();
    logger.info('Stopped');
    logger.flush();
    process.exit(0);
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

await main();
