import type { Meter, Tracer } from '@opentelemetry/api';
import type { Plugin } from 'graphql-yoga';
import type { Logger } from './logger.js';
import type { OperationScope, StatementRecord } from './operation-scope.js';
import { useAccessLog } from './plugins/access-log.js';
import { useGraphQLSpans } from './plugins/graphql-spans.js';
import { useHttpSpans } from './plugins/http-spans.js';
import { useObservedRequests } from './plugins/observed-requests.js';
import { useRequestMetrics } from './plugins/request-metrics.js';
import { useSlowOperationLog } from './plugins/slow-operation-log.js';
import { useUnexpectedErrorLog } from './plugins/unexpected-error-log.js';

export interface RequestTelemetryOptions {
  /** A tracer when tracing is on; without one no span is made. */
  tracer: Tracer | undefined;
  meter: Meter;
  logger: Logger;
  /** The routes this service answers: anything else is labelled by method alone. */
  routes: readonly string[];
  /** Paths answered without a span, a log line or a measurement (probes, scrapes). */
  untraced: readonly string[];
  accessLog: { enabled: boolean; sampleRate: number };
  slowOperationMs: number;
  /** Distinct values a client-chosen label (operation name, error code) takes before the rest are "(other)". */
  maxOperationNames: number;
  /** EXPLAIN (FORMAT JSON) of a statement, for the slow-operation log; undefined for one that is not a read. */
  explain(statement: StatementRecord): Promise<unknown>;
  /** At most one plan is taken per this many milliseconds. */
  explainIntervalMs: number;
}

/**
 * Observability of every request, one Yoga plugin per concern (plugins/), through Yoga's own hooks
 * (no patching): the HTTP server span, the GraphQL spans, the request metrics, the access log, the
 * slow-operation log and the log of unexpected errors, over the facts of each request that
 * useObservedRequests keeps. Spans start and end in plain hooks, not Yoga's `instrumentation`
 * wrappers: those wrap every phase of every request in promises, a cost measurable on a page even
 * for a request the sampler drops. Parents are passed explicitly, never through an async context
 * (see operation-scope.ts); a request its sampler drops makes no child.
 */
export function useRequestTelemetry(options: RequestTelemetryOptions): {
  /** Adds the plugins, in their order, where it is registered. */
  plugin: Plugin;
  /** The scope of a request being served, to hand to the store; none for untraced paths. */
  scopeOf(request: Request): OperationScope | undefined;
  /** Whether an error was logged here already, with its trace (Yoga's logger skips those). */
  alreadyLogged(error: unknown): boolean;
} {
  const { tracer, meter, logger } = options;
  const { plugin: observedRequests, requests } = useObservedRequests(options);
  const unexpectedErrorLog = useUnexpectedErrorLog({ logger, requests });
  const plugins: Plugin[] = [
    // First: its onRequest makes the facts the others read, its onResponse their duration.
    observedRequests,
    // The GraphQL spans before the HTTP span: on the response, a child ends before its parent.
    ...(tracer ? [useGraphQLSpans({ tracer, requests }), useHttpSpans({ tracer, requests })] : []),
    useRequestMetrics({ meter, requests, maxErrorCodes: options.maxOperationNames }),
    ...(options.accessLog.enabled
      ? [useAccessLog({ logger, requests, sampleRate: options.accessLog.sampleRate })]
      : []),
    useSlowOperationLog({
      logger,
      requests,
      slowOperationMs: options.slowOperationMs,
      explain: options.explain,
      explainIntervalMs: options.explainIntervalMs,
    }),
    unexpectedErrorLog.plugin,
  ];
  return {
    plugin: {
      onPluginInit({ addPlugin }) {
        for (const plugin of plugins) addPlugin(plugin);
      },
    },
    scopeOf: (request) => requests.of(request)?.scope,
    alreadyLogged: unexpectedErrorLog.alreadyLogged,
  };
}
