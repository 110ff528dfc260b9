import { bearerTokenMatcher } from '../domain/bearer-token.js';
import { userError } from './errors.js';

/** Refuses a write unless `request` carries the bearer token; with no token configured, writing is off. */
export function authorizeWrite(request: Request, token: string | undefined): void {
  if (!token) {
    throw userError(
      'INGEST_DISABLED',
      'Ingest over GraphQL is disabled on this server: set INGEST_TOKEN (at least 16 characters) to enable it.',
    );
  }
  const header = request.headers.get('authorization');
  if (!header)
    throw userError('UNAUTHENTICATED', 'Writing requires the header "Authorization: Bearer <token>".');
  if (!bearerTokenMatcher([token])(header)) {
    throw userError('UNAUTHENTICATED', 'The bearer token is not valid for writing.');
  }
}
