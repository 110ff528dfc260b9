import type { Meter } from '@opentelemetry/api';
import type { Plugin } from 'graphql-yoga';
import { LabelValues } from '../bounds.js';
import type { ObservedRequests } from './observed-requests.js';

/** Seconds: the semantic conventions' advice for http.server.request.duration. */
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/**
 * The measurements of every observed request: the requests in progress, the request duration
 * histogram, and GraphQL operations (by type, name and outcome) and errors (by extensions.code)
 * counted.
 */
export function useRequestMetrics(options: {
  meter: Meter;
  requests: ObservedRequests;
  /** Distinct error codes kept as labels before the rest are "(other)". */
  maxErrorCodes: number;
}): Plugin {
  const { meter, requests } = options;
  const errorCodes = new LabelValues(options.maxErrorCodes);
  const duration = meter.createHistogram('http.server.request.duration', {
    unit: 's',
    description: 'Duration of HTTP server requests.',
    advice: { explicitBucketBoundaries: HTTP_BUCKETS },
  });
  const active = meter.createUpDownCounter('http.server.active_requests', {
    unit: '{request}',
    description: 'HTTP server requests in progress (until their response starts).',
  });
  const operations = meter.createCounter('graphql.server.operations', {
    unit: '{operation}',
    description: 'GraphQL operations by type, name and outcome.',
  });
  const errors = meter.createCounter('graphql.server.errors', {
    unit: '{error}',
    description: 'GraphQL errors by extensions.code.',
  });
  return {
    onRequest({ request }) {
      const observed = requests.of(request);
      if (observed) active.add(1, { 'http.request.method': observed.method });
    },
    onResponse({ request, response }) {
      const observed = requests.finished(request);
      if (!observed) return;
      active.add(-1, { 'http.request.method': observed.method });
      const { operation, route, errorCodes: codes } = observed;
      duration.record(observed.durationMs / 1000, {
        'http.request.method': observed.method,
        'http.response.status_code': response.status,
        ...(route ? { 'http.route': route } : {}),
      });
      if (operation) {
        operations.add(1, {
          'graphql.operation.type': operation.type,
          'graphql.operation.name': operation.label,
          outcome: codes.size > 0 ? 'error' : 'ok',
        });
      } else if (route === '/graphql' && codes.size > 0) {
        operations.add(1, {
          'graphql.operation.type': 'unknown',
          'graphql.operation.name': '(invalid)',
          outcome: 'error',
        });
      }
      for (const code of codes) errors.add(1, { 'graphql.error.code': errorCodes.bounded(code) });
    },
  };
}
