import { parseConfig } from '../../src/config.js';
import { type ChangeListener, PostgresChangeListener } from '../../src/database/change-listener.js';
import type { PostgresConnection } from '../../src/database/connection.js';
import { type App, createApp } from '../../src/http/app.js';
import { createLiveUpdates, type LiveUpdates, liveSettings } from '../../src/live/live-updates.js';
import { DatabaseTelemetry, databaseAddress } from '../../src/observability/database-telemetry.js';
import { createLogger, type Logger } from '../../src/observability/logger.js';
import { ServiceMetrics } from '../../src/observability/service-metrics.js';
import { startTelemetry, type Telemetry, telemetrySettings } from '../../src/observability/telemetry.js';
import { AggregateCache } from '../../src/store/aggregate-cache.js';
import { MetricStore, storeOptions } from '../../src/store/metric-store.js';

/**
 * The real application on a database connection, built as main() builds it, with `env`
 * overriding the configuration; a telemetry of its own (tracing off) unless one is given.
 */
export function createTestApp(
  db: PostgresConnection & { url?: string },
  env: Record<string, string> = {},
  parts: { logger?: Logger; telemetry?: Telemetry; changes?: ChangeListener } = {},
): App {
  return createTestService(db, env, parts).app;
}

/** As createTestApp, with the parts a test may look into. */
export function createTestService(
  db: PostgresConnection & { url?: string },
  env: Record<string, string> = {},
  parts: {
    logger?: Logger;
    telemetry?: Telemetry;
    changes?: ChangeListener;
    /** A streaming standby of `db` to read from, as DATABASE_READ_URL gives one. */
    replica?: PostgresConnection & { url: string };
  } = {},
): { app: App; store: MetricStore; live: LiveUpdates } {
  const config = parseConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: db.url ?? 'postgresql://127.0.0.1/unused',
    ...env,
  });
  const telemetry =
    parts.telemetry ?? startTelemetry(telemetrySettings({}, 'metrics-api-test'), { runtimeMetrics: false });
  const telemetryOf = (connection: PostgresConnection & { url?: string }) =>
    new DatabaseTelemetry({
      tracer: telemetry.tracer,
      meter: telemetry.meter,
      address: databaseAddress(connection.url ?? 'postgresql://127.0.0.1/unused'),
      pool: connection.pool,
    });
  const { replica } = parts;
  const store = new MetricStore(
    db,
    telemetryOf(db),
    replica && { connection: replica, telemetry: telemetryOf(replica) },
    storeOptions(config),
  );
  const aggregates = new AggregateCache(store, config.aggregateCacheBytes, telemetry.meter);
  const logger = parts.logger ?? createLogger(config, { service: 'metrics-api-test' });
  // It connects on the first subscription only; app.dispose() closes it.
  const changes =
    parts.changes ??
    new PostgresChangeListener(config.databaseListenUrl as string, { logger, connectTimeoutMs: 2000 });
  const live = createLiveUpdates(store.primary, changes, {
    ...liveSettings(config),
    logger,
    meter: telemetry.meter,
  });
  const app = createApp({
    config,
    logger,
    store,
    aggregates,
    prisma: db.prisma,
    telemetry,
    serviceMetrics: new ServiceMetrics(telemetry.meter),
    live,
  });
  return { app, store, live };
}

export interface GraphQLResponse<Data = Record<string, unknown>> {
  status: number;
  data?: Data | null;
  errors?: { message: string; path?: string[]; extensions?: { code?: string; [key: string]: unknown } }[];
}

/** POSTs one GraphQL operation through `app.fetch`, as a client would over HTTP. */
export async function graphql<Data = Record<string, unknown>>(
  app: App,
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<GraphQLResponse<Data>> {
  const response = await app.fetch('http://localhost/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, ...((await response.json()) as object) };
}
