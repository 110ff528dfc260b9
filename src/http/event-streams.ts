import { type ExecutionResult, getOperationAST } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import { ResultBatch } from '../graphql/plugins/shared-events.js';
import { refusedStream, withoutInternals } from './refused-streams.js';

type ResultProcessHook = NonNullable<Plugin['onResultProcess']>;
type ResultProcessor = Parameters<Parameters<ResultProcessHook>[0]['setResultProcessor']>[0];

/** Proxies time out idle streams; the README promises a keep-alive comment this often. */
const KEEP_ALIVE_MS = 12_000;
const PING = Buffer.from(':\n\n');
const COMPLETE = Buffer.from('event: complete\ndata:\n\n');

/**
 * Subscriptions over SSE in the distinct-connections mode, on the wire exactly as Yoga's own SSE
 * processor writes them (a first keep-alive comment, `event: next` per result, `event: complete`,
 * a comment every 12 s), but for two things that matter at thousands of events a second:
 * - every event ready before the event loop turns goes out in one socket write, not one (or two)
 *   per event: a batch of samples published to a subscriber is one write;
 * - an event's bytes are made once per result object and reused by every stream sending that
 *   same result, which useSharedEvents makes the common case;
 * - it reads its streams' events as useSharedEvents' batches where their source has them (each
 *   request it takes goes into `batchReaders` before its stream is read): a ResultBatch is written
 *   as one `event: next` per result, its bytes made once for every stream sending that batch.
 * Backpressure is kept: the next events are read only when the response takes more, so what a
 * slow client's response holds is one chunk (the events read in one turn) and its stream's own
 * bounded queue.
 *
 * Only streams Yoga chose its SSE processor for are taken (a subscription's stream can have no
 * other processor). A subscription refused before its stream opens (a bad argument, an invalid
 * document, the database away) is answered as a plain GraphQL response with a 4xx or 5xx status
 * (refused-streams.ts), never as an event stream holding one error: the client learns at once that
 * no stream opened, as the README documents.
 */
export function useCoalescedEventStreams({ batchReaders }: { batchReaders: WeakSet<Request> }): Plugin {
  /** Subscriptions, and documents that do not parse (no operation: their answer is a refusal). */
  const streamRequests = new WeakSet<Request>();
  const bytes = new WeakMap<object, Uint8Array>();

  const eventOf = (result: ExecutionResult | ResultBatch): Uint8Array => {
    let event = bytes.get(result);
    if (!event) {
      event =
        result instanceof ResultBatch
          ? Buffer.concat(result.results.map(eventOf))
          : Buffer.from(`event: next\ndata: ${JSON.stringify(withoutInternals(result))}\n\n`);
      bytes.set(result, event);
    }
    return event;
  };

  const processEventStream: ResultProcessor = (result, fetchAPI) => {
    if (!isAsyncIterable(result)) throw new Error('An event stream needs an async iterable result');
    const source = new CoalescingSource(result[Symbol.asyncIterator](), eventOf);
    const body = new fetchAPI.ReadableStream<Uint8Array>({
      start: (controller) => source.start(controller),
      pull: (controller) => source.pull(controller),
      cancel: (reason) => source.cancel(reason),
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

  const processRefusal: ResultProcessor = (result, fetchAPI) => {
    const { body, status, headers } = refusedStream(result as ExecutionResult);
    return new fetchAPI.Response(body, { status, headers });
  };

  return {
    // At parsing, so that a subscription refused by validation is known as one too.
    onParse({ context }) {
      const { request, params } = context as { request?: Request; params?: { operationName?: string } };
      return ({ result }) => {
        if (!request || !result) return;
        const parsed = 'kind' in result;
        if (!parsed || getOperationAST(result, params?.operationName)?.operation === 'subscription') {
          streamRequests.add(request);
        }
      };
    },
    onResultProcess({ request, result, resultProcessor, setResultProcessor }) {
      if (!resultProcessor || !streamRequests.has(request)) return;
      if (isAsyncIterable(result)) {
        setResultProcessor(processEventStream, 'text/event-stream');
        batchReaders.add(request);
      } else if (request.headers.get('accept')?.includes('text/event-stream')) {
        // A client that asked for an event stream and gets none; JSON clients keep Yoga's answer.
        setResultProcessor(processRefusal, 'application/graphql-response+json');
      }
    },
  };
}

/**
 * The source of one response's bytes. While the response wants more (a pull waits) it reads
 * result after result, and answers the pull at the next turn of the event loop with every event
 * read by then, in one chunk; while it does not, it reads nothing, so a slow client holds back
 * the stream (whose own queue then bounds what it keeps). One `then` per result, nothing else.
 */
class CoalescingSource {
  readonly #iterator: AsyncIterator<ExecutionResult | ResultBatch>;
  readonly #eventOf: (result: ExecutionResult | ResultBatch) => Uint8Array;
  #controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  #keepAlive: NodeJS.Timeout | undefined;
  /** Events read since the last chunk. */
  #events: Uint8Array[] = [];
  #ended = false;
  #canceled = false;
  #reading = false;
  #turnComing = false;
  /** The pull waiting for a chunk: its controller (a ponyfilled stream hands each pull its own) and its end. */
  #answer: { controller: ReadableStreamDefaultController<Uint8Array>; resolve: () => void } | undefined;

  constructor(
    iterator: AsyncIterator<ExecutionResult | ResultBatch>,
    eventOf: (result: ExecutionResult | ResultBatch) => Uint8Array,
  ) {
    this.#iterator = iterator;
    this.#eventOf = eventOf;
  }

  start(controller: ReadableStreamDefaultController<Uint8Array>): void {
    this.#controller = controller;
    // Some browsers hold a response back until its first bytes: send some at once.
    controller.enqueue(PING);
    this.#keepAlive = setInterval(() => {
      if (controller.desiredSize === null) clearInterval(this.#keepAlive);
      else if (controller.desiredSize > 0) controller.enqueue(PING);
    }, KEEP_ALIVE_MS);
  }

  pull(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    return new Promise((resolve) => {
      this.#answer = { controller, resolve };
      if (this.#events.length > 0) this.#turn();
      if (!this.#reading && !this.#ended) this.#read();
    });
  }

  async cancel(reason: unknown): Promise<void> {
    this.#canceled = true;
    clearInterval(this.#keepAlive);
    await this.#iterator.return?.(reason);
  }

  #read(): void {
    this.#reading = true;
    this.#iterator.next().then(this.#stepped, this.#failed);
  }

  readonly #stepped = (step: IteratorResult<ExecutionResult | ResultBatch>): void => {
    this.#reading = false;
    if (step.done) {
      this.#ended = true;
      this.#events.push(COMPLETE);
      this.#turn();
      return;
    }
    if (step.value != null) this.#events.push(this.#eventOf(step.value));
    if (this.#answer) {
      this.#turn();
      this.#read();
    }
  };

  readonly #failed = (error: unknown): void => {
    this.#reading = false;
    clearInterval(this.#keepAlive);
    if (!this.#canceled) (this.#answer?.controller ?? this.#controller)?.error(error);
  };

  #turn(): void {
    if (this.#turnComing) return;
    this.#turnComing = true;
    setImmediate(this.#chunk);
  }

  readonly #chunk = (): void => {
    this.#turnComing = false;
    const answer = this.#answer;
    // No pull waiting: the next one takes what was read.
    if (!answer || this.#canceled) return;
    this.#answer = undefined;
    const { controller } = answer;
    const events = this.#events;
    this.#events = [];
    const [first, ...more] = events;
    if (first) controller.enqueue(more.length === 0 ? first : Buffer.concat(events));
    if (this.#ended) {
      clearInterval(this.#keepAlive);
      controller.close();
    }
    answer.resolve();
  };
}
