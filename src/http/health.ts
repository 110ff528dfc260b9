import type { MetricStore } from '../store/metric-store.js';
import { jsonResponse } from './json.js';

/** Liveness, with the seed's contract: 200 and the JSON string "Ping!". Never touches the database. */
export function healthz(): Response {
  return jsonResponse('Ping!');
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
