import {
  type DocumentNode,
  type ExecutionResult,
  GraphQLError,
  getOperationAST,
  type Source,
  type SourceLocation,
} from 'graphql';
import { type CompiledQuery, compileQuery, isCompiledQuery } from 'graphql-jit';
import type { Plugin } from 'graphql-yoga';

/**
 * Runs queries through graphql-jit, which compiles each operation to plain JavaScript: on a page
 * of 100 metrics, field-by-field interpretation was most of what the server did.
 *
 * graphql-jit answers differently from graphql-js in a few cases, all of them errors, and then
 * Yoga's own executor runs the query and its answer is sent:
 * - variables it refuses (an omitted non-null variable with a default, which graphql-js accepts;
 *   a custom scalar's refusal reported as "Expected type DateTime." instead of the scalar's own
 *   message): nothing has run yet, so this costs nothing;
 * - errors of its own making (a null for a non-null field, a value a scalar cannot serialize),
 *   which it orders and reports differently, and Yoga would not mask in production.
 * Errors thrown by resolvers are the same in both; graphql-jit keeps their locations as plain
 * values, which Yoga drops when it rebuilds errors, so they are rebuilt as graphql-js builds
 * them. Answers are the same bytes either way (tested). Only queries are compiled: a read may
 * run twice, a mutation must not.
 */
export function useCompiledQueries(): Plugin {
  // Yoga's parse cache hands out the same DocumentNode for the same query text, so the compiled
  // form lives exactly as long as the parsed one. Compiling costs milliseconds, more than running
  // a query once: a document is compiled when it runs the second time, so queries that inline
  // their arguments (a new document every time) are never compiled.
  const compiled = new WeakMap<DocumentNode, Map<string, CompiledQuery | null | 'seen once'>>();

  function compiledFor(
    schema: Parameters<typeof compileQuery>[0],
    document: DocumentNode,
    operationName: string | null | undefined,
  ): CompiledQuery | null {
    let byOperation = compiled.get(document);
    if (!byOperation) {
      byOperation = new Map();
      compiled.set(document, byOperation);
    }
    const key = operationName ?? '';
    const known = byOperation.get(key);
    if (known === undefined) {
      byOperation.set(key, 'seen once');
      return null;
    }
    if (known !== 'seen once') return known;
    const operation = getOperationAST(document, operationName);
    const result =
      operation?.operation === 'query' ? compileQuery(schema, document, operationName ?? undefined) : null;
    const query = result && isCompiledQuery(result) ? result : null;
    byOperation.set(key, query);
    return query;
  }

  return {
    onExecute({ args, executeFn, setExecuteFn }) {
      const query = compiledFor(args.schema, args.document, args.operationName);
      if (!query) return;
      setExecuteFn(async (executionArgs) => {
        const result = (await query.query(
          executionArgs.rootValue,
          executionArgs.contextValue,
          executionArgs.variableValues,
        )) as ExecutionResult;
        if (!result.errors?.length) return result;
        const source = executionArgs.document.loc?.source;
        // No data: the variables were refused before any resolver ran. An error of graphql-jit's
        // own (no original error: a null for a non-null field, a value a scalar cannot serialize)
        // is ordered and masked differently from graphql-js's. Either way, Yoga's executor answers.
        if (result.data === undefined || !source || result.errors.some((error) => !error.originalError)) {
          return executeFn(executionArgs);
        }
        // In the order Yoga's executor writes them, so that answers are the same bytes.
        return { errors: result.errors.map((error) => located(error, source)), data: result.data };
      });
    },
  };
}

/** The error as graphql-js makes it: positions in the source, from which its locations follow. */
function located(error: GraphQLError, source: Source): GraphQLError {
  return new GraphQLError(error.message, {
    source,
    positions: error.locations?.length
      ? error.locations.map((location) => offsetOf(source.body, location))
      : undefined,
    path: error.path,
    originalError: error.originalError,
    extensions: error.extensions,
  });
}

function offsetOf(body: string, { line, column }: SourceLocation): number {
  // The line breaks graphql-js counts.
  const lineBreak = /\r\n|[\n\r]/g;
  let lineStart = 0;
  for (let current = 1; current < line; current++) {
    const found = lineBreak.exec(body);
    if (!found) break;
    lineStart = found.index + found[0].length;
  }
  return lineStart + column - 1;
}
