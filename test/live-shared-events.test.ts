import {
  GraphQLBoolean,
  GraphQLInt,
  GraphQLNonNull,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLString,
} from 'graphql';
import { createYoga, type Plugin, Repeater } from 'graphql-yoga';
import { describe, expect, it } from 'vitest';
import { DatabaseUnavailableError } from '../src/database/availability.js';
import { finishedEvents, maskedErrors, useErrorCodes } from '../src/graphql/plugins/error-codes.js';
import { SHARED_EVENTS, useSharedEvents } from '../src/graphql/plugins/shared-events.js';
import { useCoalescedEventStreams } from '../src/http/event-streams.js';

interface Tick {
  n: number;
}

/** A schema with two subscriptions to the same ticks, one marked as sharing its events; resolutions counted. */
function tickingYoga() {
  const subscribers = new Set<(tick: Tick) => void>();
  const resolved = { shared: 0, own: 0 };
  const ticks = () =>
    new Repeater<Tick>(async (push, stop) => {
      const subscriber = (tick: Tick) => void push(tick);
      subscribers.add(subscriber);
      await stop;
      subscribers.delete(subscriber);
    });
  const tickType = (counter: keyof typeof resolved) =>
    new GraphQLObjectType<Tick>({
      name: `${counter}Tick`,
      fields: {
        n: {
          type: new GraphQLNonNull(GraphQLInt),
          resolve: (tick) => {
            resolved[counter]++;
            return tick.n;
          },
        },
        label: { type: GraphQLString, resolve: (tick) => `tick ${tick.n}` },
      },
    });
  const schema = new GraphQLSchema({
    query: new GraphQLObjectType({ name: 'Query', fields: { ok: { type: GraphQLBoolean } } }),
    subscription: new GraphQLObjectType({
      name: 'Subscription',
      fields: {
        sharedTicks: {
          type: new GraphQLNonNull(tickType('shared')),
          args: { from: { type: GraphQLInt } },
          extensions: { [SHARED_EVENTS]: true },
          subscribe: () => ticks(),
          resolve: (tick: Tick) => tick,
        },
        ownTicks: {
          type: new GraphQLNonNull(tickType('own')),
          subscribe: () => ticks(),
          resolve: (tick: Tick) => tick,
        },
      },
    }),
  });
  const yoga = createYoga({ schema, plugins: sharingPlugins(() => {}) });
  const publish = (tick: Tick) => {
    for (const subscriber of subscribers) subscriber(tick);
  };
  return { yoga, resolved, publish, subscribers };
}

/** The app's plugins for shared events, in its order, with its masking; `logged` gets what masking logs. */
function sharingPlugins(logged: (error: unknown) => void): Plugin[] {
  const masking = maskedErrors('production');
  const batchReaders = new WeakSet<Request>();
  return [
    useErrorCodes(),
    useSharedEvents({ finish: finishedEvents(masking, logged), batchReaders }),
    useCoalescedEventStreams({ batchReaders }),
  ];
}

/**
 * A source that, as a sample stream does, can hand over what it holds in one step (nextBatch):
 * the ticks published together, the same array for every subscriber.
 */
class TickStream implements AsyncIterableIterator<Tick> {
  readonly #queued: (readonly Tick[])[] = [];
  #offset = 0;
  #waiting: (() => void) | undefined;
  #stopped = false;
  readonly #leave: () => void;
  readonly #steps: { single: number; batch: number };

  constructor(join: (stream: TickStream) => () => void, steps: { single: number; batch: number }) {
    this.#leave = join(this);
    this.#steps = steps;
  }

  push(ticks: readonly Tick[]): void {
    this.#queued.push(ticks);
    this.#waiting?.();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<Tick>> {
    const step = await this.#step((batch) => {
      this.#steps.single++;
      const tick = batch[this.#offset++] as Tick;
      if (this.#offset === batch.length) {
        this.#queued.shift();
        this.#offset = 0;
      }
      return tick;
    });
    return step;
  }

  nextBatch(): Promise<IteratorResult<readonly Tick[]>> {
    return this.#step((batch) => {
      this.#steps.batch++;
      this.#queued.shift();
      const rest = this.#offset > 0 ? batch.slice(this.#offset) : batch;
      this.#offset = 0;
      return rest;
    });
  }

  async return(): Promise<IteratorResult<Tick>> {
    this.#stopped = true;
    this.#leave();
    this.#waiting?.();
    return { done: true, value: undefined };
  }

  async #step<T>(take: (batch: readonly Tick[]) => T): Promise<IteratorResult<T>> {
    while (!this.#stopped && this.#queued.length === 0) {
      await new Promise<void>((resolve) => {
        this.#waiting = resolve;
      });
    }
    const batch = this.#queued[0];
    if (this.#stopped || !batch) return { done: true, value: undefined };
    return { done: false, value: take(batch) };
  }
}

/** A schema whose shared subscription's source has batches, with fields that fail; resolutions counted. */
function batchingYoga(plugins: Plugin[]) {
  const streams = new Set<TickStream>();
  const resolved = { n: 0 };
  /** Steps the sources gave: a tick (next) or all they held (nextBatch). */
  const steps = { single: 0, batch: 0 };
  const tick = new GraphQLObjectType<Tick>({
    name: 'Tick',
    fields: {
      n: {
        type: new GraphQLNonNull(GraphQLInt),
        resolve: (tick) => {
          resolved.n++;
          return tick.n;
        },
      },
      // Every third tick: an unexpected failure (masked) and a known one (coded).
      failing: {
        type: GraphQLString,
        resolve: (tick) => {
          if (tick.n % 3 === 0) throw new Error(`secret detail of tick ${tick.n}`);
          return 'fine';
        },
      },
      outage: {
        type: GraphQLString,
        resolve: (tick) => {
          if (tick.n % 3 === 0) throw new DatabaseUnavailableError(new Error('connection refused'));
          return 'up';
        },
      },
    },
  });
  const schema = new GraphQLSchema({
    query: new GraphQLObjectType({ name: 'Query', fields: { ok: { type: GraphQLBoolean } } }),
    subscription: new GraphQLObjectType({
      name: 'Subscription',
      fields: {
        ticks: {
          type: new GraphQLNonNull(tick),
          extensions: { [SHARED_EVENTS]: true },
          subscribe: () =>
            new TickStream((stream) => {
              streams.add(stream);
              return () => streams.delete(stream);
            }, steps),
          resolve: (event: Tick) => event,
        },
      },
    }),
  });
  const yoga = createYoga({ schema, maskedErrors: maskedErrors('production'), plugins, logging: false });
  const publish = (ticks: readonly Tick[]) => {
    for (const stream of streams) stream.push(ticks);
  };
  return { yoga, resolved, steps, publish, streams };
}

/** Opens an SSE subscription in process and returns a reader of its body's text. */
async function open(yoga: ReturnType<typeof tickingYoga>['yoga'], query: string, variables = {}) {
  const response = await yoga.fetch('http://localhost/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query, variables }),
  });
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  return {
    read: async () => decoder.decode((await reader.read()).value),
    close: () => reader.cancel(),
  };
}

describe('useSharedEvents', () => {
  it('executes an event once per distinct selection and variables, whatever the number of subscribers', async () => {
    const { yoga, resolved, publish, subscribers } = tickingYoga();
    const query = `subscription($from: Int, $labelled: Boolean!) {
      sharedTicks(from: $from) { n label @include(if: $labelled) }
    }`;
    const streams = [
      await open(yoga, query, { labelled: false }),
      await open(yoga, query, { labelled: false, from: 3 }),
      await open(yoga, query, { labelled: false, from: 7 }),
      await open(yoga, query, { labelled: true }),
      await open(yoga, 'subscription { ownTicks { n } }'),
      await open(yoga, 'subscription { ownTicks { n } }'),
    ];
    for (const stream of streams) expect(await stream.read()).toBe(':\n\n');
    // Each stream reads its first event only once the source has its subscriber.
    const events = streams.map((stream) => stream.read());
    await expect.poll(() => subscribers.size).toBe(streams.length);
    publish({ n: 1 });
    const texts = await Promise.all(events);
    const unlabelled = 'event: next\ndata: {"data":{"sharedTicks":{"n":1}}}\n\n';
    expect(texts.slice(0, 3)).toEqual([unlabelled, unlabelled, unlabelled]);
    expect(texts[3]).toBe('event: next\ndata: {"data":{"sharedTicks":{"n":1,"label":"tick 1"}}}\n\n');
    expect(texts.slice(4)).toEqual(Array(2).fill('event: next\ndata: {"data":{"ownTicks":{"n":1}}}\n\n'));
    // The root field's own argument (`from`) does not split the sharing; the selection's variable does.
    expect(resolved.shared).toBe(2);
    // A field without the mark is executed per subscriber, as graphql-js does.
    expect(resolved.own).toBe(2);
    for (const stream of streams) await stream.close();
    await expect.poll(() => subscribers.size).toBe(0);
  });

  it('writes the events ready in one turn of the event loop as one chunk, in order', async () => {
    const { yoga, publish, subscribers } = tickingYoga();
    const stream = await open(yoga, 'subscription { sharedTicks { n } }');
    expect(await stream.read()).toBe(':\n\n');
    const next = stream.read();
    await expect.poll(() => subscribers.size).toBe(1);
    publish({ n: 1 });
    publish({ n: 2 });
    publish({ n: 3 });
    expect(await next).toBe(
      [1, 2, 3].map((n) => `event: next\ndata: {"data":{"sharedTicks":{"n":${n}}}}\n\n`).join(''),
    );
    await stream.close();
  });
});

/** Reads a stream's body until `count` events have come: their text, and in how many chunks. */
async function readEvents(stream: Awaited<ReturnType<typeof open>>, count: number) {
  let text = '';
  let chunks = 0;
  while ((text.match(/^event: next$/gm) ?? []).length < count) {
    text += await stream.read();
    chunks++;
  }
  return { text, chunks };
}

describe('shared events from a source with batches', () => {
  const query = 'subscription { ticks { n failing outage } }';
  const ticks = (from: number, count: number) => Array.from({ length: count }, (_, i) => ({ n: from + i }));

  it('sends a batch to every subscriber as an event per tick, in order, in one chunk, executed and masked once', async () => {
    const logged: unknown[] = [];
    const { yoga, resolved, steps, publish, streams } = batchingYoga(
      sharingPlugins((error) => logged.push(error)),
    );
    const subscribers = await Promise.all(Array.from({ length: 5 }, () => open(yoga, query)));
    for (const subscriber of subscribers) expect(await subscriber.read()).toBe(':\n\n');
    const reads = subscribers.map((subscriber) => readEvents(subscriber, 6));
    await expect.poll(() => streams.size).toBe(5);
    publish(ticks(1, 6));
    const received = await Promise.all(reads);
    for (const { text, chunks } of received) {
      expect(chunks).toBe(1);
      expect(text).toBe(received[0]?.text);
    }
    const events = (received[0]?.text ?? '').split('\n\n').slice(0, -1);
    expect(events.map((event) => JSON.parse(event.replace(/^event: next\ndata: /, '')))).toEqual(
      ticks(1, 6).map(({ n }) =>
        n % 3 === 0
          ? {
              data: { ticks: { n, failing: null, outage: null } },
              errors: [
                {
                  message: 'Unexpected error.',
                  locations: [{ line: 1, column: 26 }],
                  path: ['ticks', 'failing'],
                  extensions: { code: 'INTERNAL_SERVER_ERROR' },
                },
                {
                  message: 'The database is unavailable; retry shortly.',
                  locations: [{ line: 1, column: 34 }],
                  path: ['ticks', 'outage'],
                  extensions: { code: 'DATABASE_UNAVAILABLE' },
                },
              ],
            }
          : { data: { ticks: { n, failing: 'fine', outage: 'up' } } },
      ),
    );
    // One step per subscriber for the six ticks.
    expect(steps).toEqual({ single: 0, batch: 5 });
    // Once per tick, not per subscriber: the execution, and the log line of each masked cause.
    expect(resolved.n).toBe(6);
    expect(logged.map((error) => (error as Error).message)).toEqual([
      'secret detail of tick 3',
      'secret detail of tick 6',
    ]);
    for (const subscriber of subscribers) await subscriber.close();
    await expect.poll(() => streams.size).toBe(0);
  });

  it('answers byte for byte as Yoga does without the sharing, and as it does for a reader of single results', async () => {
    const batched = batchingYoga(sharingPlugins(() => {}));
    const [useErrors, useShared] = sharingPlugins(() => {}) as [Plugin, Plugin];
    // Yoga's own SSE processor reads the shared stream a result at a time.
    const single = batchingYoga([useErrors, useShared]);
    const plain = batchingYoga([useErrorCodes()]);
    const texts: string[] = [];
    for (const { yoga, publish, streams } of [batched, single, plain]) {
      const subscriber = await open(yoga, query);
      expect(await subscriber.read()).toBe(':\n\n');
      const read = readEvents(subscriber, 9);
      await expect.poll(() => streams.size).toBe(1);
      // Two batches: the coalescing processor takes each in one step, Yoga's a tick at a time.
      publish(ticks(1, 4));
      publish(ticks(5, 5));
      texts.push((await read).text);
      await subscriber.close();
    }
    expect(texts[0]).toContain('"code":"DATABASE_UNAVAILABLE"');
    expect(texts[1]).toBe(texts[0]);
    expect(texts[2]).toBe(texts[0]);
    expect([batched, single, plain].map(({ steps }) => steps)).toEqual([
      { single: 0, batch: 2 },
      { single: 9, batch: 0 },
      { single: 9, batch: 0 },
    ]);
  });
});
