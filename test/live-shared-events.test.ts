import {
  GraphQLBoolean,
  GraphQLInt,
  GraphQLNonNull,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLString,
} from 'graphql';
import { createYoga, Repeater } from 'graphql-yoga';
import { describe, expect, it } from 'vitest';
import { useCoalescedEventStreams } from '../src/graphql/plugins/event-streams.js';
import { SHARED_EVENTS, useSharedEvents } from '../src/graphql/plugins/shared-events.js';

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
  const yoga = createYoga({ schema, plugins: [useSharedEvents(), useCoalescedEventStreams()] });
  const publish = (tick: Tick) => {
    for (const subscriber of subscribers) subscriber(tick);
  };
  return { yoga, resolved, publish, subscribers };
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
