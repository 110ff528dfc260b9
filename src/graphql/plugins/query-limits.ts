import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import {
  type DocumentNode,
  GraphQLError,
  NoSchemaIntrospectionCustomRule,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Config } from '../../config.js';
import { operationCost } from '../query-cost.js';

const LIMIT_CODE = 'QUERY_LIMIT_EXCEEDED';

/**
 * graphql-armor throws its rejections as bare "Syntax Error"s; report them as validation errors
 * with a code clients can branch on.
 */
const reportLimit: Pick<
  NonNullable<NonNullable<Parameters<typeof EnvelopArmorPlugin>[0]>['maxDepth']>,
  'propagateOnRejection' | 'onReject'
> = {
  propagateOnRejection: false,
  onReject: [
    (context, error) => {
      const message = error.message.replace(/^Syntax Error: /, '');
      const rejection = new GraphQLError(message, { extensions: { code: LIMIT_CODE } });
      if (context) context.reportError(rejection);
      else throw rejection;
    },
  ],
};

/** graphql-js's rule, its refusal coded: INTROSPECTION_DISABLED. */
const noIntrospection: ValidationRule = (context: ValidationContext) => {
  const coded = Object.create(context, {
    reportError: {
      value: (error: GraphQLError) =>
        context.reportError(
          new GraphQLError(error.message, {
            nodes: error.nodes,
            extensions: { code: 'INTROSPECTION_DISABLED' },
          }),
        ),
    },
  }) as ValidationContext;
  return NoSchemaIntrospectionCustomRule(coded);
};

/**
 * Refuses operations whose estimated cost (graphql/query-cost.ts) is over MAX_QUERY_COST before
 * anything runs: QUERY_LIMIT_EXCEEDED with the estimate and the limit. Variables decide sizes,
 * so this happens at execution, not validation. An operation without variables always costs
 * the same, so its cost is remembered with its document (Yoga's parse cache hands out the same
 * DocumentNode for the same text).
 */
function useCostLimit(config: Pick<Config, 'limits' | 'pagination' | 'maxSeriesBuckets'>): Plugin {
  const { maxCost } = config.limits;
  const remembered = new WeakMap<DocumentNode, Map<string, number | undefined>>();
  const check = (args: {
    schema: Parameters<typeof operationCost>[0];
    document: DocumentNode;
    operationName?: string | null | undefined;
    variableValues?: Record<string, unknown> | null | undefined;
  }): GraphQLError | undefined => {
    const withoutVariables = !args.variableValues || Object.keys(args.variableValues).length === 0;
    const key = args.operationName ?? '';
    let cost = withoutVariables ? remembered.get(args.document)?.get(key) : undefined;
    if (cost === undefined) {
      cost = operationCost(args.schema, args.document, args.operationName, args.variableValues, config);
      if (withoutVariables && cost !== undefined) {
        const byOperation = remembered.get(args.document) ?? new Map<string, number | undefined>();
        byOperation.set(key, cost);
        remembered.set(args.document, byOperation);
      }
    }
    if (cost === undefined || cost <= maxCost) return undefined;
    return new GraphQLError(
      `Query cost limit of ${maxCost} exceeded, estimated ${Math.ceil(cost)}: ask for fewer or smaller lists, summaries or series per request (MAX_QUERY_COST)`,
      { extensions: { code: LIMIT_CODE, cost: Math.ceil(cost), limit: maxCost } },
    );
  };
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const refusal = check(args);
      if (refusal) setResultAndStopExecution({ errors: [refusal] });
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const refusal = check(args);
      if (refusal) setResultAndStopExecution({ errors: [refusal] });
    },
  };
}

/**
 * What one operation may ask for: depth, aliases, tokens, directives and estimated cost, each
 * refusal coded QUERY_LIMIT_EXCEEDED; introspection only where enabled (INTROSPECTION; off in
 * production); field suggestions only outside production.
 */
export function useQueryLimits(
  config: Pick<Config, 'limits' | 'env' | 'introspection' | 'pagination' | 'maxSeriesBuckets'>,
): Plugin {
  const armor = EnvelopArmorPlugin({
    maxDepth: { n: config.limits.maxDepth, ...reportLimit },
    maxAliases: { n: config.limits.maxAliases, ...reportLimit },
    maxTokens: { n: config.limits.maxTokens, ...reportLimit },
    // armor's default limit (50): no request of this API needs more than a few.
    maxDirectives: { ...reportLimit },
    // Its estimate reads page sizes from literals only and knows nothing of summaries: ours does.
    costLimit: { enabled: false },
    blockFieldSuggestion: { enabled: config.env === 'production' },
  });
  const costLimit = useCostLimit(config);
  return {
    onPluginInit({ addPlugin }) {
      // graphql-armor types its plugin for envelop's bare context; Yoga's extends it.
      addPlugin(armor as Plugin);
      addPlugin(costLimit);
    },
    onValidate({ addValidationRule }) {
      if (!config.introspection) addValidationRule(noIntrospection);
    },
  };
}
