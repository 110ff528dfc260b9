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

const reasonOf = (error: unknown) =>
  error instanceof Error ? error.message.trim().split('\n').at(-1) : String(error);

/**
 * Readiness: the database answers a trivial query within `timeoutMs`, and so does the read replica
 * when there is one (its replication lag is reported); else 503 with the reason.
 */
export async function readyz(
  store: Pick<MetricStore, 'ping' | 'replicaLag'>,
  timeoutMs: number,
): Promise<Response> {
  const [primary, replica] = await Promise.allSettled([store.ping(timeoutMs), store.replicaLag(timeoutMs)]);
  if (primary.status === 'rejected') {
    return jsonResponse({ status: 'unavailable', reason: `database: ${reasonOf(primary.reason)}` }, 503);
  }
  if (replica.status === 'rejected') {
    return jsonResponse({ status: 'unavailable', reason: `read replica: ${reasonOf(replica.reason)}` }, 503);
  }
  return jsonResponse(
    replica.value === undefined
      ? { status: 'ready' }
      : { status: 'ready', replica: { lagSeconds: Math.round(replica.value * 1000) / 1000 } },
  );
}
