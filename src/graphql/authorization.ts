import { bearerTokenMatcher, writeRefusal } from '../domain/bearer-token.js';
import { userError } from './errors.js';

/** Refuses a write unless `request` carries the bearer token; with no token configured, writing is off. */
export function authorizeWrite(request: Request, token: string | undefined): void {
  const refusal = writeRefusal(
    request.headers.get('authorization'),
    token ? bearerTokenMatcher([token]) : undefined,
    'Ingest over GraphQL',
  );
  if (refusal) throw userError(refusal.code, refusal.message);
}
