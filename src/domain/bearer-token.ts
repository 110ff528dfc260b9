import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * Whether an Authorization header carries `Bearer <token>` for one of `tokens`, which are digested
 * once. Hashing both sides gives buffers of equal length, which timingSafeEqual requires, so
 * neither a token's content nor its length leaks through timing; every token is compared,
 * whichever matches. Shared by writes (graphql/authorization.ts), reads (READ_TOKEN,
 * http/read-access.ts) and /metrics scrapes (http/metrics-endpoint.ts), so it lives below both rooms.
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
