import type { MetricStore } from '../store/metric-store.js';

/**
 * The request header with which a client asks for its reads to go to the primary: after a write,
 * to see it at once (a standby shows it once replayed, usually within milliseconds). Without a
 * read replica both values read the one database.
 */
export const READ_FROM_HEADER = 'x-read-from';

/** The store a request reads through, or why its header is refused. */
export function storeFor(request: Request, store: MetricStore): MetricStore | { problem: string } {
  const value = request.headers.get(READ_FROM_HEADER);
  if (value === null) return store;
  switch (value.trim().toLowerCase()) {
    case 'replica':
      return store;
    case 'primary':
      return store.primary;
    default:
      return {
        problem: `${READ_FROM_HEADER}: must be primary or replica, got ${JSON.stringify(value.slice(0, 40))}`,
      };
  }
}
