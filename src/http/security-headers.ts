import type { Plugin } from 'graphql-yoga';

/**
 * The policy of a page whose scripts, styles and images all come from the service itself (the
 * dashboard, the GraphiQL-is-off page): nothing inline, nothing from elsewhere, never framed.
 * `data:` images: the pages' empty favicon.
 */
export const SELF_ONLY_POLICY = [
  "default-src 'self'",
  "img-src 'self' data:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Headers every HTML page carries, with its Content-Security-Policy. */
export function pageSecurityHeaders(contentSecurityPolicy: string): Record<string, string> {
  return {
    'content-security-policy': contentSecurityPolicy,
    // frame-ancestors for browsers that predate it.
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
  };
}

/** On every answer: JSON must never be read as a script or a page. */
export const NO_SNIFF_HEADERS: Readonly<Record<string, string>> = { 'x-content-type-options': 'nosniff' };

/**
 * NO_SNIFF_HEADERS on every answer, and the self-only policy on any HTML page that was made
 * without one of its own.
 */
export function useSecurityHeaders(): Plugin {
  return {
    onResponse({ response }) {
      const { headers } = response;
      for (const [name, value] of Object.entries(NO_SNIFF_HEADERS)) headers.set(name, value);
      if (headers.get('content-type')?.startsWith('text/html') && !headers.has('content-security-policy')) {
        for (const [name, value] of Object.entries(pageSecurityHeaders(SELF_ONLY_POLICY))) {
          if (!headers.has(name)) headers.set(name, value);
        }
      }
    },
  };
}
