import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Meter } from '@opentelemetry/api';
import { type ExecutionResult, GraphQLError, getOperationAST } from 'graphql';
import type { RequestParams } from 'graphql-sse';
import { createHandler } from 'graphql-sse/lib/use/fetch';
import { type FetchAPI, isAsyncIterable, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import type { Config } from '../config.js';
import { clientAddress } from './client-address.js';
import { jsonResponse } from './json.js';
import { refusedStream, withoutInternals } from './refused-streams.js';

/** Where graphql-sse's clients send the token of their reserved stream (or, for EventSource, `?token=`). */
const TOKEN_HEADER = 'x-graphql-event-stream-token';
const TOKEN_PARAMETER = 'token';
/** The tokens this server issues: 24 random bytes in base64url. A client-sent token is one of them or refused. */
const TOKEN_BYTES = 24;
const TOKEN_FORMAT = /^[A-Za-z0-9_-]{32}$/;

export interface SseProtocolOptions {
  endpoint: string;
  live: Pick<
    Config['live'],
    | 'streamReservationTtlMs'
    | 'maxStreamReservations'
    | 'maxStreamReservationsPerClient'
    | 'maxStreamOperations'
  >;
  clientAddressHeader: string | undefined;
  /** Where the count of waiting reservations is observed (`metrics_api.live.stream_reservations`). */
  meter?: Meter;
}

type StreamHandler = (request: Request) => Promise<Response>;

/** A stream reserved by `PUT`: its own graphql-sse handler, which holds that one stream and nothing else. */
interface Reservation {
  client: string;
  handler: StreamHandler;
  /** Until a GET claims it: when it expires. Claimed, it lives as long as its event stream. */
  expiry: NodeJS.Timeout | undefined;
  /** Ends the event stream that claimed it (the app's disposal). */
  close?: () => void;
  /** Subscriptions running on its stream, at most MAX_STREAM_OPERATIONS. */
  operations: number;
}

/**
 * The GraphQL over SSE protocol (graphql-sse) at `endpoint`, in both of its modes, with the
 * reservations of its single-connection mode bounded. graphql-sse keeps a reserved stream
 * (`PUT`) until an event stream for it (`GET`) closes, under any token the client sends: anyone
 * could reserve streams until the process ran out of memory. Here:
 * - the server chooses every token (crypto), and a client-sent token that is not of that form is
 *   refused (400 BAD_STREAM_TOKEN) before any lookup;
 * - a reservation no stream claims within STREAM_RESERVATION_TTL_MS expires (what operations it
 *   had started end with it), and one whose stream closed is gone;
 * - at most MAX_STREAM_RESERVATIONS wait at once, and MAX_STREAM_RESERVATIONS_PER_CLIENT per
 *   client address: past either, 429 TOO_MANY_STREAM_RESERVATIONS with Retry-After;
 * - a token that names no reservation (expired, ended, never issued) is 404 STREAM_NOT_FOUND;
 * - at most MAX_STREAM_OPERATIONS subscriptions run at once on one reserved stream: past it, the
 *   operation's one event is TOO_MANY_STREAM_OPERATIONS.
 * Each reservation has a graphql-sse handler of its own, so that dropping it frees its stream.
 *
 * Operations run through Yoga's envelop as on /graphql (limits, error codes, masking, telemetry).
 * A subscription refused before its stream (a bad argument, the database away) answers as on
 * /graphql in the distinct-connections mode: a plain GraphQL response with a 4xx/5xx. In the
 * single-connection mode the stream is already open: the refusal is the operation's one event, with
 * `data: null` (graphql-sse only takes a result with a `data` key for one; without, it answered 400
 * "Unable to detect operation AST").
 */
export function useGraphQLOverSSE(options: SseProtocolOptions): Plugin {
  const { endpoint, live, clientAddressHeader } = options;
  const serverContexts = new WeakMap<Request, Record<string, unknown>>();
  const reservations = new Map<string, Reservation>();
  /** Unclaimed reservations, per client address. */
  const waiting = new Map<string, number>();
  let waitingTotal = 0;
  let yoga: YogaServerInstance<Record<string, unknown>, Record<string, unknown>>;
  let distinctHandler: StreamHandler;

  options.meter
    ?.createObservableUpDownCounter('metrics_api.live.stream_reservations', {
      unit: '{reservation}',
      description: 'Streams reserved with PUT /graphql/stream that no event stream has claimed yet.',
    })
    .addCallback((result) => result.observe(waitingTotal));

  function handlerFor(token: string | null, reservation?: Reservation): StreamHandler {
    return createHandler(
      {
        authenticate: () => token,
        onSubscribe: (request, params) =>
          reservation
            ? onReservedStream(reservation, request.raw as Request, params as RequestParams)
            : operation(request.raw as Request, params as RequestParams, true),
        // What graphql-sse writes as it is: without what Yoga keeps for itself (`http`, `unexpected`).
        onNext: (_context, _request, result) =>
          withoutInternals(result as ExecutionResult) as ExecutionResult,
      } as Parameters<typeof createHandler>[0],
      yoga.fetchAPI,
    );
  }

  /** One operation through Yoga's envelop, as Yoga's own graphql-sse plugin runs it. */
  async function operation(request: Request, params: RequestParams, distinct: boolean) {
    let result: ExecutionResult | AsyncIterable<ExecutionResult>;
    let subscription = false;
    try {
      const enveloped = yoga.getEnveloped({ ...serverContexts.get(request), request, params });
      const document = enveloped.parse(params.query);
      subscription = getOperationAST(document, params.operationName)?.operation === 'subscription';
      const errors = enveloped.validate(enveloped.schema, document);
      if (errors.length > 0) {
        result = { errors };
      } else {
        const contextValue = await enveloped.contextFactory();
        const args = {
          schema: enveloped.schema,
          document,
          contextValue,
          variableValues: params.variables,
          operationName: params.operationName,
        };
        result = await (subscription ? enveloped.subscribe(args) : enveloped.execute(args));
      }
    } catch (error) {
      // Syntax errors, and refusals from the context (a bad X-Read-From): the client's to fix.
      if (!(error instanceof GraphQLError)) throw error;
      result = { errors: [error] };
    }
    if (isAsyncIterable(result)) return result;
    if (distinct && !('data' in result)) {
      const { body, status, headers } = refusedStream(result);
      return [body, { status, statusText: '', headers }] as const;
    }
    return 'data' in result ? result : { data: null, ...result };
  }

  /** An operation on a reserved stream, counted while it runs when it is a subscription. */
  async function onReservedStream(reservation: Reservation, request: Request, params: RequestParams) {
    if (reservation.operations >= live.maxStreamOperations) {
      return {
        data: null,
        errors: [
          new GraphQLError(
            `${live.maxStreamOperations} subscriptions already run on this stream (MAX_STREAM_OPERATIONS): complete one first, or reserve another stream`,
            { extensions: { code: 'TOO_MANY_STREAM_OPERATIONS' } },
          ),
        ],
      };
    }
    // Counted from now, not from the first event: operations sent at once each see the others.
    reservation.operations++;
    const ended = () => {
      reservation.operations--;
    };
    const result = await operation(request, params, false).catch((error: unknown) => {
      ended();
      throw error;
    });
    if (isAsyncIterable(result)) return untilEnded(result, ended);
    ended();
    return result;
  }

  function reserve(request: Request, serverContext: unknown): Promise<Response> | Response {
    const client = clientAddress(
      request,
      serverContext as { req?: Pick<IncomingMessage, 'socket'> },
      clientAddressHeader,
    );
    const ofClient = waiting.get(client) ?? 0;
    if (waitingTotal >= live.maxStreamReservations) {
      return tooMany(`${live.maxStreamReservations} streams are reserved and not yet connected`);
    }
    if (ofClient >= live.maxStreamReservationsPerClient) {
      return tooMany(
        `this client has ${ofClient} streams reserved and not yet connected, the most it may have`,
      );
    }
    const token = randomBytes(TOKEN_BYTES).toString('base64url');
    const reservation: Reservation = {
      client,
      handler: (request) => handler(request),
      expiry: undefined,
      operations: 0,
    };
    const handler = handlerFor(token, reservation);
    reservations.set(token, reservation);
    waiting.set(client, ofClient + 1);
    waitingTotal++;
    reservation.expiry = setTimeout(() => expire(token, reservation), live.streamReservationTtlMs);
    reservation.expiry.unref();
    // graphql-sse answers the PUT (201 and the token, or 406 for an Accept it does not serve).
    return reservation.handler(request).then((response) => {
      if (response.status !== 201) release(token, reservation);
      return withJsonBody(response);
    });
  }

  function tooMany(why: string): Response {
    const retryAfter = Math.ceil(live.streamReservationTtlMs / 1000);
    return coded(
      429,
      'TOO_MANY_STREAM_RESERVATIONS',
      `${why}: connect to a reserved stream (GET ${endpoint} with its token) or retry in ${retryAfter} s`,
      { 'retry-after': String(retryAfter) },
    );
  }

  /** No longer waiting: claimed by a stream, or gone. */
  function unwait(reservation: Reservation): void {
    if (reservation.expiry === undefined) return;
    clearTimeout(reservation.expiry);
    reservation.expiry = undefined;
    waitingTotal--;
    const left = (waiting.get(reservation.client) ?? 1) - 1;
    if (left > 0) waiting.set(reservation.client, left);
    else waiting.delete(reservation.client);
  }

  function release(token: string, reservation: Reservation): void {
    unwait(reservation);
    if (reservations.get(token) === reservation) reservations.delete(token);
  }

  /**
   * graphql-sse frees a stream, and ends the operations it started, only when its event stream
   * closes: an expired reservation's stream is opened here and closed at once.
   */
  function expire(token: string, reservation: Reservation): void {
    release(token, reservation);
    void reservation
      .handler(
        new yoga.fetchAPI.Request(`http://localhost${endpoint}`, {
          headers: { accept: 'text/event-stream' },
        }),
      )
      .then((response) => response.body?.cancel());
  }

  /** An event stream that claimed `reservation`: the reservation ends with it. */
  function claimed(
    token: string,
    reservation: Reservation,
    response: Response,
    fetchAPI: FetchAPI,
  ): Response {
    unwait(reservation);
    const body = response.body;
    if (!body) {
      release(token, reservation);
      return response;
    }
    const reader = body.getReader();
    const ended = () => release(token, reservation);
    reservation.close = () => void reader.cancel();
    return new fetchAPI.Response(
      new fetchAPI.ReadableStream<Uint8Array>({
        async pull(controller) {
          const { done, value } = await reader.read();
          if (done) {
            ended();
            controller.close();
          } else {
            controller.enqueue(value);
          }
        },
        cancel(reason) {
          ended();
          return reader.cancel(reason);
        },
      }),
      { status: response.status, headers: response.headers },
    );
  }

  async function handle(
    request: Request,
    url: URL,
    serverContext: unknown,
    fetchAPI: FetchAPI,
  ): Promise<Response> {
    const token = request.headers.get(TOKEN_HEADER) ?? url.searchParams.get(TOKEN_PARAMETER);
    if (token !== null && !TOKEN_FORMAT.test(token)) {
      return coded(
        400,
        'BAD_STREAM_TOKEN',
        `${TOKEN_HEADER}: is not a token of this server (PUT ${endpoint} reserves a stream and answers its token)`,
      );
    }
    // The server chooses every token: whatever a PUT sends, it gets a new one.
    if (request.method === 'PUT') return reserve(request, serverContext);
    const eventStream = request.headers.get('accept') === 'text/event-stream';
    if (token === null) {
      if (eventStream) return withJsonBody(await distinctHandler(request));
      return coded(
        404,
        'STREAM_NOT_FOUND',
        `no ${TOKEN_HEADER}: PUT ${endpoint} reserves a stream, or ask with Accept: text/event-stream for a stream of its own`,
      );
    }
    const reservation = reservations.get(token);
    if (!reservation) {
      return coded(
        404,
        'STREAM_NOT_FOUND',
        `no stream is reserved under this token: it was never issued, its stream ended, or no stream claimed it within ${live.streamReservationTtlMs} ms`,
      );
    }
    const response = withJsonBody(await reservation.handler(request));
    const opened =
      eventStream && response.ok && response.headers.get('content-type')?.startsWith('text/event-stream');
    return opened ? claimed(token, reservation, response, fetchAPI) : response;
  }

  return {
    onYogaInit({ yoga: instance }) {
      yoga = instance as unknown as typeof yoga;
      distinctHandler = handlerFor(null);
    },
    onRequest({ request, url, serverContext, fetchAPI, endResponse }) {
      if (url.pathname !== endpoint) return;
      serverContexts.set(request, serverContext as Record<string, unknown>);
      return handle(request, url, serverContext, fetchAPI).then(endResponse);
    },
    onDispose() {
      for (const [token, reservation] of reservations) {
        if (reservation.close) reservation.close();
        else expire(token, reservation);
      }
    },
  };
}

/**
 * `source`, calling `ended` once when it ends: completed, failed, or stopped by the client or by
 * its stream's end (graphql-sse's `return`). Not an async generator: a generator would queue that
 * `return` behind the `next` waiting for an event, and a quiet subscription would never end.
 */
function untilEnded<T>(source: AsyncIterable<T>, ended: () => void): AsyncIterableIterator<T> {
  const iterator = source[Symbol.asyncIterator]();
  let open = true;
  const end = () => {
    if (open) {
      open = false;
      ended();
    }
  };
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next() {
      try {
        const result = await iterator.next();
        if (result.done) end();
        return result;
      } catch (error) {
        end();
        throw error;
      }
    },
    async return(value?: unknown) {
      end();
      return iterator.return ? iterator.return(value) : { done: true, value: undefined };
    },
    async throw(error?: unknown) {
      end();
      if (iterator.throw) return iterator.throw(error);
      throw error;
    },
  };
}

/** The GraphQL error shape, coded, for the protocol's own refusals. */
function coded(
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): Response {
  return jsonResponse({ errors: [{ message, extensions: { code } }] }, status, headers);
}

/** What graphql-sse refuses without a body (a method, an Accept, a content type it does not serve), explained. */
const BODILESS_REFUSALS: Readonly<Record<number, { code: string; message: string }>> = {
  405: {
    code: 'METHOD_NOT_ALLOWED',
    message:
      'PUT reserves a stream, GET or POST with Accept: text/event-stream opens one, POST starts an operation on a reserved stream, DELETE stops one',
  },
  406: {
    code: 'NOT_ACCEPTABLE',
    message:
      'Accept must be text/event-stream for a stream, text/plain or */* for PUT, application/json or */* to start an operation',
  },
  415: { code: 'UNSUPPORTED_MEDIA_TYPE', message: 'operations are sent as application/json' },
};

function withJsonBody(response: Response): Response {
  if (response.status < 400 || response.body !== null) return response;
  const { code, message } = BODILESS_REFUSALS[response.status] ?? {
    code: 'BAD_REQUEST',
    message: response.statusText,
  };
  return coded(response.status, code, message, Object.fromEntries(response.headers));
}
