import type { OperationScope } from '../observability/operation-scope.js';

/**
 * Runs one statement under its summary and text (observed, errors classified). The summary is the
 * SQL verb, then the table the statement works on when it works on one: `SELECT metrics`,
 * `UPDATE metrics_revision`, `SELECT partman.part_config`; the verb alone for a catalog query, a
 * lock or a function (see DatabaseTelemetry.statement).
 */
export type StatementRunner = <T>(
  summary: string,
  text: string,
  values: readonly unknown[],
  run: () => Promise<T>,
  scope?: OperationScope,
) => Promise<T>;
