import { createServer, type Server } from 'node:http';
import { bearerTokenMatcher } from '../domain/bearer-token.js';
import { jsonError } from './json.js';
import { NO_SNIFF_HEADERS } from './security-headers.js';

/** Prometheus' text exposition format. */
const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export interface MetricsEndpoint {
  scrape(): Promise<string>;
  /** A bearer token scrapes must carry, when set. */
  token: string | undefined;
}

/** `GET /metrics` as a fetch handler, for the main port. */
export async function metricsResponse(request: Request, endpoint: MetricsEndpoint): Promise<Response> {
  if (endpoint.token && !bearerTokenMatcher([endpoint.token])(request.headers.get('authorization'))) {
    const response = jsonError(
      401,
      'Unauthorized',
      'Scraping /metrics requires "Authorization: Bearer <METRICS_TOKEN>".',
    );
    response.headers.set('www-authenticate', 'Bearer');
    return response;
  }
  return new Response(await endpoint.scrape(), { headers: { 'content-type': CONTENT_TYPE } });
}

/** `/metrics` on a port of its own (METRICS_PORT), as Kubernetes setups often want; nothing else is served there. */
export function metricsServer(endpoint: MetricsEndpoint): Server {
  return createServer((incoming, outgoing) => {
    const url = `http://${incoming.headers.host ?? 'localhost'}${incoming.url ?? '/'}`;
    const request = new Request(url, {
      method: incoming.method,
      headers: incoming.headers as Record<string, string>,
    });
    const answer =
      new URL(url).pathname === '/metrics' && (incoming.method === 'GET' || incoming.method === 'HEAD')
        ? metricsResponse(request, endpoint)
        : Promise.resolve(jsonError(404, 'Not Found', 'This port serves GET /metrics only.'));
    answer
      .then(async (response) => {
        // The main port's answers get it from useSecurityHeaders; this port has no plugins.
        outgoing.writeHead(response.status, { ...Object.fromEntries(response.headers), ...NO_SNIFF_HEADERS });
        outgoing.end(incoming.method === 'HEAD' ? undefined : Buffer.from(await response.arrayBuffer()));
      })
      .catch(() => {
        outgoing.writeHead(500, { 'content-type': 'application/json; charset=utf-8', ...NO_SNIFF_HEADERS });
        outgoing.end(JSON.stringify({ error: 'Internal Server Error', message: 'Unexpected error.' }));
      });
  });
}
