/**
 * Many writers: `writers` clients, each a source of its own writing one sample at a time through
 * the `ingestMetrics` mutation (the next when the last is acknowledged and its time has come), a
 * `rate` of samples a second in all, for `seconds`; meanwhile `subscribers` SSE subscriptions of
 * `metricsAdded` on the same service count what they receive.
 *
 * Writer w's k-th sample is taken at FIRST_SAMPLE + k s + w ms, so a timestamp names its writer
 * and its place (time of day: k * 1000 + w). The subscribers run in a worker thread
 * (sources-subscribers.ts), so their reading does not delay the writers' timing; each checks
 * that every event's cursor (its place in commit order) is after the one before, and that each
 * writer's samples arrive in the order it wrote them (it writes the next only once the last is
 * acknowledged, so its samples commit in that order). Complete: every acknowledged sample
 * received, none twice, none out of order.
 *
 * Loopback only, bounded in time (the writers stop at `seconds`, the subscribers get DRAIN_MS
 * more) and in count (rate x seconds samples).
 */
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { Worker } from 'node:worker_threads';
import pg from 'pg';
import { backendPids, databaseUrl, makePartitions, prepareDatabase } from './dataset.js';
import { DRAIN_MS } from './live-delivery.js';
import { cpuMsByPid, freePort, productionEnv, Service } from './processes.js';
import type { SubscribersMessage, SubscribersReport, SubscribersSetup } from './sources-subscribers.js';
import { LatencyHistogram } from './statistics.js';

export interface WritersOptions {
  service: { command: string; args: string[] };
  benchUrl: string;
  writers: number;
  /** Samples a second, all writers together. */
  rate: number;
  seconds: number;
  subscribers: number;
  log: (line: string) => void;
}

export interface WritersResult {
  writers: number;
  rate: number;
  seconds: number;
  subscribers: number;
  /** Mutations sent and acknowledged with the sample inserted. */
  sent: number;
  acknowledged: number;
  /** Mutations that failed (HTTP status, connection, or not inserted), and the first such answer. */
  failed: number;
  firstFailure?: string;
  /** Samples acknowledged per second of writing. */
  achievedRate: number;
  ack: { p50: number; p99: number; max: number };
  /** From a sample's acknowledgement to its arrival at a subscriber (0 when it arrived first). */
  delivery: { p50: number; p99: number; max: number };
  /** Subscribers that got every acknowledged sample once, in order. */
  complete: number;
  /** Acknowledged samples a subscriber had not received DRAIN_MS after the last write, summed over subscribers. */
  missing: number;
  /** Events whose cursor was not after the one before (a repeat or a reordering), summed. */
  outOfCommitOrder: number;
  /** Samples of a writer arriving before one it wrote earlier, or twice, summed. */
  outOfWriterOrder: number;
  /** Samples the table holds after the run. */
  stored: number;
  serverCpuMsPerSample: number;
  postgresCpuMsPerSample: number;
}

/** Midnight of a day of its own (its partition is made first). */
const FIRST_SAMPLE = Date.UTC(2026, 5, 1);

const MUTATION =
  'mutation Write($samples: [MetricInput!]!) { ingestMetrics(samples: $samples) { inserted duplicates rejected { index field reason code } } }';

const writerName = (w: number) => `writer-${String(w + 1).padStart(3, '0')}`;

/** The subscribers' worker, once all its subscriptions are open. */
async function startSubscribers(setup: SubscribersSetup): Promise<Worker> {
  // The bench runs under tsx, whose loader a worker does not inherit: the worker imports the
  // module through tsx's API.
  const entry = new URL('./sources-subscribers.ts', import.meta.url).href;
  const worker = new Worker(
    `import('tsx/esm/api').then(({ tsImport }) => tsImport(${JSON.stringify(entry)}, ${JSON.stringify(import.meta.url)}))`,
    { eval: true, workerData: setup },
  );
  await new Promise<void>((resolve, reject) => {
    worker.once('message', (message: SubscribersMessage) => ('opened' in message ? resolve() : reject()));
    worker.once('error', reject);
  });
  return worker;
}

/** The subscribers' counts, once they have every acknowledged sample or the deadline passed. */
function drainSubscribers(
  worker: Worker,
  acknowledged: number,
  deadline: number,
): Promise<SubscribersReport> {
  return new Promise((resolve, reject) => {
    worker.once('message', (message: SubscribersMessage) =>
      'report' in message ? resolve(message.report) : reject(new Error('subscribers: unexpected message')),
    );
    worker.once('error', reject);
    worker.postMessage({ acknowledged, deadline });
  });
}

/** POSTs `body` on a kept-alive connection of `agent`; resolves with the status and the answer. */
function post(
  agent: Agent,
  port: number,
  token: string,
  body: string,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/graphql',
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          authorization: `Bearer ${token}`,
          'content-length': Buffer.byteLength(body),
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString() }),
        );
        response.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function benchWriters(options: WritersOptions): Promise<WritersResult> {
  const { writers, rate, seconds, subscribers: subscriberCount, log } = options;
  if (writers < 1 || writers > 1000)
    throw new Error('--writers: from 1 to 1000 (a writer is a millisecond of its timestamps)');
  const perWriter = Math.ceil((rate * seconds) / writers);
  if (perWriter >= 86_400) throw new Error('--writers-seconds: each writer writes at most 86,399 samples');
  const url = databaseUrl(options.benchUrl, 'metrics_sources_writers');
  await prepareDatabase(url, true);
  await makePartitions(url, new Date(FIRST_SAMPLE), new Date(FIRST_SAMPLE + 86_400_000));
  const port = await freePort();
  const token = randomBytes(24).toString('hex');
  const service = Service.start(
    'service (writers)',
    options.service.command,
    options.service.args,
    productionEnv(process.env, url, port, { INGEST_TOKEN: token, ACCESS_LOG: 'false' }),
  );
  const monitor = new pg.Client({ connectionString: url });
  // FIFO: every kept-alive socket is reused in turn. With Node's default (LIFO) the sockets at the
  // back of the free list stayed idle past the service's keep-alive timeout (5 s), and a request
  // sent on one as the service closed it failed with "socket hang up" (7 of 300,000 in one run):
  // a client's race that clients reading the `Keep-Alive: timeout` header avoid, not a refusal.
  const agent = new Agent({ keepAlive: true, maxSockets: writers, scheduling: 'fifo' });
  let subscribers: Worker | undefined;
  try {
    await service.waitReady(`http://127.0.0.1:${port}/readyz`);
    await monitor.connect();
    // When each sample was acknowledged (ms since the epoch, NaN before), by writer * perWriter + k,
    // shared with the subscribers' worker.
    const shared = new SharedArrayBuffer(writers * perWriter * Float64Array.BYTES_PER_ELEMENT);
    const acknowledgedAt = new Float64Array(shared).fill(Number.NaN);
    subscribers = await startSubscribers({
      port,
      writers,
      perWriter,
      count: subscriberCount,
      acknowledgedAt: shared,
    });
    await sleep(1000);
    log(
      `writers: ${writers} clients writing ${rate} samples/s through ingestMetrics for ${seconds} s, ${subscriberCount} subscribers of metricsAdded`,
    );

    const ack = new LatencyHistogram();
    let sent = 0;
    let acknowledged = 0;
    let failed = 0;
    let firstFailure: string | undefined;
    const pid = service.child.pid ?? 0;
    const cpuBefore = {
      server: await cpuMsByPid([pid]),
      postgres: await cpuMsByPid(await backendPids(monitor)),
    };
    const intervalMs = (1000 * writers) / rate;
    const started = performance.now();
    const stopAt = started + seconds * 1000;
    const writer = async (w: number) => {
      for (let k = 0; k < perWriter; k++) {
        // Writers staggered over the interval, so the total is even over time.
        const due = started + (w / writers) * intervalMs + k * intervalMs;
        if (due >= stopAt) return;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        const body = JSON.stringify({
          query: MUTATION,
          variables: {
            samples: [
              {
                timestamp: new Date(FIRST_SAMPLE + k * 1000 + w).toISOString(),
                source: writerName(w),
                cpuLoad: Math.round(((k * 7 + w) % 400) * 2.5) / 1000,
                concurrency: (k + w) % 64,
              },
            ],
          },
        });
        const sentAt = performance.now();
        sent++;
        try {
          const answer = await post(agent, port, token, body);
          const now = performance.now();
          const result =
            answer.status === 200
              ? (JSON.parse(answer.text) as { data?: { ingestMetrics?: { inserted?: number } } })
              : undefined;
          if (result?.data?.ingestMetrics?.inserted === 1) {
            acknowledged++;
            ack.record(now - sentAt);
            acknowledgedAt[w * perWriter + k] = performance.timeOrigin + now;
          } else {
            failed++;
            firstFailure ??= `HTTP ${answer.status}: ${answer.text.slice(0, 300)}`;
          }
        } catch (error) {
          failed++;
          firstFailure ??= (error as Error).message;
        }
      }
    };
    await Promise.all(Array.from({ length: writers }, (_, w) => writer(w)));
    const writingSeconds = (performance.now() - started) / 1000;
    const report = await drainSubscribers(subscribers, acknowledged, Date.now() + DRAIN_MS);
    const complete = report.received.filter(
      (received, i) =>
        received === acknowledged && report.outOfCommitOrder[i] === 0 && report.outOfWriterOrder[i] === 0,
    ).length;
    const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);
    const cpuAfter = {
      server: await cpuMsByPid([pid]),
      postgres: await cpuMsByPid(await backendPids(monitor)),
    };
    const used = (group: 'server' | 'postgres') => {
      let ms = 0;
      for (const [p, after] of cpuAfter[group]) ms += after - (cpuBefore[group].get(p) ?? 0);
      return ms;
    };
    const stored = Number(
      (await monitor.query<{ count: string }>('SELECT count(*) AS count FROM metrics')).rows[0]?.count,
    );
    log(
      `writers: ${acknowledged} acknowledged (${failed} failed) in ${writingSeconds.toFixed(1)} s, ack p99 ${ack.percentile(0.99)} ms; subscribers received ${Math.min(...report.received)} at least`,
    );
    return {
      writers,
      rate,
      seconds,
      subscribers: subscriberCount,
      sent,
      acknowledged,
      failed,
      ...(firstFailure ? { firstFailure } : {}),
      achievedRate: acknowledged / writingSeconds,
      ack: { p50: ack.percentile(0.5), p99: ack.percentile(0.99), max: ack.max() },
      delivery: report.delivery,
      complete,
      missing: sum(report.received.map((received) => Math.max(0, acknowledged - received))),
      outOfCommitOrder: sum(report.outOfCommitOrder),
      outOfWriterOrder: sum(report.outOfWriterOrder),
      stored,
      serverCpuMsPerSample: acknowledged > 0 ? used('server') / acknowledged : Number.NaN,
      postgresCpuMsPerSample: acknowledged > 0 ? used('postgres') / acknowledged : Number.NaN,
    };
  } finally {
    await subscribers?.terminate();
    agent.destroy();
    await monitor.end().catch(() => {});
    await service.stop();
  }
}
