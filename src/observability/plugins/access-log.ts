import type { Plugin } from 'graphql-yoga';
import type { Logger } from '../logger.js';
import { type ObservedRequests, operationLabel, sampledTraceId } from './observed-requests.js';

/** One `request` log line at info for a sample of the observed requests, with its trace when kept. */
export function useAccessLog(options: {
  logger: Logger;
  requests: ObservedRequests;
  /** The share of requests logged, from 0 to 1. */
  sampleRate: number;
}): Plugin {
  const { logger, requests, sampleRate } = options;
  return {
    onResponse({ request, response }) {
      const observed = requests.finished(request);
      // The level first: below info, the line's object is not even built.
      if (!observed || !logger.isLevelEnabled('info') || Math.random() >= sampleRate) return;
      const codes = [...observed.errorCodes];
      logger.info(
        {
          trace_id: sampledTraceId(observed),
          method: request.method,
          route: observed.route ?? '(unknown)',
          status: response.status,
          duration_ms: Math.round(observed.durationMs * 10) / 10,
          operation_name: operationLabel(observed),
          operation_type: observed.operation?.type,
          error_codes: codes.length > 0 ? codes : undefined,
        },
        'request',
      );
    },
  };
}
