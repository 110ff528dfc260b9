import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { GraphQLError } from 'graphql';
import type { Config } from '../../config.js';

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
      const rejection = new GraphQLError(message, { extensions: { code: 'QUERY_LIMIT_EXCEEDED' } });
      if (context) context.reportError(rejection);
      else throw rejection;
    },
  ],
};

/** Depth, alias and token limits per document; field suggestions only outside production. */
export function useQueryLimits(config: Pick<Config, 'limits' | 'env'>) {
  return EnvelopArmorPlugin({
    maxDepth: { n: config.limits.maxDepth, ...reportLimit },
    maxAliases: { n: config.limits.maxAliases, ...reportLimit },
    maxTokens: { n: config.limits.maxTokens, ...reportLimit },
    costLimit: { enabled: false },
    blockFieldSuggestion: { enabled: config.env === 'production' },
  });
}
