import type { ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Logger } from '../logger.js';
import { type ObservedRequests, operationLabel, unexpectedCause } from './observed-requests.js';

/**
 * One error log line for every unexpected error of an operation (one without a code, which Yoga
 * masks): its cause, the ids of the request's server span, the operation and the error's path.
 */
export function useUnexpectedErrorLog(options: { logger: Logger; requests: ObservedRequests }): {
  plugin: Plugin;
  /** Whether an error was logged here already, with its trace (Yoga's logger skips those). */
  alreadyLogged(error: unknown): boolean;
} {
  const { logger, requests } = options;
  // Unexpected errors logged here with their trace ids; Yoga logs no second line for them.
  const logged = new WeakSet<object>();
  const plugin: Plugin = {
    onExecute({ args }) {
      const observed = requests.ofContext(args.contextValue);
      if (!observed) return;
      return {
        onExecuteDone({ result }) {
          if (Symbol.asyncIterator in result) return;
          for (const error of (result as ExecutionResult).errors ?? []) {
            const cause = unexpectedCause(error);
            if (!cause) continue;
            logger.error(
              {
                err: cause,
                trace_id: observed.serverSpan?.traceId,
                span_id: observed.serverSpan?.spanId,
                operation: operationLabel(observed),
                path: error.path,
              },
              'Unexpected error in an operation',
            );
            logged.add(error);
          }
        },
      };
    },
  };
  return {
    plugin,
    alreadyLogged: (error) => typeof error === 'object' && error !== null && logged.has(error),
  };
}
