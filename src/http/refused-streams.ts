import type { ExecutionResult, GraphQLError } from 'graphql';
import { RETRY_AFTER_SECONDS } from '../store/errors.js';

/**
 * HTTP statuses of a subscription refused before its stream opens, by its error's code. Such an
 * answer has no `data`, so GraphQL over HTTP wants a 4xx or 5xx; a status also makes SSE clients
 * (graphql-sse's among them) stop at the refusal instead of reading it as an event stream.
 */
const STATUS_OF_CODE: Readonly<Record<string, number>> = {
  BAD_USER_INPUT: 400,
  GRAPHQL_PARSE_FAILED: 400,
  GRAPHQL_VALIDATION_FAILED: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  DATABASE_UNAVAILABLE: 503,
};

/** What answers a subscription refused before its stream: a plain GraphQL response, not an event stream. */
export function refusedStream(result: ExecutionResult): {
  body: string;
  status: number;
  headers: Record<string, string>;
} {
  const status = refusalStatus(result.errors ?? []);
  const headers: Record<string, string> = {
    'content-type': 'application/graphql-response+json; charset=utf-8',
  };
  if (status === 503) headers['retry-after'] = String(RETRY_AFTER_SECONDS);
  return { body: JSON.stringify(withoutInternals(result)), status, headers };
}

/** The largest status the errors ask for (Yoga's own `http` extension first), 500 for an unknown one. */
function refusalStatus(errors: readonly GraphQLError[]): number {
  let status = 0;
  for (const error of errors) {
    const asked = (error.extensions?.http as { status?: number } | undefined)?.status;
    const code = error.extensions?.code;
    const own = asked ?? (typeof code === 'string' ? STATUS_OF_CODE[code] : undefined) ?? 500;
    status = Math.max(status, own);
  }
  return status || 500;
}

/** As Yoga sends a result: without the `http` extensions it keeps for itself, nor `unexpected` on errors. */
export function withoutInternals(result: ExecutionResult): unknown {
  if (!result.errors?.length && !result.extensions?.http) return result;
  const { http: _http, ...extensions } = result.extensions ?? {};
  return {
    ...result,
    errors: result.errors?.map(withoutErrorInternals),
    extensions: Object.keys(extensions).length > 0 ? extensions : undefined,
  };
}

function withoutErrorInternals(error: GraphQLError): unknown {
  const { http: _http, unexpected: _unexpected, ...extensions } = error.extensions ?? {};
  return { ...error.toJSON(), extensions: Object.keys(extensions).length > 0 ? extensions : undefined };
}
