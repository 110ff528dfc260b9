import type { Plugin } from 'graphql-yoga';
import { bearerTokenMatcher } from '../domain/bearer-token.js';
import { jsonError, jsonResponse } from './json.js';

const MISSING =
  'Reading requires the header "Authorization: Bearer <token>" with a READ_TOKEN of this server.';
const INVALID = 'The bearer token is not valid for reading.';

/**
 * With READ_TOKEN set (`readTokens`), every request to `graphqlPaths` (queries, subscriptions,
 * SSE streams and their reservations) and `restPaths` needs one of them, or the write token, as a
 * bearer token; else 401 with `WWW-Authenticate: Bearer`, GraphQL-shaped (UNAUTHENTICATED) on
 * GraphQL's paths and REST-shaped elsewhere. A REST path ending in `/` covers the paths under it. Pages (GraphiQL, the dashboard), health, readiness
 * and /metrics (its own METRICS_TOKEN) are not read paths. Without READ_TOKEN, nothing is asked.
 */
export function useReadAccess(options: {
  readTokens: readonly string[] | undefined;
  writeToken: string | undefined;
  graphqlPaths: readonly string[];
  restPaths: readonly string[];
}): Plugin {
  const { readTokens, writeToken, graphqlPaths, restPaths } = options;
  if (readTokens === undefined) return {};
  const matches = bearerTokenMatcher(writeToken === undefined ? readTokens : [...readTokens, writeToken]);
  return {
    onRequest({ request, url, endResponse }) {
      const graphql = graphqlPaths.includes(url.pathname);
      const rest = restPaths.some((path) =>
        path.endsWith('/') ? url.pathname.startsWith(path) : url.pathname === path,
      );
      if (request.method === 'OPTIONS' || (!graphql && !rest)) return;
      const header = request.headers.get('authorization');
      if (matches(header)) return;
      const message = header === null ? MISSING : INVALID;
      const response = graphql
        ? jsonResponse({ errors: [{ message, extensions: { code: 'UNAUTHENTICATED' } }] }, 401)
        : jsonError(401, 'Unauthorized', message, { code: 'UNAUTHENTICATED' });
      response.headers.set('www-authenticate', header === null ? 'Bearer' : 'Bearer error="invalid_token"');
      endResponse(response);
    },
  };
}
