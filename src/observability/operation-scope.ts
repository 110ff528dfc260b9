import { type Context, createContextKey } from '@opentelemetry/api';

/** One SQL statement an operation ran, for the slow-operation log. */
export interface StatementRecord {
  /** The statement with its placeholders; values are kept apart and never logged. */
  text: string;
  values: readonly unknown[];
  ms: number;
}

/**
 * What is known of the request being served: the statements it ran and its operation name. It is
 * handed down explicitly (GraphQL context -> resolvers -> store), not through AsyncLocalStorage,
 * whose promise hooks cost every request on Node 20 even with tracing off (bench: 20% of a page).
 */
export interface OperationScope {
  statements: StatementRecord[];
  /** The GraphQL operation's name (bounded, as in the metrics), once known. */
  operationName?: string | undefined;
}

const SCOPE = createContextKey('metrics-api operation scope');

/** The trace context with the scope in it, so that log lines written under it can name the operation. */
export function withScope(context: Context, scope: OperationScope): Context {
  return context.setValue(SCOPE, scope);
}

export function scopeIn(context: Context): OperationScope | undefined {
  return context.getValue(SCOPE) as OperationScope | undefined;
}
