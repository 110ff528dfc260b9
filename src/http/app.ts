import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import type { Config } from '../config.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import type { Context } from '../graphql/builder.js';
import { userError } from '../graphql/errors.js';
import { useCompiledQueries } from '../graphql/plugins/compiled-queries.js';
import { finishedEvents, maskedErrors, useErrorCodes } from '../graphql/plugins/error-codes.js';
import { useQueryLimits } from '../graphql/plugins/query-limits.js';
import { useSharedEvents } from '../graphql/plugins/shared-events.js';
import { schema } from '../graphql/schema.js';
import type { LiveUpdates } from '../live/live-updates.js';
import type { Logger } from '../observability/logger.js';
import { useRequestTelemetry } from '../observability/request-telemetry.js';
import type { ServiceMetrics } from '../observability/service-metrics.js';
import type { Telemetry } from '../observability/telemetry.js';
import type { AggregateCache } from '../store/aggregate-cache.js';
import type { MetricStore } from '../store/metric-store.js';
import { OTLP_METRICS_PATHS, REMOTE_WRITE_PATH } from './agent-receivers.js';
import { useCors } from './cors.js';
import { dashboardPaths } from './dashboard.js';
import { useCoalescedEventStreams } from './event-streams.js';
import { ExpensiveWorkSlots, useExpensiveWorkSlots } from './expensive-work-slots.js';
import { useGraphiQLPage } from './graphiql.js';
import { useGraphQLOverSSE } from './graphql-over-sse.js';
import { LABEL_VALUES_PREFIX, PROMETHEUS_API_PATHS, usePrometheusApi } from './prometheus-api.js';
import { useReadAccess } from './read-access.js';
import { READ_FROM_HEADER, storeFor } from './read-from.js';
import { requestBodyRules } from './request-body.js';
import { restRoutes } from './routes.js';
import { useSecurityHeaders } from './security-headers.js';

export const GRAPHQL_ENDPOINT = '/graphql';
/** The GraphQL over SSE protocol's endpoint (single-connection mode). */
export const GRAPHQL_STREAM_ENDPOINT = '/graphql/stream';

const EXAMPLE_QUERY = `# metrics-api: CPU load and concurrency samples.
# Page through samples with first/after; start is inclusive, end exclusive.
query FirstSamples {
  metrics(first: 10, start: "2026-11-26T00:00:00Z") {
    totalCount
    edges {
      cursor
      node { timestamp unixTime cpuLoad concurrency }
    }
    pageInfo { hasNextPage endCursor }
  }
  metricsSummary(start: "2026-11-26T00:00:00Z", end: "2026-11-27T00:00:00Z") {
    count
    cpuLoad { min max avg p50 p95 p99 }
    concurrency { min max avg p95 }
  }
}
`;

export interface AppParts {
  config: Config;
  logger: Logger;
  store: MetricStore;
  aggregates: AggregateCache;
  /** For plugin-prisma alone (see graphql/builder.ts). */
  prisma: PrismaClient;
  telemetry: Pick<Telemetry, 'tracer' | 'meter' | 'scrape'>;
  serviceMetrics: ServiceMetrics;
  live: LiveUpdates;
}

/** Every path the service answers, the bounded set of `http.route` values. */
const ROUTES = [
  '/',
  GRAPHQL_ENDPOINT,
  GRAPHQL_STREAM_ENDPOINT,
  '/healthz',
  '/readyz',
  '/metrics',
  '/api/metrics',
  REMOTE_WRITE_PATH,
  ...OTLP_METRICS_PATHS,
  ...PROMETHEUS_API_PATHS,
  ...dashboardPaths,
];
/** Probes and scrapes: answered without a span, a measurement or an access log line. */
const UNTRACED = ['/healthz', '/readyz', '/metrics'];
/** At most one EXPLAIN for the slow-operation log per this many milliseconds. */
const EXPLAIN_INTERVAL_MS = 10_000;

export type App = YogaServerInstance<Record<string, never>, Context>;

/** Builds the HTTP application from parts made once. It opens no port: main() listens, tests call `app.fetch`. */
export function createApp(parts: AppParts): App {
  const { config, logger, store, aggregates, prisma, telemetry, serviceMetrics, live } = parts;
  const { observability } = config;
  const requestTelemetry = useRequestTelemetry({
    tracer: telemetry.tracer,
    meter: telemetry.meter,
    logger,
    routes: ROUTES,
    untraced: UNTRACED,
    accessLog: observability.accessLog,
    slowOperationMs: observability.slowOperationMs,
    maxOperationNames: observability.maxOperationNames,
    explain: (statement) => store.explain(statement.text, statement.values),
    explainIntervalMs: EXPLAIN_INTERVAL_MS,
  });
  // Unexpected errors are logged by the request telemetry, with their trace ids: not twice.
  const logUnexpected = (error: unknown) => {
    if (!requestTelemetry.alreadyLogged(error)) logger.error(error);
  };
  const masking = maskedErrors(config.env);
  const batchReaders = new WeakSet<Request>();
  // One set of slots for the expensive work of GraphQL and of the Prometheus API alike.
  const slots = new ExpensiveWorkSlots(config.limits.expensiveOperations);
  return createYoga<Record<string, never>, Context>({
    schema,
    graphqlEndpoint: GRAPHQL_ENDPOINT,
    context: ({ request }) => {
      const reader = storeFor(request, store);
      if ('problem' in reader) {
        throw userError('BAD_USER_INPUT', reader.problem, {
          header: READ_FROM_HEADER,
          http: { status: 400 },
        });
      }
      return {
        config,
        store: reader,
        aggregates,
        prisma,
        serviceMetrics,
        live,
        request,
        scope: requestTelemetry.scopeOf(request),
      };
    },
    logging: {
      debug: logger.debug.bind(logger),
      info: logger.info.bind(logger),
      warn: logger.warn.bind(logger),
      error: (...args) => logUnexpected(args[0]),
    },
    landingPage: false,
    // requestBodyRules enforces MAX_BODY_BYTES, counting only bodies that come without a length.
    maxRequestBodySize: false,
    // useGraphiQLPage serves it (made once, compressed, with its own policy) or says it is off.
    graphiql: false,
    // useCors: Yoga's reflects any origin, `null` included, with credentials.
    cors: false,
    maskedErrors: masking,
    plugins: [
      // First: its onExecuteDone codes the errors it knows before the telemetry counts them.
      useErrorCodes(),
      requestTelemetry.plugin,
      useSecurityHeaders(),
      // Before anything that answers a path: a preflight is answered here, whatever the path.
      useCors(config.http.corsOrigins),
      useGraphiQLPage({
        enabled: config.graphiql,
        endpoint: GRAPHQL_ENDPOINT,
        title: 'metrics-api',
        defaultQuery: EXAMPLE_QUERY,
      }),
      useReadAccess({
        readTokens: config.http.readTokens,
        writeToken: config.ingest.token,
        graphqlPaths: [GRAPHQL_ENDPOINT, GRAPHQL_STREAM_ENDPOINT],
        restPaths: ['/api/metrics', ...PROMETHEUS_API_PATHS, LABEL_VALUES_PREFIX],
      }),
      usePrometheusApi({ config, store, logger, slots, scopeOf: requestTelemetry.scopeOf }),
      restRoutes({
        config,
        store,
        logger,
        graphqlEndpoint: GRAPHQL_ENDPOINT,
        passThrough: [GRAPHQL_ENDPOINT, GRAPHQL_STREAM_ENDPOINT],
        scopeOf: requestTelemetry.scopeOf,
        metrics:
          observability.metricsPort === undefined
            ? { scrape: telemetry.scrape, token: observability.metricsToken }
            : undefined,
      }),
      requestBodyRules({ maxBodyBytes: config.limits.maxBodyBytes }),
      useQueryLimits(config),
      useExpensiveWorkSlots(config, slots),
      useCompiledQueries(),
      useSharedEvents({ finish: finishedEvents(masking, logUnexpected), batchReaders }),
      useCoalescedEventStreams({ batchReaders }),
      useGraphQLOverSSE({
        endpoint: GRAPHQL_STREAM_ENDPOINT,
        live: config.live,
        clientAddressHeader: config.http.clientAddressHeader,
        meter: telemetry.meter,
      }),
      // Disposing of the app (tests, shutdown) ends its streams and its listening connection.
      { onDispose: () => live.close() },
    ],
  });
}
