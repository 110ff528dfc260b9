import type { Plugin } from 'graphql-yoga';
import { boundedText, MAX_LIST_ITEMS } from '../bounds.js';
import type { Logger } from '../logger.js';
import type { StatementRecord } from '../operation-scope.js';
import {
  type FinishedRequest,
  type ObservedRequests,
  operationLabel,
  sampledTraceId,
} from './observed-requests.js';

export interface SlowOperationLogOptions {
  logger: Logger;
  requests: ObservedRequests;
  /** A request that takes at least this long is logged. */
  slowOperationMs: number;
  /** EXPLAIN (FORMAT JSON) of a statement, for the log line; undefined for one that is not a read. */
  explain(statement: StatementRecord): Promise<unknown>;
  /** At most one plan is taken per this many milliseconds. */
  explainIntervalMs: number;
}

/**
 * The statements of a slow operation for its log line: one entry per distinct text in the order
 * first run, with how often it ran and its total time; only the MAX_LIST_ITEMS slowest such
 * entries, each text bounded. An operation that ran 10,000 statements (a list of ids read one by
 * one) says so in a few hundred bytes.
 */
function loggedStatements(statements: readonly StatementRecord[]) {
  const byText = new Map<string, { text: string; count: number; ms: number }>();
  for (const { text, ms } of statements) {
    const entry = byText.get(text);
    if (entry) {
      entry.count++;
      entry.ms += ms;
    } else byText.set(text, { text, count: 1, ms });
  }
  const distinct = [...byText.values()];
  const kept = new Set(distinct.toSorted((a, b) => b.ms - a.ms).slice(0, MAX_LIST_ITEMS));
  return {
    statement_count: statements.length,
    statements: distinct
      .filter((entry) => kept.has(entry))
      .map(({ text, count, ms }) => ({ text: boundedText(text), count, ms: Math.round(ms * 10) / 10 })),
    ...(distinct.length > kept.size ? { statements_omitted: distinct.length - kept.size } : {}),
  };
}

/**
 * A `Slow operation` warning for every observed request slower than SLOW_OPERATION_MS, with the
 * SQL it ran and, at most once per interval, the plan of its slowest statement.
 */
export function useSlowOperationLog(options: SlowOperationLogOptions): Plugin {
  const { logger, requests } = options;
  let lastExplain = Number.NEGATIVE_INFINITY;

  function slowOperation(observed: FinishedRequest, request: Request): void {
    const statements = observed.scope.statements;
    const slowest = statements.reduce<StatementRecord | undefined>(
      (worst, statement) => (!worst || statement.ms > worst.ms ? statement : worst),
      undefined,
    );
    const report = (plan: unknown) =>
      logger.warn(
        {
          trace_id: sampledTraceId(observed),
          operation_name: operationLabel(observed),
          operation_type: observed.operation?.type,
          route: observed.route,
          method: request.method,
          duration_ms: Math.round(observed.durationMs),
          ...loggedStatements(statements),
          plan,
        },
        'Slow operation',
      );
    const now = performance.now();
    if (!slowest || now - lastExplain < options.explainIntervalMs) {
      report(undefined);
      return;
    }
    lastExplain = now;
    // After the response has gone: the plan costs the client nothing.
    setImmediate(() => {
      options.explain(slowest).then(report, () => report(undefined));
    });
  }

  return {
    onResponse({ request }) {
      const observed = requests.finished(request);
      if (observed && observed.durationMs >= options.slowOperationMs) slowOperation(observed, request);
    },
  };
}
