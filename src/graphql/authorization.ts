import { createHash, timingSafeEqual } from 'node:crypto';
import { userError } from './errors.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * Whether an Authorization header carries `Bearer <token>` for one of `tokens`, which are digested
 * once. Hashing both sides gives buffers of equal length, which timingSafeEqual requires, so
 * neither a token's content nor its length leaks through timing; every token is compared,
 * whichever matches. Shared by writes, reads (READ_TOKEN) and /metrics scrapes.
 */
export function bearerTokenMatcher(
  tokens: readonly string[],
): (header: string | null | undefined) => boolean {
  const digests = tokens.map(digest);
  return (header) => {
    const given = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '')?.[1];
    if (!given) return false;
    const givenDigest = digest(given);
    let matched = false;
    for (const tokenDigest of digests) matched = timingSafeEqual(givenDigest, tokenDigest) || matched;
    return matched;
  };
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
  if (!bearerTokenMatcher([token])(header)) {
    throw userError('UNAUTHENTICATED', 'The bearer token is not valid for writing.');
  }
}
