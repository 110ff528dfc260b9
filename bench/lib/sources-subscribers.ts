/**
 * The subscribers of the many-writers bench (sources-writers.ts), in a worker thread of their own:
 * at 1,000 samples/s, 100 subscribers read 100,000 events a second, and on the writers' event loop
 * that reading delayed the writers' own timing of their acknowledgements (the bench measured
 * itself). The worker opens `count` subscriptions of `metricsAdded`, checks each event's order as
 * it comes, and on 'drain' waits (at most until the deadline) for every acknowledged sample, then
 * answers with its counts.
 *
 * Writer w's k-th sample is taken at FIRST_SAMPLE + k s + w ms (sources-writers.ts), so a
 * timestamp names its writer and its place. A subscriber checks, in the bytes as they come, that
 * each event's cursor (its place in commit order) is after the one before, and that each writer's
 * samples arrive in the order it wrote them. `acknowledgedAt` (shared with the writers) holds when
 * each sample was acknowledged, as a time since the epoch, NaN before.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { msOfDay, SseSubscription } from './sse-client.js';
import { LatencyHistogram } from './statistics.js';

export interface SubscribersSetup {
  port: number;
  writers: number;
  perWriter: number;
  count: number;
  acknowledgedAt: SharedArrayBuffer;
}

/** What the worker answers to 'drain'. */
export interface SubscribersReport {
  received: number[];
  outOfCommitOrder: number[];
  outOfWriterOrder: number[];
  delivery: { p50: number; p99: number; max: number };
}

export type SubscribersMessage = { opened: true } | { report: SubscribersReport };

const SUBSCRIPTION = JSON.stringify({
  query: 'subscription { metricsAdded { cursor node { timestamp } } }',
});
const CURSOR = '"cursor":"';
const TIMESTAMP = '"timestamp":"';
/** What an added-sample cursor holds before its position (domain/cursor.ts). */
const ADDED_PREFIX = 'added:';

/** One subscriber's checks over what it receives. */
class Subscriber {
  received = 0;
  outOfCommitOrder = 0;
  outOfWriterOrder = 0;
  #lastPosition = -1;
  readonly #lastOfWriter: Int32Array;
  readonly #stream: SseSubscription;

  constructor(port: number, writers: number, onSample: (writer: number, k: number, now: number) => void) {
    this.#lastOfWriter = new Int32Array(writers).fill(-1);
    this.#stream = new SseSubscription(port, SUBSCRIPTION, (text, now) => {
      let at = text.indexOf(CURSOR);
      while (at !== -1) {
        const end = text.indexOf('"', at + CURSOR.length);
        const cursor = Buffer.from(text.slice(at + CURSOR.length, end), 'base64url').toString('latin1');
        const position = cursor.startsWith(ADDED_PREFIX) ? Number(cursor.slice(ADDED_PREFIX.length)) : -1;
        if (!(position > this.#lastPosition)) this.outOfCommitOrder++;
        this.#lastPosition = position;
        const stamp = text.indexOf(TIMESTAMP, end);
        const ms = msOfDay(text, stamp + TIMESTAMP.length);
        const writer = ms % 1000;
        const k = Math.floor(ms / 1000);
        if (writer < writers) {
          if (k <= (this.#lastOfWriter[writer] as number)) this.outOfWriterOrder++;
          this.#lastOfWriter[writer] = k;
          onSample(writer, k, now);
        }
        this.received++;
        at = text.indexOf(CURSOR, stamp);
      }
    });
  }

  get opened(): Promise<void> {
    return this.#stream.opened;
  }

  close(): void {
    this.#stream.close();
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function run(port: NonNullable<typeof parentPort>, setup: SubscribersSetup): Promise<void> {
  const acknowledgedAt = new Float64Array(setup.acknowledgedAt);
  const delivery = new LatencyHistogram();
  const onSample = (writer: number, k: number, now: number) => {
    const acked = acknowledgedAt[writer * setup.perWriter + k] as number;
    const arrived = performance.timeOrigin + now;
    delivery.record(Number.isNaN(acked) ? 0 : arrived - acked);
  };
  const subscribers: Subscriber[] = [];
  for (let i = 0; i < setup.count; i++) {
    subscribers.push(new Subscriber(setup.port, setup.writers, onSample));
    if (i % 50 === 49) await Promise.all(subscribers.slice(-50).map((s) => s.opened));
  }
  await Promise.all(subscribers.map((s) => s.opened));
  port.postMessage({ opened: true } satisfies SubscribersMessage);
  port.once('message', async ({ acknowledged, deadline }: { acknowledged: number; deadline: number }) => {
    while (subscribers.some((s) => s.received < acknowledged) && Date.now() < deadline) await sleep(100);
    for (const subscriber of subscribers) subscriber.close();
    const report: SubscribersReport = {
      received: subscribers.map((s) => s.received),
      outOfCommitOrder: subscribers.map((s) => s.outOfCommitOrder),
      outOfWriterOrder: subscribers.map((s) => s.outOfWriterOrder),
      delivery: { p50: delivery.percentile(0.5), p99: delivery.percentile(0.99), max: delivery.max() },
    };
    port.postMessage({ report } satisfies SubscribersMessage);
  });
}

if (parentPort) void run(parentPort, workerData as SubscribersSetup);
