import { AsyncLocalStorage } from 'node:async_hooks';

/** One SQL statement an operation ran, for the slow-operation log. */
export interface StatementRecord {
  /** The statement with its placeholders; values are kept apart and never logged. */
  text: string;
  values: readonly unknown[];
  ms: number;
}

/** What is known of the request being served, wherever in its call tree code runs. */
export interface OperationScope {
  statements: StatementRecord[];
  /** The GraphQL operation's name (bounded, as in the metrics), once known. */
  operationName?: string | undefined;
}

const storage = new AsyncLocalStorage<OperationScope>();

/** Runs `work` with a scope of its own, which `currentScope()` finds in everything it calls. */
export function withOperationScope<T>(scope: OperationScope, work: () => T): T {
  return storage.run(scope, work);
}

export function currentScope(): OperationScope | undefined {
  return storage.getStore();
}
