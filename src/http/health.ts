import type { RequestListener } from 'node:http';
import type { MetricStore } from '../store/metric-store.js';
import { jsonResponse } from './json.js';
import { NO_SNIFF_HEADERS } from './security-headers.js';

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
    response.writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': length,
      ...NO_SNIFF_HEADERS,
    });
    response.end(request.method === 'HEAD' ? undefined : LIVENESS_BODY);
  };
}

const reasonOf = (error: unknown) =>
  error instanceof Error ? error.message.trim().split('\n').at(-1) : String(error);

/**
 * Readiness: the database answers a trivial query within `timeoutMs` on a connection of its own
 * (a busy pool is not an unreachable database); with a read replica, it answers too, streams WAL
 * from the primary and is at most `maxReplicaLagSeconds` behind it. Else 503 with the reason.
 * The replica's state is reported either way.
 */
export async function readyz(
  store: Pick<MetricStore, 'ping' | 'replicaState'>,
  timeoutMs: number,
  maxReplicaLagSeconds: number,
): Promise<Response> {
  const [primary, replica] = await Promise.allSettled([store.ping(timeoutMs), store.replicaState(timeoutMs)]);
  const unavailable = (reason: string, extra: object = {}) =>
    jsonResponse({ status: 'unavailable', reason, ...extra }, 503);
  if (primary.status === 'rejected') return unavailable(`database: ${reasonOf(primary.reason)}`);
  if (replica.status === 'rejected') return unavailable(`read replica: ${reasonOf(replica.reason)}`);
  if (replica.value === undefined) return jsonResponse({ status: 'ready' });
  const state = {
    streaming: replica.value.streaming,
    lagSeconds: Math.round(replica.value.lagSeconds * 1000) / 1000,
  };
  if (!state.streaming) {
    return unavailable('read replica: not streaming from the primary (its reads go stale)', {
      replica: state,
    });
  }
  if (state.lagSeconds > maxReplicaLagSeconds) {
    return unavailable(
      `read replica: ${state.lagSeconds} s behind the primary (at most ${maxReplicaLagSeconds} s)`,
      { replica: state },
    );
  }
  return jsonResponse({ status: 'ready', replica: state });
}
