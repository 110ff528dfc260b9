import type { Context, Span } from '@opentelemetry/api';

/** One SQL statement an operation ran, for the slow-operation log. */
export interface StatementRecord {
  /** The statement with its placeholders; values are kept apart and never logged. */
  text: string;
  values: readonly unknown[];
  ms: number;
}

/**
 * What is known of the request being served: the statements it ran, and where in its trace the
 * work is now. It is handed down explicitly (GraphQL context -> resolvers -> store), as is the
 * trace context, instead of through AsyncLocalStorage: on Node 20 its promise hooks slow every
 * promise of every request, sampled or not (bench: W1 at 68% of tracing off with 10% sampled).
 */
export interface OperationScope {
  statements: StatementRecord[];
  /** The span that work for this request is a child of now (server span, then graphql.execute), when tracing. */
  trace?: { context: Context; span: Span } | undefined;
}
