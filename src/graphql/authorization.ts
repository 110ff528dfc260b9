import { createHash, timingSafeEqual } from 'node:crypto';
import { userError } from './errors.js';

/**
 * Hashing both sides first gives buffers of equal length, which timingSafeEqual requires, so
 * neither the token's content nor its length leaks through timing.
 */
function tokensMatch(given: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

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
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  if (!match || !tokensMatch(match[1] as string, token)) {
    throw userError('UNAUTHENTICATED', 'The bearer token is not valid for writing.');
  }
}
