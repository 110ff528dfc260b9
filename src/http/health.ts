import type { RequestListener } from 'node:http';
import type { MetricStore } from '../store/metric-store.js';
import { jsonResponse } from './json.js';

const LIVENESS_PATH = '/healthz';
const LIVENESS_BODY = JSON.stringify('Ping!');

/** Liveness, with the seed's contract: 200 and the JSON string "Ping!". Never touches the database. */
export function healthz(): Response {
  return jsonResponse('Ping!');
}

/**
 * `listener` with `GET /healthz` answered by node:http itself, before the request becomes a fetch
 * Request for Yoga: probes and load balancers hit it constantly and it needs nothing of the app.
 * The answer is healthz()'s, byte for byte; anything else (another method, a query string) goes
 * to the app, whose route answers it.
 */
export function answeringLiveness(listener: RequestListener): RequestListener {
  const length = String(Buffer.byteLength(LIVENESS_BODY));
  return (request, response) => {
    if (request.url !== LIVENESS_PATH || (request.method !== 'GET' && request.method !== 'HEAD')) {
      listener(request, response);
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': length });
    response.end(request.method === 'HEAD' ? undefined : LIVENESS_BODY);
  };
}

/** Readiness: the database answers a trivial query within `timeoutMs`, else 503 with the reason. */
export async function readyz(store: Pick<MetricStore, 'ping'>, timeoutMs: number): Promise<Response> {
  try {
    await store.ping(timeoutMs);
    return jsonResponse({ status: 'ready' });
  } catch (error) {
    const reason = error instanceof Error ? error.message.trim().split('\n').at(-1) : String(error);
    return jsonResponse({ status: 'unavailable', reason: `database: ${reason}` }, 503);
  }
}
