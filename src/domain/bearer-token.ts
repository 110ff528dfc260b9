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

/** Why a writer is refused by its Authorization header: writing is off, or it carries no valid token. */
export interface WriteRefusal {
  code: 'INGEST_DISABLED' | 'UNAUTHENTICATED';
  message: string;
  /** A header was given, and its token is not valid. */
  invalidToken: boolean;
}

/**
 * Whether the Authorization `header` may write (null), or why not, as the mutation and the agent
 * receivers both say it: `matches` is INGEST_TOKEN's matcher, undefined when none is configured;
 * `writing` names what is refused ("Ingest over GraphQL", "Pushing samples").
 */
export function writeRefusal(
  header: string | null,
  matches: ((header: string | null) => boolean) | undefined,
  writing: string,
): WriteRefusal | null {
  if (!matches)
    return {
      code: 'INGEST_DISABLED',
      message: `${writing} is disabled on this server: set INGEST_TOKEN (at least 16 characters) to enable it.`,
      invalidToken: false,
    };
  if (!header)
    return {
      code: 'UNAUTHENTICATED',
      message: 'Writing requires the header "Authorization: Bearer <token>".',
      invalidToken: false,
    };
  if (!matches(header))
    return {
      code: 'UNAUTHENTICATED',
      message: 'The bearer token is not valid for writing.',
      invalidToken: true,
    };
  return null;
}
