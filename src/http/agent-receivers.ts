/**
 * Where agents push: OTLP/HTTP metrics (`/v1/metrics`, and `/api/v1/otlp/v1/metrics` as Prometheus
 * names it) and Prometheus remote-write 1.0 (`/api/v1/write`). Both need INGEST_TOKEN as a bearer
 * token, as the mutation does, and answer as their protocol says: a status that tells the sender
 * whether to retry (4xx: never; 429/503 with Retry-After: later), a body it can log.
 */
import { gunzipSync } from 'node:zlib';
import type { Config } from '../config.js';
import { bearerTokenMatcher, writeRefusal } from '../domain/bearer-token.js';
import { MalformedPayloadError, PayloadTooLargeError } from '../ingest/agent-payload.js';
import {
  type AgentPoint,
  ingestAgentPoints,
  type PointRefusals,
  refusalMessage,
} from '../ingest/agent-samples.js';
import { decodeOtlpMetrics, exportResponse, type OtlpEncoding, statusBody } from '../ingest/otlp.js';
import { decodeRemoteWrite } from '../ingest/remote-write.js';
import type { OperationScope } from '../observability/operation-scope.js';
import { DatabaseUnavailableError, RETRY_AFTER_SECONDS } from '../store/errors.js';
import type { MetricStore } from '../store/metric-store.js';
import { jsonError } from './json.js';
import { readAtMost } from './request-body.js';

export const OTLP_METRICS_PATHS = ['/v1/metrics', '/api/v1/otlp/v1/metrics'] as const;
export const REMOTE_WRITE_PATH = '/api/v1/write';

/**
 * How far a compressed body may expand: four times MAX_BODY_BYTES (8 MiB by default), well above
 * what an agent's batch holds (Prometheus' 2,000 samples are ~300 kB decoded), and a bound on the
 * objects one push decodes into.
 */
const DECODED_BODY_FACTOR = 4;

export interface ReceiverParts {
  config: Config;
  store: MetricStore;
  scopeOf: (request: Request) => OperationScope | undefined;
}

/** Why a request fails before or while it is read: an HTTP status, a code, and what to change. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const REASONS: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  503: 'Service Unavailable',
};

/** gRPC's codes, which OTLP's Status carries, for each refusal status. */
const GRPC_CODES: Readonly<Record<number, number>> = { 400: 3, 401: 16, 403: 7, 413: 3, 503: 14 };

function authorize(request: Request, matches: ((header: string | null) => boolean) | undefined): void {
  const refusal = writeRefusal(request.headers.get('authorization'), matches, 'Pushing samples');
  if (!refusal) return;
  if (refusal.code === 'INGEST_DISABLED') throw new Refusal(403, refusal.code, refusal.message);
  throw new Refusal(401, refusal.code, refusal.message, {
    'www-authenticate': refusal.invalidToken ? 'Bearer error="invalid_token"' : 'Bearer',
  });
}

async function readBody(request: Request, maxBodyBytes: number): Promise<Buffer> {
  const tooLarge = () =>
    new Refusal(
      413,
      'PAYLOAD_TOO_LARGE',
      `Request bodies are limited to ${maxBodyBytes} bytes (MAX_BODY_BYTES).`,
    );
  const length = request.headers.get('content-length');
  if (length !== null && Number(length) > maxBodyBytes) throw tooLarge();
  const body = request.body ? await readAtMost(request.body, maxBodyBytes) : Buffer.alloc(0);
  if (body === undefined) throw tooLarge();
  return body;
}

function mediaType(request: Request): string | undefined {
  return request.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase();
}

/** The failures of decoding and storing, as refusals; anything else is the handler's to report. */
function asRefusal(error: unknown): unknown {
  if (error instanceof MalformedPayloadError) return new Refusal(400, 'MALFORMED_PAYLOAD', error.message);
  if (error instanceof PayloadTooLargeError) return new Refusal(413, 'PAYLOAD_TOO_LARGE', error.message);
  if (error instanceof DatabaseUnavailableError)
    return new Refusal(
      503,
      'DATABASE_UNAVAILABLE',
      `The database is unavailable; retry in ${RETRY_AFTER_SECONDS} seconds.`,
      { 'retry-after': String(RETRY_AFTER_SECONDS) },
    );
  return error;
}

/** Stores the points with the request's limits, the refused ones counted in `refusals`. */
async function store(
  parts: ReceiverParts,
  request: Request,
  points: readonly AgentPoint[],
  refusals: PointRefusals,
): Promise<void> {
  const { ingest } = parts.config;
  const scope = parts.scopeOf(request);
  await ingestAgentPoints(
    parts.store,
    points,
    {
      maxSamples: ingest.maxSamplesPerRequest,
      batchSize: ingest.batchSize,
      maxFutureSeconds: ingest.maxFutureSeconds,
      ...(scope ? { scope } : {}),
    },
    refusals,
  );
}

/**
 * `POST /api/v1/write`: 204 when every sample of the mapped metrics was stored; 400 naming those
 * refused (the others are stored, as Prometheus' own receiver does, and the sender does not
 * retry); 503 with Retry-After while the database is away, which Prometheus retries.
 */
export function remoteWriteHandler(parts: ReceiverParts): (request: Request) => Promise<Response> {
  const { config } = parts;
  const matches = config.ingest.token === undefined ? undefined : bearerTokenMatcher([config.ingest.token]);
  const maxBodyBytes = config.limits.maxBodyBytes;
  return async (request) => {
    try {
      authorize(request, matches);
      const type = mediaType(request);
      if (
        type !== 'application/x-protobuf' ||
        /proto=io\.prometheus\.write\.v2/.test(request.headers.get('content-type') ?? '')
      )
        throw new Refusal(
          415,
          'UNSUPPORTED_MEDIA_TYPE',
          `Send remote-write 1.0: snappy-compressed protobuf as application/x-protobuf, not ${JSON.stringify(request.headers.get('content-type') ?? 'a body without a content type')}.`,
        );
      const encoding = request.headers.get('content-encoding')?.trim().toLowerCase();
      if (encoding !== undefined && encoding !== 'snappy')
        throw new Refusal(
          415,
          'UNSUPPORTED_MEDIA_TYPE',
          `Remote-write bodies are snappy-compressed, not ${JSON.stringify(encoding)}.`,
        );
      const refusals: PointRefusals = { points: 0, reasons: [] };
      try {
        const body = await readBody(request, maxBodyBytes);
        const points = decodeRemoteWrite(body, config.agents, maxBodyBytes * DECODED_BODY_FACTOR);
        await store(parts, request, points, refusals);
      } catch (error) {
        throw asRefusal(error);
      }
      if (refusals.points === 0) return new Response(null, { status: 204 });
      return jsonError(400, 'Bad Request', refusalMessage(refusals), {
        code: 'SAMPLES_REFUSED',
        refused: refusals.points,
      });
    } catch (error) {
      if (!(error instanceof Refusal)) throw error;
      const response = jsonError(error.status, REASONS[error.status] ?? 'Error', error.message, {
        code: error.code,
      });
      for (const [name, value] of Object.entries(error.headers)) response.headers.set(name, value);
      return response;
    }
  };
}

const OTLP_MEDIA_TYPES: Readonly<Record<string, OtlpEncoding>> = {
  'application/x-protobuf': 'protobuf',
  'application/json': 'json',
};
const OTLP_CONTENT_TYPES: Readonly<Record<OtlpEncoding, string>> = {
  protobuf: 'application/x-protobuf',
  json: 'application/json',
};

/**
 * `POST /v1/metrics`: 200 with an ExportMetricsServiceResponse, whose partial_success counts the
 * refused data points and says why; errors carry a google.rpc.Status in the request's encoding
 * (OTLP/HTTP's rule), 400 for a body that will never decode, 503 with Retry-After while the
 * database is away.
 */
export function otlpHandler(parts: ReceiverParts): (request: Request) => Promise<Response> {
  const { config } = parts;
  const matches = config.ingest.token === undefined ? undefined : bearerTokenMatcher([config.ingest.token]);
  const maxBodyBytes = config.limits.maxBodyBytes;
  const maxDecodedBytes = maxBodyBytes * DECODED_BODY_FACTOR;
  return async (request) => {
    const encoding = OTLP_MEDIA_TYPES[mediaType(request) ?? ''];
    if (encoding === undefined)
      return jsonError(
        415,
        'Unsupported Media Type',
        `Send OTLP metrics as application/x-protobuf or application/json, not ${JSON.stringify(request.headers.get('content-type') ?? 'a body without a content type')}.`,
        { code: 'UNSUPPORTED_MEDIA_TYPE' },
      );
    const answer = (status: number, body: Uint8Array | string, headers: Record<string, string> = {}) =>
      // Copied into an ArrayBuffer of its own: a protobuf encoding may share a larger buffer.
      new Response(typeof body === 'string' ? body : new Uint8Array(body), {
        status,
        headers: { 'content-type': OTLP_CONTENT_TYPES[encoding], ...headers },
      });
    try {
      authorize(request, matches);
      const compression = request.headers.get('content-encoding')?.trim().toLowerCase() ?? 'identity';
      if (compression !== 'gzip' && compression !== 'identity')
        throw new Refusal(
          400,
          'MALFORMED_PAYLOAD',
          `OTLP bodies are sent as is or gzip-compressed, not ${JSON.stringify(compression)}.`,
        );
      const refusals: PointRefusals = { points: 0, reasons: [] };
      try {
        const sent = await readBody(request, maxBodyBytes);
        const body = compression === 'gzip' ? gunzip(sent, maxDecodedBytes) : sent;
        const points = decodeOtlpMetrics(body, encoding, config.agents, refusals);
        await store(parts, request, points, refusals);
      } catch (error) {
        throw asRefusal(error);
      }
      return answer(200, exportResponse(encoding, refusals));
    } catch (error) {
      if (!(error instanceof Refusal)) throw error;
      return answer(
        error.status,
        statusBody(encoding, GRPC_CODES[error.status] ?? 2, error.message),
        error.headers,
      );
    }
  };
}

function gunzip(body: Buffer, maxDecodedBytes: number): Buffer {
  try {
    return gunzipSync(body, { maxOutputLength: maxDecodedBytes });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
      throw new PayloadTooLargeError(`the body expands past ${maxDecodedBytes} bytes; send smaller batches`);
    throw new MalformedPayloadError(`the body is not gzip-compressed: ${(error as Error).message}`);
  }
}
