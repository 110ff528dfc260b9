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
 * graphql-jit coerces variables differently from graphql-js: it refuses an omitted non-null
 * variable that has a default, and reports a custom scalar's refusal as "Expected type DateTime."
 * instead of the scalar's own message. Those failures happen before any resolver runs and leave no
 * `data`, so the operation then runs through Yoga's own executor, whose answer is sent; re-running
 * costs nothing. Errors raised while resolving are the resolvers' own, with the same message, path,
 * and extensions either way, so the compiled answer is sent; graphql-jit's errors carry their
 * locations as plain values, which Yoga drops when it rebuilds errors, so they are rebuilt as
 * graphql-js errors first (tested: the same response bytes either way). Only queries are
 * compiled. graphql-jit does not report a scalar whose `serialize` returns null for a non-null
 * field; none of ours does (DateTime throws on an invalid date).
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
        if (result.data === undefined) return executeFn(executionArgs);
        const source = executionArgs.document.loc?.source;
        if (!result.errors || !source) return result;
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
    positions: error.locations?.map((location) => offsetOf(source.body, location)),
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
