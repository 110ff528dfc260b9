/**
 * The service's composition root: every part is built here, once, in the order the data flows
 * (config -> logger -> database -> store -> partition maintenance and rollup retention -> live
 * updates -> app -> HTTP server), and shut down in reverse.
 */
import { type Config, ConfigError, loadConfig } from './config.js';
import { isDatabaseUnavailable } from './database/availability.js';
import { EmbeddedDatabaseInUseError } from './database/embedded.js';
import { ensureMigrated, SchemaMismatchError } from './database/migrations.js';
import { type Database, openDatabase } from './database/open.js';
import { createApp, GRAPHQL_ENDPOINT } from './http/app.js';
import { answeringLiveness } from './http/health.js';
import { metricsServer } from './http/metrics-endpoint.js';
import { type HttpServer, ListenError, listen } from './http/server.js';
import { loadSampleData } from './ingest/sample-data.js';
import { createLiveUpdates, liveSettings } from './live/live-updates.js';
import { PartitionMaintenance } from './maintenance/partition-maintenance.js';
import { RollupRetention } from './maintenance/rollup-retention.js';
import { DatabaseTelemetry, databaseAddress } from './observability/database-telemetry.js';
import { createLogger, type Logger } from './observability/logger.js';
import { ServiceMetrics } from './observability/service-metrics.js';
import { startTelemetry, type TelemetrySettings, telemetrySettings } from './observability/telemetry.js';
import { AggregateCache } from './store/aggregate-cache.js';
import { MetricStore, storeOptions } from './store/metric-store.js';
import { RollupStore } from './store/rollup-store.js';
import { DefaultSourceNameTakenError } from './store/source-registry.js';

function configOrExit(): { config: Config; telemetry: TelemetrySettings } {
  try {
    const config = loadConfig();
    return { config, telemetry: telemetrySettings(process.env, 'metrics-api') };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\nSee .env.example for every variable.\n`);
    process.exit(1);
  }
}

/** Ends the process with `message` on stderr, as for a configuration error: the fix, no stack trace. */
function exitWith(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

/**
 * Makes sure the database's schema is the one this code was written for (ensureMigrated), before
 * anything else touches it, or exits 1 with the fix. A database that cannot be reached yet (it
 * may be starting with the service) is waited for.
 */
async function migratedOrExit(database: Database, config: Config, logger: Logger): Promise<void> {
  for (let retryMs = 500; ; retryMs = Math.min(retryMs * 2, 5000)) {
    try {
      await ensureMigrated(database, { migrate: config.migrateOnStart, logger });
      return;
    } catch (error) {
      if (!isDatabaseUnavailable(error)) {
        exitWith(
          error instanceof SchemaMismatchError
            ? error.message
            : `Cannot check the migrations of the database (DATABASE_URL): ${(error as Error).message}`,
        );
      }
      logger.warn({ err: error, retryMs }, 'Database unreachable; waiting for it to check its migrations');
      await new Promise((resolve) => setTimeout(resolve, retryMs));
    }
  }
}

/** listen(), or the process ends with the one line saying which address is taken and what to set. */
async function listenOrExit(...args: Parameters<typeof listen>): Promise<HttpServer> {
  try {
    return await listen(...args);
  } catch (error) {
    if (error instanceof ListenError) exitWith(error.message);
    throw error;
  }
}

async function main(): Promise<void> {
  const settings = configOrExit();
  const { config } = settings;
  const logger = createLogger(config, { service: 'metrics-api', isTTY: process.stdout.isTTY });
  const telemetry = startTelemetry(settings.telemetry);
  const database = await openDatabase(config, logger).catch((error: unknown) =>
    error instanceof EmbeddedDatabaseInUseError ? exitWith(error.message) : Promise.reject(error),
  );
  // The embedded database is migrated as it opens.
  if (!database.embedded) await migratedOrExit(database, config, logger);
  const telemetryOf = (connection: { url: string; pool: Database['pool'] }) =>
    new DatabaseTelemetry({
      tracer: telemetry.tracer,
      meter: telemetry.meter,
      address: databaseAddress(connection.url),
      pool: connection.pool,
    });
  const { replica } = database;
  const store = new MetricStore(
    database,
    telemetryOf(database),
    replica && { connection: replica, telemetry: telemetryOf(replica) },
    storeOptions(config),
  );
  // Source 1 holds the samples of writers that name no source, under DEFAULT_SOURCE's name.
  await store
    .nameDefaultSource(config.sources.defaultName)
    .catch((error: unknown) =>
      error instanceof DefaultSourceNameTakenError ? exitWith(error.message) : Promise.reject(error),
    );
  if (database.created) {
    // The demo: a new embedded database starts with something to show.
    await loadSampleData(store, {
      file: config.embedded.sampleDataFile,
      batchSize: config.ingest.batchSize,
      logger,
      maxFutureSeconds: config.ingest.maxFutureSeconds,
    });
  }
  // The embedded database keeps every row in its default partition: a demo needs no maintenance.
  const maintenance = database.embedded
    ? undefined
    : new PartitionMaintenance(store, {
        sizeSeconds: config.partitions.sizeSeconds,
        retentionSeconds: config.partitions.retentionSeconds,
        intervalMs: config.maintenanceIntervalMs,
        ...config.maintenance,
        logger,
        meter: telemetry.meter,
      });
  maintenance?.start();
  // Maintenance writes, so it runs on the primary.
  const rollupRetention = new RollupRetention(
    new RollupStore(database),
    { ...config.rollups, intervalSeconds: config.maintenanceIntervalMs / 1000 },
    logger,
  );
  rollupRetention.start();
  const aggregates = new AggregateCache(store, config.aggregateCacheBytes, telemetry.meter);
  const serviceMetrics = new ServiceMetrics(telemetry.meter, { count: () => store.countSources() });
  // Live updates read what a notification announced: on the primary, which has it already.
  const live = createLiveUpdates(store.primary, database.changes, {
    ...liveSettings(config),
    logger,
    meter: telemetry.meter,
  });
  const app = createApp({
    config,
    logger,
    store,
    aggregates,
    prisma: database.prisma,
    telemetry,
    serviceMetrics,
    live,
  });
  const http = await listenOrExit(answeringLiveness(app), {
    host: config.host,
    port: config.port,
    logger,
    settings: 'PORT (or HOST)',
  });
  const { metricsPort, metricsToken } = config.observability;
  const metrics =
    metricsPort === undefined
      ? undefined
      : await listenOrExit(metricsServer({ scrape: telemetry.scrape, token: metricsToken }), {
          host: config.host,
          port: metricsPort,
          logger,
          settings: 'METRICS_PORT',
        });
  logger.info(
    {
      url: `http://${config.host}:${http.port}${GRAPHQL_ENDPOINT}`,
      database: database.embedded
        ? 'embedded'
        : replica
          ? 'DATABASE_URL, reads on DATABASE_READ_URL'
          : 'DATABASE_URL',
      metrics: `http://${config.host}:${metrics?.port ?? http.port}/metrics`,
      tracing: telemetry.tracer ? settings.telemetry.tracesExporter : 'off',
    },
    'metrics-api listening',
  );

  let shuttingDown = false;
  const shutdown = async (signal: NodeJS.Signals) => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info({ signal }, 'Shutting down: no new connections; finishing in-flight requests');
    // Subscriptions never finish by themselves: they end first, so the server can close.
    await live.close();
    await http.close(config.shutdownTimeoutMs);
    await metrics?.close(config.shutdownTimeoutMs);
    await app.dispose();
    await rollupRetention.stop();
    await maintenance?.stop();
    await database.close();
    // Last: the spans and metrics of everything above are exported before the process ends.
    await telemetry.shutdown();
    logger.info('Stopped');
    logger.flush();
    process.exit(0);
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

await main();
