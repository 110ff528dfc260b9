import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';

const gzipAsync = promisify(gzip);
const brotliAsync = promisify(brotliCompress);

/** Bodies above this get a faster brotli: quality 11 takes over a minute on GraphiQL's 9 MB page, 5 about a second. */
const LARGE_BODY_BYTES = 1024 * 1024;

type Encoding = 'br' | 'gzip' | 'identity';

interface Representation {
  body: Uint8Array<ArrayBuffer>;
  etag: string;
}

/** A fixed body in every encoding the service serves, made once. */
export interface StaticContent {
  headers: Record<string, string>;
  representations: Record<Encoding, Representation>;
}

/**
 * Compresses `body` with brotli and gzip, off the event loop (zlib's thread pool), so that serving
 * it costs a lookup instead of the render and compression it cost on every request.
 * `headers` (content type, security headers) go on every answer.
 */
export async function prepareStaticContent(
  body: Uint8Array,
  headers: Record<string, string>,
): Promise<StaticContent> {
  const large = body.byteLength > LARGE_BODY_BYTES;
  const [brotli, gzipped] = await Promise.all([
    brotliAsync(body, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: large ? 5 : 11,
        [constants.BROTLI_PARAM_SIZE_HINT]: body.byteLength,
      },
    }),
    gzipAsync(body, { level: large ? 6 : 9 }),
  ]);
  const digest = createHash('sha256').update(body).digest('base64url').slice(0, 22);
  const representation = (bytes: Uint8Array, encoding: Encoding): Representation => ({
    body: new Uint8Array(bytes),
    // A strong validator per representation: the encodings' bytes differ.
    etag: encoding === 'identity' ? `"${digest}"` : `"${digest}-${encoding}"`,
  });
  return {
    headers,
    representations: {
      br: representation(brotli, 'br'),
      gzip: representation(gzipped, 'gzip'),
      identity: representation(body, 'identity'),
    },
  };
}

/** The client's preferred encoding of those served: brotli, then gzip, by Accept-Encoding's q-values. */
function preferredEncoding(acceptEncoding: string | null): Encoding {
  const weights = new Map<string, number>();
  for (const item of (acceptEncoding ?? '').split(',')) {
    const [name = '', ...parameters] = item.split(';').map((part) => part.trim().toLowerCase());
    if (name === '') continue;
    const q = parameters.find((parameter) => parameter.startsWith('q='));
    const weight = q === undefined ? 1 : Number(q.slice(2));
    weights.set(name, Number.isNaN(weight) ? 0 : weight);
  }
  const weightOf = (encoding: Encoding) => weights.get(encoding) ?? weights.get('*') ?? 0;
  // A stable sort: brotli, the smaller, wins a tie.
  const accepted = (['br', 'gzip'] as const).filter((encoding) => weightOf(encoding) > 0);
  return accepted.sort((a, b) => weightOf(b) - weightOf(a))[0] ?? 'identity';
}

/** Whether an If-None-Match header lists `etag` (weak comparison, as RFC 9110 asks for it) or is `*`. */
function matches(ifNoneMatch: string, etag: string): boolean {
  return ifNoneMatch
    .split(',')
    .map((tag) => tag.trim().replace(/^W\//, ''))
    .some((tag) => tag === '*' || tag === etag);
}

/**
 * `content` for `request`: in the best encoding it accepts, or 304 when its If-None-Match already
 * names that representation. `no-cache` lets browsers keep it and revalidate on every use: the
 * paths are not versioned, so a new release must be seen at once, and the 304 costs no body.
 */
export function staticResponse(request: Request, content: StaticContent): Response {
  const encoding = preferredEncoding(request.headers.get('accept-encoding'));
  const { body, etag } = content.representations[encoding];
  const headers: Record<string, string> = {
    ...content.headers,
    'cache-control': 'no-cache',
    vary: 'accept-encoding',
    etag,
  };
  if (encoding !== 'identity') headers['content-encoding'] = encoding;
  const ifNoneMatch = request.headers.get('if-none-match');
  if (ifNoneMatch !== null && matches(ifNoneMatch, etag)) {
    const { 'content-type': _type, ...notModified } = headers;
    return new Response(null, { status: 304, headers: notModified });
  }
  return new Response(body, { headers });
}
