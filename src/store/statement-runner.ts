import type { OperationScope } from '../observability/operation-scope.js';

/** Runs one statement under its SQL verb and text (observed, errors classified). */
export type StatementRunner = <T>(
  operation: string,
  text: string,
  values: readonly unknown[],
  run: () => Promise<T>,
  scope?: OperationScope,
) => Promise<T>;
