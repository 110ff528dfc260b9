import type { Plugin } from 'graphql-yoga';
import { jsonError } from './json.js';

/**
 * The media types a GraphQL POST may come in. Forms (urlencoded, multipart) and text/plain, which
 * Yoga would parse or a browser sends cross-origin without a preflight, are refused: a page on
 * any site could otherwise make a visitor's browser run operations (CSRF).
 */
const ACCEPTED_MEDIA_TYPES = ['application/json', 'application/graphql+json', 'application/graphql'];
/** How much of a refused Content-Type the answer quotes. */
const QUOTED_TYPE_LENGTH = 80;

function acceptedMediaType(request: Request): boolean {
  const mediaType = request.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase();
  return mediaType !== undefined && ACCEPTED_MEDIA_TYPES.includes(mediaType);
}

function tooLarge(maxBodyBytes: number): Response {
  return jsonError(413, 'Payload Too Large', `Request bodies are limited to ${maxBodyBytes} bytes.`);
}

/** The body's bytes, or undefined once it grows past `maxBytes`. */
export async function readAtMost(
  body: ReadableStream<Uint8Array>,
  maxBytes: number,
): Promise<Buffer | undefined> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  // A reader released rather than cancelled: cancelling (as leaving a for-await loop does) would
  // destroy the socket before the 413 is written. node:http discards the rest once it has gone.
  const reader = body.getReader();
  try {
    for (let next = await reader.read(); !next.done; next = await reader.read()) {
      total += next.value.byteLength;
      if (total > maxBytes) return undefined;
      chunks.push(next.value);
    }
  } finally {
    reader.releaseLock();
  }
  return Buffer.concat(chunks, total);
}

/**
 * The rules for a GraphQL request's body, each answered with a JSON body:
 * - at most `maxBodyBytes` (413). A body with Content-Length is judged by the header alone, which
 *   node:http holds it to; only a streamed body (chunked, no Content-Length) is counted as it is
 *   read. Yoga's own limit counts every body through a stream, 7% of a page's CPU (bench/PROFILE.md).
 * - a POST in JSON or GraphQL, the media types of ACCEPTED_MEDIA_TYPES (415).
 */
export function requestBodyRules(options: { maxBodyBytes: number }): Plugin {
  const { maxBodyBytes } = options;
  return {
    onRequestParse({ request, requestParser, setRequestParser, endResponse, fetchAPI }) {
      const length = request.headers.get('content-length');
      if (length !== null && Number(length) > maxBodyBytes) {
        endResponse(tooLarge(maxBodyBytes));
        return;
      }
      // Other methods without a parser are Yoga's to refuse (405).
      if (request.method === 'POST' && !(requestParser && acceptedMediaType(request))) {
        const given = request.headers.get('content-type');
        endResponse(
          jsonError(
            415,
            'Unsupported Media Type',
            `Send GraphQL as application/json (or application/graphql), not ${given === null ? 'a body without a content type' : JSON.stringify(given.slice(0, QUOTED_TYPE_LENGTH))}.`,
          ),
        );
        return;
      }
      if (!requestParser || length !== null || request.body === null) return;
      const parse = requestParser;
      setRequestParser(async (streamed) => {
        // GraphQL requests are UTF-8 text.
        const body = streamed.body ? (await readAtMost(streamed.body, maxBodyBytes))?.toString() : '';
        if (body === undefined) return tooLarge(maxBodyBytes);
        const headers = new fetchAPI.Headers(streamed.headers);
        headers.set('content-length', String(Buffer.byteLength(body)));
        return parse(new fetchAPI.Request(streamed.url, { method: streamed.method, headers, body }));
      });
    },
  };
}
