import type { ExecutionResult, GraphQLError } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';

type ResultProcessHook = NonNullable<Plugin['onResultProcess']>;
type ResultProcessor = Parameters<Parameters<ResultProcessHook>[0]['setResultProcessor']>[0];

/** Proxies time out idle streams; the README promises a keep-alive comment this often. */
const KEEP_ALIVE_MS = 12_000;
const PING = Buffer.from(':\n\n');
const COMPLETE = Buffer.from('event: complete\ndata:\n\n');
/** What a race against the event loop's next turn answers when the turn came first. */
const TURNED = Symbol('turned');

/**
 * Subscriptions over SSE in the distinct-connections mode, on the wire exactly as Yoga's own SSE
 * processor writes them (a first keep-alive comment, `event: next` per result, `event: complete`,
 * a comment every 12 s), but for two things that matter at thousands of events a second:
 * - every event ready before the event loop turns goes out in one socket write, not one (or two)
 *   per event: a batch of samples published to a subscriber is one write;
 * - an event's bytes are made once per result object and reused by every stream sending that
 *   same result, which useSharedEvents makes the common case.
 * Backpressure is kept: the next events are read only when the response takes more.
 *
 * Only streams Yoga chose its SSE processor for are taken (a subscription's stream can have no
 * other processor); single results, such as a subscription refused before it opens, are left to Yoga.
 */
export function useCoalescedEventStreams(): Plugin {
  const subscriptions = new WeakSet<Request>();
  const bytes = new WeakMap<object, Uint8Array>();

  const eventOf = (result: ExecutionResult): Uint8Array => {
    let event = bytes.get(result);
    if (!event) {
      event = Buffer.from(`event: next\ndata: ${JSON.stringify(withoutInternals(result))}\n\n`);
      bytes.set(result, event);
    }
    return event;
  };

  const processEventStream: ResultProcessor = (result, fetchAPI) => {
    if (!isAsyncIterable(result)) throw new Error('An event stream needs an async iterable result');
    const iterator = result[Symbol.asyncIterator]();
    let keepAlive: NodeJS.Timeout | undefined;
    /** A next() begun in an earlier pull that was not ready within its turn. */
    let pending: Promise<IteratorResult<ExecutionResult>> | undefined;
    const body = new fetchAPI.ReadableStream<Uint8Array>({
      start(controller) {
        // Some browsers hold a response back until its first bytes: send some at once.
        controller.enqueue(PING);
        keepAlive = setInterval(() => {
          if (controller.desiredSize === null) clearInterval(keepAlive);
          else if (controller.desiredSize > 0) controller.enqueue(PING);
        }, KEEP_ALIVE_MS);
      },
      async pull(controller) {
        let step = await (pending ?? iterator.next());
        pending = undefined;
        const events: Uint8Array[] = [];
        const turn = new Promise<typeof TURNED>((resolve) => setImmediate(resolve, TURNED));
        while (!step.done) {
          if (step.value != null) events.push(eventOf(step.value));
          pending = iterator.next();
          const next = await Promise.race([pending, turn]);
          if (next === TURNED) break;
          pending = undefined;
          step = next;
        }
        if (step.done) events.push(COMPLETE);
        const [first, ...more] = events;
        if (first) controller.enqueue(more.length === 0 ? first : Buffer.concat(events));
        if (step.done) {
          clearInterval(keepAlive);
          controller.close();
        }
      },
      cancel(reason) {
        clearInterval(keepAlive);
        return iterator.return?.(reason).then(() => {});
      },
    });
    return new fetchAPI.Response(body, {
      status: 200,
      headers: {
        'Content-Type': 'text/event-stream',
        Connection: 'keep-alive',
        'Cache-Control': 'no-cache',
        'Content-Encoding': 'none',
      },
    });
  };

  return {
    onSubscribe({ args }) {
      const request = (args.contextValue as { request?: Request }).request;
      if (request) subscriptions.add(request);
    },
    onResultProcess({ request, result, resultProcessor, setResultProcessor }) {
      if (resultProcessor && subscriptions.has(request) && isAsyncIterable(result)) {
        setResultProcessor(processEventStream, 'text/event-stream');
      }
    },
  };
}

/** As Yoga sends a result: without the `http` extensions it keeps for itself, nor `unexpected` on errors. */
function withoutInternals(result: ExecutionResult): unknown {
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
