/**
 * Live delivery: subscribers of `metricsAdded` split over two replicas of the service on one
 * database, while samples are written in batches at a fixed rate. Every subscriber must get every
 * sample exactly once, in commit order; the latency is from the writer's COMMIT returning to the
 * event arriving at the subscriber.
 */
import { request } from 'node:http';
import pg from 'pg';
import { databaseUrl, prepareDatabase } from './dataset.js';
import { cpuMsByPid, freePort, Service } from './processes.js';

export interface LiveDeliveryOptions {
  service: { command: string; args: string[] };
  /** The server's base URL (a database on it is made for the run). */
  serverUrl: string;
  subscribers: number;
  samplesPerSecond: number;
  batchesPerSecond: number;
  seconds: number;
  log: (line: string) => void;
}

export interface LiveDeliveryResult {
  subscribers: number;
  samplesPerSecond: number;
  seconds: number;
  written: number;
  /** Subscribers that got every sample once, in order. */
  complete: number;
  duplicatesOrDisorder: number;
  /** Events not delivered DRAIN_MS after the last write (late or lost: the order check tells loss from lateness). */
  missing: number;
  delivered: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  serverCpuUsPerEvent: number;
  idleSubscriberKiB: number;
}

/** How long after the last write the run waits for the last events. */
const DRAIN_MS = 15_000;

const SUBSCRIPTION = JSON.stringify({
  query: 'subscription { metricsAdded { cursor node { id timestamp cpuLoad concurrency } } }',
});

/** One subscriber: counts events and checks that timestamps (written in increasing order) only increase. */
class Subscriber {
  received = 0;
  disorder = 0;
  last = '';
  #buffer = '';
  readonly opened: Promise<void>;
  #close: () => void = () => {};

  constructor(port: number, onEvent: (timestamp: string) => void) {
    this.opened = new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: '/graphql',
          method: 'POST',
          agent: false,
          headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        },
        (response) => {
          if (response.statusCode !== 200) reject(new Error(`subscription answered ${response.statusCode}`));
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => {
            this.#buffer += chunk;
            let end = this.#buffer.indexOf('\n\n');
            while (end !== -1) {
              const block = this.#buffer.slice(0, end);
              this.#buffer = this.#buffer.slice(end + 2);
              const at = block.indexOf('"timestamp":"');
              if (block.startsWith('event: next') && at !== -1) {
                const timestamp = block.slice(at + 13, block.indexOf('"', at + 13));
                this.received++;
                if (timestamp <= this.last) this.disorder++;
                this.last = timestamp;
                onEvent(timestamp);
              }
              end = this.#buffer.indexOf('\n\n');
            }
          });
          resolve();
        },
      );
      req.on('error', reject);
      req.end(SUBSCRIPTION);
      this.#close = () => req.destroy();
    });
  }

  close(): void {
    this.#close();
  }
}

const rssKiB = async (pid: number) => {
  const status = await import('node:fs/promises').then((fs) => fs.readFile(`/proc/${pid}/status`, 'utf8'));
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
};

export async function benchLiveDelivery(options: LiveDeliveryOptions): Promise<LiveDeliveryResult> {
  const url = databaseUrl(options.serverUrl, 'metrics_bench_live');
  await prepareDatabase(url, true);
  const ports = [await freePort(), await freePort()];
  const replicas = ports.map((port, i) =>
    Service.start(`replica ${i + 1}`, options.service.command, options.service.args, {
      ...process.env,
      NODE_ENV: 'production',
      DATABASE_URL: url,
      LOG_LEVEL: 'warn',
      ACCESS_LOG: 'false',
      HOST: '127.0.0.1',
      PORT: String(port),
    }),
  );
  const writer = new pg.Client({ connectionString: url });
  try {
    await Promise.all(replicas.map((replica, i) => replica.waitReady(`http://127.0.0.1:${ports[i]}/readyz`)));
    await writer.connect();
    const pids = replicas.map((replica) => replica.child.pid ?? 0);
    const rssBefore = await Promise.all(pids.map(rssKiB));

    // When each sample's INSERT returned; samples still in flight count from 0 ms when they arrive.
    const committedAt = new Map<string, number>();
    const inFlight = new Set<string>();
    // Latency histogram in 1 ms steps up to 60 s.
    const histogram = new Uint32Array(60_001);
    let delivered = 0;
    const onEvent = (timestamp: string) => {
      const commit = committedAt.get(timestamp);
      if (commit === undefined && !inFlight.has(timestamp)) return;
      delivered++;
      const ms = commit === undefined ? 0 : Math.round(performance.now() - commit);
      histogram[Math.min(60_000, Math.max(0, ms))] = (histogram[Math.min(60_000, Math.max(0, ms))] ?? 0) + 1;
    };
    const subscribers: Subscriber[] = [];
    for (let i = 0; i < options.subscribers; i++) {
      subscribers.push(new Subscriber(ports[i % 2] as number, onEvent));
      if (i % 100 === 99) await Promise.all(subscribers.slice(-100).map((s) => s.opened));
    }
    await Promise.all(subscribers.map((s) => s.opened));
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const rssIdle = await Promise.all(pids.map(rssKiB));
    const idleSubscriberKiB =
      (rssIdle.reduce((a, b) => a + b, 0) - rssBefore.reduce((a, b) => a + b, 0)) / options.subscribers;
    options.log(
      `live: ${options.subscribers} subscribers open; writing ${options.samplesPerSecond} samples/s in ${options.batchesPerSecond} batches/s for ${options.seconds} s`,
    );

    const cpuBefore = await cpuMsByPid(pids);
    const batchSize = Math.round(options.samplesPerSecond / options.batchesPerSecond);
    const batches = options.seconds * options.batchesPerSecond;
    const intervalMs = 1000 / options.batchesPerSecond;
    const started = performance.now();
    let next = Date.parse('2026-06-01T00:00:00Z');
    let written = 0;
    for (let batch = 0; batch < batches; batch++) {
      const due = started + batch * intervalMs;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const times = Array.from({ length: batchSize }, () => next++);
      const isos = times.map((time) => new Date(time).toISOString());
      for (const iso of isos) inFlight.add(iso);
      await writer.query(
        `INSERT INTO metrics ("timestamp", cpu_load, concurrency)
         SELECT to_timestamp(t / 1000.0), 0.5, 1 FROM unnest($1::float8[]) AS t`,
        [times],
      );
      const now = performance.now();
      for (const iso of isos) {
        committedAt.set(iso, now);
        inFlight.delete(iso);
      }
      written += batchSize;
    }
    const expected = written * options.subscribers;
    const deadline = performance.now() + DRAIN_MS;
    while (delivered < expected && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const cpuAfter = await cpuMsByPid(pids);
    let cpuMs = 0;
    for (const [pid, ms] of cpuAfter) cpuMs += ms - (cpuBefore.get(pid) ?? 0);

    const percentile = (p: number) => {
      const rank = Math.ceil(delivered * p);
      let seen = 0;
      for (let ms = 0; ms < histogram.length; ms++) {
        seen += histogram[ms] as number;
        if (seen >= rank) return ms;
      }
      return Number.NaN;
    };
    let maxMs = 0;
    for (let ms = histogram.length - 1; ms >= 0; ms--) {
      if ((histogram[ms] as number) > 0) {
        maxMs = ms;
        break;
      }
    }
    const result: LiveDeliveryResult = {
      subscribers: options.subscribers,
      samplesPerSecond: options.samplesPerSecond,
      seconds: options.seconds,
      written,
      complete: subscribers.filter((s) => s.received === written && s.disorder === 0).length,
      duplicatesOrDisorder: subscribers.reduce((sum, s) => sum + s.disorder, 0),
      missing: subscribers.reduce((sum, s) => sum + Math.max(0, written - s.received), 0),
      delivered,
      p50Ms: percentile(0.5),
      p99Ms: percentile(0.99),
      maxMs,
      serverCpuUsPerEvent: delivered > 0 ? (cpuMs * 1000) / delivered : Number.NaN,
      idleSubscriberKiB,
    };
    for (const subscriber of subscribers) subscriber.close();
    return result;
  } finally {
    await writer.end().catch(() => {});
    await Promise.all(replicas.map((replica) => replica.stop()));
  }
}
