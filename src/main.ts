/**
 * The service's composition root: every part is built here, once, in the order the data flows
 * (config -> logger -> database -> store -> partition maintenance and rollup retention -> live
 * updates -> app -> HTTP server), and shut down in reverse.
 */
import { type Config, ConfigError, loadConfig } from './config.js';
import { type Database, openDatabase } from './database/open.js';
import { createApp, GRAPHQL_ENDPOINT } from './http/app.js';
import { answeringLiveness } from './http/health.js';
import { metricsServer } from './http/metrics-endpoint.js';
import { listen } from './http/server.js';
import { loadSampleData } from './ingest/sample-data.js';
import { createLiveUpdates } from './live/live-updates.js';
import { PartitionMaintenance } from './maintenance/partition-maintenance.js';
import { RollupRetention } from './maintenance/rollup-retention.js';
import { DatabaseTelemetry, databaseAddress } from './observability/database-telemetry.js';
import { createLogger } from './observability/logger.js';
import { ServiceMetrics } from './observability/service-metrics.js';
import { startTelemetry, type TelemetrySettings, telemetrySettings } from './observability/telemetry.js';
import { AggregateCache } from './store/aggregate-cache.js';
import { MetricStore } from './store/metric-store.js';
import { RollupStore } from './store/rollup-store.js';

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

async function main(): Promise<void> {
  const settings = configOrExit();
  const { config } = settings;
  const logger = createLogger(config, { service: 'metrics-api', isTTY: process.stdout.isTTY });
  const telemetry = startTelemetry(settings.telemetry);
  const database = await openDatabase(config, logger);
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
    { exactPercentileMaxRows: config.exactPercentileMaxRows },
  );
  if (database.created) {
    // The demo: a new embedded database starts with something to show.
    await loadSampleData(store, {
      file: config.embedded.sampleDataFile,
      batchSize: config.ingest.batchSize,
      logger,
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
  const serviceMetrics = new ServiceMetrics(telemetry.meter);
  // Live updates read what a notification announced: on the primary, which has it already.
  const live = createLiveUpdates(store.primary, database.changes, {
    logger,
    throttleMs: config.liveThrottleMs,
    readyTimeoutMs: config.databaseConnectTimeoutMs,
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
  const http = await listen(answeringLiveness(app), { host: config.host, port: config.port, logger });
  const { metricsPort, metricsToken } = config.observability;
  const metrics =
    metricsPort === undefined
      ? undefined
      : await listen(metricsServer({ scrape: telemetry.scrape, token: metricsToken }), {
          host: config.host,
          port: metricsPort,
          logger,
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
