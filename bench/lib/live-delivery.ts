/**
 * Live delivery: subscribers of `metricsAdded` (an event per sample) or `metricsAddedBatch` (an
 * event per write) split over two replicas of the service on one database, while samples are
 * written in batches at a fixed rate. Every subscriber must get every sample exactly once, in
 * commit order; the latency is from the writer's COMMIT returning to the sample arriving at the
 * subscriber.
 */
import pg from 'pg';
import { databaseUrl, prepareDatabase } from './dataset.js';
import { cpuMsByPid, freePort, productionEnv, rssKiB, Service } from './processes.js';
import { msOfDay, SseSubscription } from './sse-client.js';
import { LatencyHistogram } from './statistics.js';

/** `sample`: metricsAdded, one SSE event per sample; `batch`: metricsAddedBatch, one per write. */
export type LiveShape = 'sample' | 'batch';

export interface LiveDeliveryOptions {
  service: { command: string; args: string[] };
  /** The server's base URL (a database on it is made for the run). */
  serverUrl: string;
  shape: LiveShape;
  subscribers: number;
  samplesPerSecond: number;
  batchesPerSecond: number;
  seconds: number;
  log: (line: string) => void;
}

export interface LiveDeliveryResult {
  shape: LiveShape;
  subscribers: number;
  samplesPerSecond: number;
  seconds: number;
  written: number;
  /** Subscribers that got every sample once, in order. */
  complete: number;
  duplicatesOrDisorder: number;
  /** Samples not delivered DRAIN_MS after the last write (late or lost: the order check tells loss from lateness). */
  missing: number;
  /** Samples delivered, over all subscribers. */
  delivered: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Both replicas' CPU over the samples delivered. */
  serverCpuUsPerEvent: number;
  /** This process's CPU (the subscribers' parsing and the writer) over the samples delivered: it shares the machine. */
  clientCpuUsPerEvent: number;
  idleSubscriberKiB: number;
}

/** How long after the last write the run waits for the last events. */
export const DRAIN_MS = 15_000;

const SUBSCRIPTIONS: Record<LiveShape, string> = {
  sample: JSON.stringify({
    query: 'subscription { metricsAdded { cursor node { id timestamp cpuLoad concurrency } } }',
  }),
  batch: JSON.stringify({
    query: 'subscription { metricsAddedBatch { cursor nodes { id timestamp cpuLoad concurrency } } }',
  }),
};

/** Samples are written one millisecond apart from this midnight on, so a sample's time of day is its index. */
const FIRST_SAMPLE = Date.parse('2026-06-01T00:00:00Z');
const TIMESTAMP = '"timestamp":"';

/**
 * One subscriber: counts samples and checks that their indexes (written in increasing order) only
 * increase. It finds the timestamps in the bytes as they come rather than decoding and parsing
 * each event: at a million samples a second this process shares the machine with the servers.
 */
class Subscriber {
  received = 0;
  disorder = 0;
  last = -1;
  readonly #stream: SseSubscription;

  constructor(port: number, shape: LiveShape, onSample: (index: number, now: number) => void) {
    this.#stream = new SseSubscription(port, SUBSCRIPTIONS[shape], (text, now) => {
      let at = text.indexOf(TIMESTAMP);
      while (at !== -1) {
        const index = msOfDay(text, at + TIMESTAMP.length);
        this.received++;
        if (index <= this.last) this.disorder++;
        this.last = index;
        onSample(index, now);
        at = text.indexOf(TIMESTAMP, at + TIMESTAMP.length + 24);
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

export async function benchLiveDelivery(options: LiveDeliveryOptions): Promise<LiveDeliveryResult> {
  const url = databaseUrl(options.serverUrl, 'metrics_bench_live');
  await prepareDatabase(url, true);
  const ports = [await freePort(), await freePort()];
  const replicas = ports.map((port, i) =>
    Service.start(
      `replica ${i + 1}`,
      options.service.command,
      options.service.args,
      productionEnv(process.env, url, port, { ACCESS_LOG: 'false' }),
    ),
  );
  const writer = new pg.Client({ connectionString: url });
  try {
    await Promise.all(replicas.map((replica, i) => replica.waitReady(`http://127.0.0.1:${ports[i]}/readyz`)));
    await writer.connect();
    const pids = replicas.map((replica) => replica.child.pid ?? 0);
    const rssBefore = await Promise.all(pids.map(rssKiB));

    const batchSize = Math.round(options.samplesPerSecond / options.batchesPerSecond);
    const batches = options.seconds * options.batchesPerSecond;
    // When each batch's INSERT returned (NaN before); a sample arriving before its INSERT returned counts 0 ms.
    const committedAt = new Float64Array(batches).fill(Number.NaN);
    let issued = 0;
    const latencies = new LatencyHistogram();
    const onSample = (index: number, now: number) => {
      if (index >= issued * batchSize) return;
      const commit = committedAt[Math.floor(index / batchSize)] as number;
      latencies.record(Number.isNaN(commit) ? 0 : now - commit);
    };
    const subscribers: Subscriber[] = [];
    for (let i = 0; i < options.subscribers; i++) {
      subscribers.push(new Subscriber(ports[i % 2] as number, options.shape, onSample));
      if (i % 100 === 99) await Promise.all(subscribers.slice(-100).map((s) => s.opened));
    }
    await Promise.all(subscribers.map((s) => s.opened));
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const rssIdle = await Promise.all(pids.map(rssKiB));
    const idleSubscriberKiB =
      (rssIdle.reduce((a, b) => a + b, 0) - rssBefore.reduce((a, b) => a + b, 0)) / options.subscribers;
    options.log(
      `live (${options.shape}): ${options.subscribers} subscribers open; writing ${options.samplesPerSecond} samples/s in ${options.batchesPerSecond} batches/s for ${options.seconds} s`,
    );

    const cpuBefore = await cpuMsByPid(pids);
    const clientBefore = process.cpuUsage();
    const intervalMs = 1000 / options.batchesPerSecond;
    const started = performance.now();
    let written = 0;
    for (let batch = 0; batch < batches; batch++) {
      const due = started + batch * intervalMs;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const times = Array.from({ length: batchSize }, (_, i) => FIRST_SAMPLE + written + i);
      issued++;
      await writer.query(
        `INSERT INTO metrics ("timestamp", cpu_load, concurrency)
         SELECT to_timestamp(t / 1000.0), 0.5, 1 FROM unnest($1::float8[]) AS t`,
        [times],
      );
      committedAt[batch] = performance.now();
      written += batchSize;
    }
    const expected = written * options.subscribers;
    const deadline = performance.now() + DRAIN_MS;
    while (latencies.count < expected && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const cpuAfter = await cpuMsByPid(pids);
    const client = process.cpuUsage(clientBefore);
    let cpuMs = 0;
    for (const [pid, ms] of cpuAfter) cpuMs += ms - (cpuBefore.get(pid) ?? 0);

    const delivered = latencies.count;
    const result: LiveDeliveryResult = {
      shape: options.shape,
      subscribers: options.subscribers,
      samplesPerSecond: options.samplesPerSecond,
      seconds: options.seconds,
      written,
      complete: subscribers.filter((s) => s.received === written && s.disorder === 0).length,
      duplicatesOrDisorder: subscribers.reduce((sum, s) => sum + s.disorder, 0),
      missing: subscribers.reduce((sum, s) => sum + Math.max(0, written - s.received), 0),
      delivered,
      p50Ms: latencies.percentile(0.5),
      p99Ms: latencies.percentile(0.99),
      maxMs: latencies.max(),
      serverCpuUsPerEvent: delivered > 0 ? (cpuMs * 1000) / delivered : Number.NaN,
      clientCpuUsPerEvent: delivered > 0 ? (client.user + client.system) / delivered : Number.NaN,
      idleSubscriberKiB,
    };
    for (const subscriber of subscribers) subscriber.close();
    return result;
  } finally {
    await writer.end().catch(() => {});
    await Promise.all(replicas.map((replica) => replica.stop()));
  }
}
