import type { Plugin } from 'graphql-yoga';
import type { Config } from '../config.js';
import type { PrismaClient } from '../database.js';
import { healthz, readyz } from './health.js';
import { jsonError } from './json.js';
import { legacyMetrics } from './legacy-metrics.js';

type Handler = (request: Request) => Response | Promise<Response>;

/**
 * Serves the REST endpoints next to GraphQL inside Yoga, so that tests reach everything through
 * `yoga.fetch` and the server needs no second router. Also enforces the request body limit.
 */
export function restRoutes(options: {
  config: Config;
  prisma: PrismaClient;
  graphqlEndpoint: string;
}): Plugin {
  const { config, prisma, graphqlEndpoint } = options;
  const routes: Record<string, Record<string, Handler>> = {
    '/healthz': { GET: healthz },
    '/readyz': { GET: () => readyz(prisma, config.readinessTimeoutMs) },
    '/api/metrics': { GET: (request) => legacyMetrics(request, prisma, config) },
  };

  return {
    onRequest({ request, url, endResponse }) {
      if (url.pathname === graphqlEndpoint) {
        const length = request.headers.get('content-length');
        if (length !== null && Number(length) > config.limits.maxBodyBytes) {
          endResponse(
            jsonError(
              413,
              'Payload Too Large',
              `Request bodies are limited to ${config.limits.maxBodyBytes} bytes.`,
            ),
          );
        } else if (length === null && request.method === 'POST' && request.body !== null) {
          endResponse(
            jsonError(411, 'Length Required', 'Send a Content-Length header with the request body.'),
          );
        }
        return;
      }
      const route = routes[url.pathname];
      if (!route) {
        endResponse(
          jsonError(404, 'Not Found', `No route for ${url.pathname}. GraphQL is at ${graphqlEndpoint}.`),
        );
        return;
      }
      const handler = route[request.method] ?? (request.method === 'HEAD' ? route.GET : undefined);
      if (!handler) {
        const allow = [...Object.keys(route), 'HEAD'].join(', ');
        const response = jsonError(405, 'Method Not Allowed', `${url.pathname} accepts ${allow}.`);
        response.headers.set('allow', allow);
        endResponse(response);
        return;
      }
      return Promise.resolve(handler(request)).then(endResponse);
    },
  };
}
