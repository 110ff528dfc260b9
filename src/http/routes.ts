import type { Plugin } from 'graphql-yoga';
import type { Config } from '../config.js';
import type { Logger } from '../observability/logger.js';
import type { OperationScope } from '../observability/operation-scope.js';
import { DatabaseUnavailableError, RETRY_AFTER_SECONDS } from '../store/errors.js';
import type { MetricStore } from '../store/metric-store.js';
import { OTLP_METRICS_PATHS, otlpHandler, REMOTE_WRITE_PATH, remoteWriteHandler } from './agent-receivers.js';
import { DASHBOARD_PATH, dashboardAsset, dashboardPaths } from './dashboard.js';
import { healthz, readyz } from './health.js';
import { jsonError, jsonResponse } from './json.js';
import { legacyMetrics } from './legacy-metrics.js';
import { type MetricsEndpoint, metricsResponse } from './metrics-endpoint.js';
import { READ_FROM_HEADER, storeFor } from './read-from.js';

type Handler = (request: Request) => Response | Promise<Response>;

/**
 * A REST handler's failure as the client sees it: 503 with Retry-After while the database is
 * away, else a bare 500. Neither carries the cause, which goes to the log.
 */
function failureResponse(error: unknown, logger: Logger, path: string): Response {
  if (error instanceof DatabaseUnavailableError) {
    const response = jsonError(
      503,
      'Service Unavailable',
      `The database is unavailable; retry in ${RETRY_AFTER_SECONDS} seconds.`,
      { code: 'DATABASE_UNAVAILABLE' },
    );
    response.headers.set('retry-after', String(RETRY_AFTER_SECONDS));
    return response;
  }
  logger.error({ err: error, path }, 'REST handler failed');
  return jsonError(500, 'Internal Server Error', 'Unexpected error.', { code: 'INTERNAL_SERVER_ERROR' });
}

/**
 * Serves the REST endpoints next to GraphQL inside Yoga, so that tests reach everything through
 * `yoga.fetch` and the server needs no second router.
 */
export function restRoutes(options: {
  config: Config;
  store: MetricStore;
  logger: Logger;
  graphqlEndpoint: string;
  /** Paths Yoga or another plugin answers (GraphQL, GraphQL over SSE): passed through untouched. */
  passThrough: readonly string[];
  /** The scope of a request, where the store records its statements. */
  scopeOf: (request: Request) => OperationScope | undefined;
  /** Served at /metrics on this port; undefined where METRICS_PORT moves it. */
  metrics: MetricsEndpoint | undefined;
}): Plugin {
  const { config, store, logger, graphqlEndpoint, passThrough, metrics, scopeOf } = options;
  const index = () =>
    jsonResponse({
      service: 'metrics-api',
      graphql: graphqlEndpoint,
      // Where a browser opens GraphiQL, when this server serves it (GRAPHIQL).
      ...(config.graphiql ? { graphiql: graphqlEndpoint } : {}),
      dashboard: DASHBOARD_PATH,
      health: '/healthz',
      readiness: '/readyz',
      rest: '/api/metrics',
      // Prometheus' query API, for Grafana; where agents push (OTLP, remote-write).
      prometheus: '/api/v1/query',
      otlp: OTLP_METRICS_PATHS[0],
      remoteWrite: REMOTE_WRITE_PATH,
    });
  const receivers = { config, store, scopeOf };
  const otlp = otlpHandler(receivers);
  const routes: Record<string, Record<string, Handler>> = {
    // A browser opening the service lands on the dashboard; other clients get the index.
    '/': {
      GET: (request) =>
        request.headers.get('accept')?.includes('text/html')
          ? new Response(null, { status: 302, headers: { location: DASHBOARD_PATH } })
          : index(),
    },
    ...Object.fromEntries(
      dashboardPaths.map((path) => [path, { GET: (request: Request) => dashboardAsset(request, path) }]),
    ),
    '/healthz': { GET: healthz },
    '/readyz': { GET: () => readyz(store, config.readinessTimeoutMs, config.replicaMaxLagSeconds) },
    '/api/metrics': {
      GET: (request) => {
        const reader = storeFor(request, store);
        return 'problem' in reader
          ? jsonError(400, 'Bad Request', reader.problem, { header: READ_FROM_HEADER })
          : legacyMetrics(request, reader, config, scopeOf(request));
      },
    },
    [REMOTE_WRITE_PATH]: { POST: remoteWriteHandler(receivers) },
    ...Object.fromEntries(OTLP_METRICS_PATHS.map((path) => [path, { POST: otlp }])),
    ...(metrics ? { '/metrics': { GET: (request: Request) => metricsResponse(request, metrics) } } : {}),
  };

  return {
    onRequest({ request, url, endResponse }) {
      if (passThrough.includes(url.pathname)) return;
      const route = routes[url.pathname];
      if (!route) {
        endResponse(
          jsonError(404, 'Not Found', `No route for ${url.pathname}. GraphQL is at ${graphqlEndpoint}.`),
        );
        return;
      }
      const handler = route[request.method] ?? (request.method === 'HEAD' ? route.GET : undefined);
      if (!handler) {
        const allow = [...Object.keys(route), 'HEAD'].join(', ');
        const response = jsonError(405, 'Method Not Allowed', `${url.pathname} accepts ${allow}.`);
        response.headers.set('allow', allow);
        endResponse(response);
        return;
      }
      return Promise.resolve()
        .then(() => handler(request))
        .catch((error: unknown) => failureResponse(error, logger, url.pathname))
        .then(endResponse);
    },
  };
}
