import type { Plugin } from 'graphql-yoga';
import { jsonError } from './json.js';

/** What a cross-origin page may send: GraphQL over HTTP and over SSE (PUT/DELETE reserve and stop a stream). */
const ALLOWED_METHODS = 'GET, HEAD, POST, PUT, DELETE';
const ALLOWED_HEADERS =
  'authorization, content-type, accept, x-read-from, x-graphql-event-stream-token, traceparent, tracestate';
/** Headers a cross-origin page may read besides the safelisted ones: REST's next page, outages, auth. */
const EXPOSED_HEADERS = 'link, retry-after, www-authenticate';
/** How long a browser may reuse a preflight's answer. */
const PREFLIGHT_MAX_AGE_SECONDS = 600;
/** How much of a refused origin the answer quotes. */
const QUOTED_ORIGIN_LENGTH = 80;

/**
 * Cross-origin access by CORS_ORIGINS: none when empty (no CORS header; preflights refused with
 * 403), the listed origins exactly, or any origin for `*`. Credentials are never allowed: the
 * service sets no cookie and reads its tokens from Authorization, which a page sends without them.
 * The origin `null` (sandboxed frames, file: pages) is never allowed, not even by `*`.
 */
export function useCors(origins: readonly string[]): Plugin {
  const anyOrigin = origins.includes('*');
  const allowed = (origin: string) => origin !== 'null' && (anyOrigin || origins.includes(origin));
  return {
    onRequest({ request, endResponse }) {
      const origin = request.headers.get('origin');
      if (request.method !== 'OPTIONS' || origin === null) return;
      if (!request.headers.has('access-control-request-method')) return;
      if (!allowed(origin)) {
        endResponse(
          jsonError(
            403,
            'Forbidden',
            `Cross-origin requests from ${JSON.stringify(origin.slice(0, QUOTED_ORIGIN_LENGTH))} are not allowed: CORS_ORIGINS lists the origins that are.`,
          ),
        );
        return;
      }
      endResponse(
        new Response(null, {
          status: 204,
          headers: {
            'access-control-allow-methods': ALLOWED_METHODS,
            'access-control-allow-headers': ALLOWED_HEADERS,
            'access-control-max-age': String(PREFLIGHT_MAX_AGE_SECONDS),
            // Safari waits for a body on a 204 without it.
            'content-length': '0',
          },
        }),
      );
    },
    onResponse({ request, response }) {
      // The answer depends on the origin only when it is an allow-list: caches must keep them apart.
      if (origins.length > 0 && !anyOrigin) response.headers.append('vary', 'origin');
      const origin = request.headers.get('origin');
      if (origin === null || !allowed(origin)) return;
      response.headers.set('access-control-allow-origin', anyOrigin ? '*' : origin);
      response.headers.set('access-control-expose-headers', EXPOSED_HEADERS);
    },
  };
}
