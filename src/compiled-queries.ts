import { type DocumentNode, type ExecutionResult, getOperationAST } from 'graphql';
import { type CompiledQuery, compileQuery, isCompiledQuery } from 'graphql-jit';
import type { Plugin } from 'graphql-yoga';

/**
 * Runs successful queries through graphql-jit, which compiles each operation to plain JavaScript:
 * on a page of 100 metrics, field-by-field interpretation is most of what the server does.
 *
 * graphql-jit is not a drop-in replacement for graphql-js when something goes wrong: it reports
 * errors without `locations`, replaces custom scalars' messages, and refuses an omitted non-null
 * variable that has a default. So graphql-js stays the reference: whenever the compiled query
 * reports an error, the operation runs again through graphql-js and that answer is the one sent.
 * Only queries take this path; re-running a read has no effect, re-running a mutation would.
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
        return executeFn(executionArgs);
      });
    },
  };
}
