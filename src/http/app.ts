import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import { PothosValidationError } from '@pothos/core';
import { GraphQLError } from 'graphql';
import { createYoga, maskError as defaultMaskError, type YogaServerInstance } from 'graphql-yoga';
import type { Context } from './builder.js';
import { useCompiledQueries } from './compiled-queries.js';
import type { Config } from './config.js';
import type { PrismaClient } from './database.js';
import type { Logger } from './logger.js';
import { AggregateCache } from './metrics/aggregate-cache.js';
import { metricsRevision } from './metrics/queries.js';
import { restRoutes } from './rest/routes.js';
import { schema } from './schema/index.js';

export const GRAPHQL_ENDPOINT = '/graphql';

const EXAMPLE_QUERY = `# metrics-api: CPU load and concurrency samples.
# Page through samples with first/after; start is inclusive, end exclusive.
query FirstSamples {
  metrics(first: 10, start: "2026-11-26T00:00:00Z") {
    totalCount
    edges {
      cursor
      node { timestamp unixTime cpuLoad concurrency }
    }
    pageInfo { hasNextPage endCursor }
  }
  metricsSummary(start: "2026-11-26T00:00:00Z", end: "2026-11-27T00:00:00Z") {
    count
    cpuLoad { min max avg p50 p95 p99 }
    concurrency { min max avg p95 }
  }
}
`;

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

export interface AppOptions {
  config: Config;
  prisma: PrismaClient;
  logger: Logger;
}

export type App = YogaServerInstance<Record<string, never>, Context>;

/** Builds the HTTP application. It opens no port: `server.ts` listens, tests call `app.fetch`. */
export function createApp({ config, prisma, logger }: AppOptions): App {
  const production = config.env === 'production';
  const aggregates = new AggregateCache(config.aggregateCacheBytes, () => metricsRevision(prisma));
  return createYoga<Record<string, never>, Context>({
    schema,
    graphqlEndpoint: GRAPHQL_ENDPOINT,
    context: ({ request }) => ({ prisma, config, request, aggregates }),
    logging: logger,
    landingPage: false,
    // restRoutes enforces the body limit from Content-Length, which it requires and node:http holds
    // the body to; Yoga's own limit would also count every body through a stream (7% of CPU).
    maxRequestBodySize: false,
    graphiql: config.graphiql ? { title: 'metrics-api', defaultQuery: EXAMPLE_QUERY } : false,
    renderGraphiQL,
    maskedErrors: {
      maskError(error, message, isDev) {
        // Pothos rejects malformed global ids and similar input before our resolvers run.
        const original = error instanceof GraphQLError ? error.originalError : error;
        if (original instanceof PothosValidationError) {
          return new GraphQLError(original.message, { extensions: { code: 'BAD_USER_INPUT' } });
        }
        return defaultMaskError(error, message, isDev && !production);
      },
    },
    plugins: [
      restRoutes({ config, prisma, graphqlEndpoint: GRAPHQL_ENDPOINT }),
      EnvelopArmorPlugin({
        maxDepth: { n: config.limits.maxDepth, ...reportLimit },
        maxAliases: { n: config.limits.maxAliases, ...reportLimit },
        maxTokens: { n: config.limits.maxTokens, ...reportLimit },
        costLimit: { enabled: false },
        blockFieldSuggestion: { enabled: production },
      }),
      useCompiledQueries(),
    ],
  });
}
