/**
 * Agents in (`npm run bench -- --agents`): the two push receivers against the ingest CLI on the
 * same samples, each system loading them into a fresh database of its own (the fleet ingest's:
 * migrated, the day partitions of the span made first, every trigger on).
 *
 * The samples: `sources` sources x `steps` timestamps `stepSeconds` apart, from the project's
 * generator (`scripts/generate-metrics.ts --sources`, through the fleet ingest's cache), each
 * with a CPU load and a concurrency. Then, round by round:
 *
 * 1. **CLI**: `npm run ingest -- --format ndjson --json <file>`, as a user runs it: rows/s from
 *    start to exit, and from the load time the CLI itself reports.
 * 2. **remote-write** (`POST /api/v1/write`): the samples as Prometheus' queue manager sends them.
 *    Each sample is two series points (`node_load1`, `http_server_active_requests`, labelled
 *    `instance`, `job`, `region`, `tier`); each series goes to one of `senders` shards by a hash
 *    of its labels (Prometheus: by series ref, which for a target's many series is as good as
 *    random), and a shard sends WriteRequests of `batchPoints` samples (max_samples_per_send),
 *    one TimeSeries per sample with its labels as Prometheus' `populateTimeSeries` writes them,
 *    snappy-compressed, one request in flight per shard, each request sent once Prometheus' WAL
 *    reader would have read its samples (the reader blocks while any shard's queue is full: 5
 *    requests' worth, queue_config.capacity's default). A source's two points of an instant
 *    mostly land in different shards: one request inserts the row, the other merges into it.
 * 3. **OTLP protobuf** and 4. **OTLP JSON** (`POST /v1/metrics`): ExportMetricsServiceRequests
 *    as a collector batching a fleet sends them: one ResourceMetrics per source (`host.name`,
 *    `region`, `tier`), a gauge `system.cpu.load_average.1m` (asDouble) and a cumulative,
 *    non-monotonic sum `http.server.active_requests` (asInt), `batchPoints / (2 x sources)`
 *    instants of every source per request; `senders` senders take the next request as each is
 *    answered.
 *
 * Bodies are encoded before the clock starts (protobufjs over the receivers' own schemas in
 * src/ingest/proto, as test/support/agent-payloads.ts builds them), so the client's encoding is
 * not measured; the clock runs from the first request sent to the last answer. Every answer is
 * checked (204; 200 without partial_success); 5xx and 429 are retried after 100 ms, as both
 * senders do, and counted. Afterwards each database must hold exactly the CLI's rows (count,
 * sources, sums, first and last instant, the hourly rollups' counts) and a few samples are
 * compared with the file's values.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Agent, request } from 'node:http';
import { createInterface } from 'node:readline';
import pg from 'pg';
import snappy from 'snappy';
import { loadSchema } from '../../src/ingest/agent-payload.js';
import { backendPids, databaseUrl, dropDatabase, ingestWithScript, ROOT, withClient } from './dataset.js';
import { checkpoint, countRows } from './ingest.js';
import { cpuMsByPid, freePort, machineBusyMs, productionEnv, Service } from './processes.js';
import { int, ratio } from './report.js';
import { fleetFiles, type GeneratedRecord, prepareFleetDatabase } from './sources-ingest.js';
import { median } from './statistics.js';

export const AGENT_SYSTEMS = ['cli', 'remote-write', 'otlp-protobuf', 'otlp-json'] as const;
export type AgentSystem = (typeof AGENT_SYSTEMS)[number];

const SYSTEM_NAMES: Readonly<Record<AgentSystem, string>> = {
  cli: '`npm run ingest` (NDJSON)',
  'remote-write': 'remote-write `/api/v1/write`',
  'otlp-protobuf': 'OTLP protobuf `/v1/metrics`',
  'otlp-json': 'OTLP JSON `/v1/metrics`',
};

export interface AgentsOptions {
  benchUrl: string;
  service: { command: string; args: string[]; how: string };
  sources: number;
  steps: number;
  stepSeconds: number;
  /** Points (remote-write samples, OTLP data points) per request. */
  batchPoints: number;
  /** Prometheus' shards; the collector's concurrent senders. */
  senders: number;
  rounds: number;
  systems: AgentSystem[];
  /** Sample the database's backends (pg_stat_activity) every 10 ms while the receivers load. */
  sampleBackends: boolean;
  log: (line: string) => void;
}

export interface AgentRun {
  system: AgentSystem;
  round: number;
  rows: number;
  /** From the first request to the last answer; the CLI's from its start to its exit. */
  wallSeconds: number;
  /** The CLI's own load time (its `elapsedMs`). */
  cliSeconds?: number;
  requests?: number;
  bodyBytes?: number;
  retries?: number;
  /** The service process's CPU over the measured window. */
  serviceCpuMs?: number;
  postgresCpuMs?: number;
  /** Every core of the machine: the client, the service, PostgreSQL. */
  machineCpuMs: number;
  /** The service's pid (its profile's name under --cpu-prof). */
  pid?: number;
  /** With sampleBackends: what the database's backends were doing, share of the polls by activity. */
  backends?: BackendActivity;
  problems: string[];
}

export interface BackendActivity {
  polls: number;
  /** Activity (a statement, or idle in transaction), and the polls that found a backend in it. */
  counts: Record<string, number>;
}

export interface AgentsReport {
  options: Omit<AgentsOptions, 'log' | 'service'>;
  service: string;
  file: string;
  samples: number;
  /** Remote-write: samples whose two points went to different shards. */
  splitSamples: number;
  requests: Partial<Record<AgentSystem, { count: number; bytes: number; points: number }>>;
  runs: AgentRun[];
}

// ---------------------------------------------------------------------------------------------
// The samples

interface Samples {
  sources: { name: string; labels: Record<string, string> }[];
  steps: number;
  /** By row, as the generator writes them: instant by instant, every source in turn. */
  timestampMs: Float64Array;
  cpuLoad: Float64Array;
  concurrency: Float64Array;
}

async function readSamples(file: string, sources: number, steps: number): Promise<Samples> {
  const rows = sources * steps;
  const samples: Samples = {
    sources: [],
    steps,
    timestampMs: new Float64Array(rows),
    cpuLoad: new Float64Array(rows),
    concurrency: new Float64Array(rows),
  };
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY });
  let row = 0;
  for await (const line of lines) {
    if (line === '') continue;
    const record = JSON.parse(line) as GeneratedRecord;
    const source = row % sources;
    if (row < sources) samples.sources.push({ name: record.source, labels: record.labels ?? {} });
    else if (samples.sources[source]?.name !== record.source)
      throw new Error(`row ${row}: ${record.source}, expected ${samples.sources[source]?.name}`);
    samples.timestampMs[row] = Math.round(record.timestamp * 1000);
    samples.cpuLoad[row] = record.cpu_load;
    samples.concurrency[row] = record.concurrency;
    row++;
  }
  if (row !== rows) throw new Error(`${file} holds ${row} samples; expected ${rows}`);
  return samples;
}

// ---------------------------------------------------------------------------------------------
// The bodies, encoded before the clock starts

const writeRequestType = loadSchema('remote-write.proto').lookupType('prometheus.WriteRequest');
const otlpSchema = loadSchema('otlp-metrics.proto');
const exportRequestType = otlpSchema.lookupType('opentelemetry.proto.ExportMetricsServiceRequest');
const exportResponseType = otlpSchema.lookupType('opentelemetry.proto.ExportMetricsServiceResponse');

const PROMETHEUS_METRICS = ['node_load1', 'http_server_active_requests'] as const;
/** queue_config.capacity over max_samples_per_send, at Prometheus' defaults (10,000 / 2,000). */
const QUEUE_REQUESTS = 5;

/** A series' shard: a well-mixed hash of its labels (FNV's low bits would send a source's two series alike). */
function shardOf(labels: readonly { name: string; value: string }[], shards: number): number {
  const key = labels.map((label) => `${label.name}\u0000${label.value}`).join('\u0001');
  return createHash('sha256').update(key).digest().readUInt32BE(0) % shards;
}

interface Bodies {
  /** One list per lane: a remote-write shard's own requests, or the OTLP senders' one shared list. */
  lanes: Buffer[][];
  points: number;
  /** When a lane's request may go (remote-write: the WAL reader's pace); undefined: at once. */
  reader?: WalReader;
}

/**
 * Prometheus' WAL reader, which feeds the shards' queues in the order samples were appended and
 * blocks while any queue holds `capacity` samples (its queue_config.capacity): a shard's request
 * goes once the reader has read its last sample, so no shard runs further ahead of the slowest
 * than its queue allows. Samples leave a queue when its shard takes them into a request.
 */
class WalReader {
  /** Per lane, the stream position of each of its samples, in order. */
  readonly #positions: number[][];
  /** Per lane, the samples of each of its requests. */
  readonly #sizes: number[][];
  /** Per lane, how many of its samples its requests have taken. */
  readonly #taken: number[];
  #waiting: (() => void)[] = [];

  constructor(
    positions: number[][],
    sizes: number[][],
    private readonly capacity: number,
  ) {
    this.#positions = positions;
    this.#sizes = sizes;
    this.#taken = positions.map(() => 0);
  }

  /** How far the reader has read: up to the sample that would overfill some queue. */
  #read(): number {
    let read = Number.POSITIVE_INFINITY;
    for (const [lane, positions] of this.#positions.entries()) {
      const blocking = positions[(this.#taken[lane] as number) + this.capacity];
      if (blocking !== undefined && blocking - 1 < read) read = blocking - 1;
    }
    return read;
  }

  /** Waits until request `index` of `lane` is read, then takes its samples from the queue. */
  async take(lane: number, index: number): Promise<void> {
    const size = (this.#sizes[lane] as number[])[index] as number;
    const taken = this.#taken[lane] as number;
    const last = (this.#positions[lane] as number[])[taken + size - 1] as number;
    while (this.#read() < last) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.#taken[lane] = taken + size;
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const wake of waiting) wake();
  }
}

/** Remote-write: each series to a shard, each shard's samples in WriteRequests of `batchPoints`. */
function remoteWriteBodies(
  samples: Samples,
  options: Pick<AgentsOptions, 'batchPoints' | 'senders'>,
): Bodies & { splitSamples: number } {
  type Label = { name: string; value: string };
  const series = samples.sources.map((source) =>
    PROMETHEUS_METRICS.map((metric) => {
      // Sorted by name, as Prometheus sends them.
      const labels: Label[] = [
        { name: '__name__', value: metric },
        { name: 'instance', value: source.name },
        { name: 'job', value: 'node' },
        ...Object.entries(source.labels).map(([name, value]) => ({ name, value })),
      ].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      const shard = shardOf(labels, options.senders);
      return { labels, shard };
    }),
  );
  let splitSamples = 0;
  for (const [load, active] of series) if (load?.shard !== active?.shard) splitSamples++;
  splitSamples *= samples.steps;
  const lanes: Buffer[][] = Array.from({ length: options.senders }, () => []);
  const pending: { labels: Label[]; samples: { value: number; timestamp: number }[] }[][] = lanes.map(
    () => [],
  );
  const positions: number[][] = lanes.map(() => []);
  const sizes: number[][] = lanes.map(() => []);
  let position = 0;
  const flush = (shard: number) => {
    const timeseries = pending[shard] as (typeof pending)[number];
    if (timeseries.length === 0) return;
    const message = writeRequestType.encode({ timeseries }).finish();
    (lanes[shard] as Buffer[]).push(snappy.compressSync(Buffer.from(message)));
    (sizes[shard] as number[]).push(timeseries.length);
    pending[shard] = [];
  };
  const n = samples.sources.length;
  // Scrape by scrape, every series of the instant, as the WAL gives them to the queue manager.
  for (let row = 0; row < samples.timestampMs.length; row++) {
    const timestamp = samples.timestampMs[row] as number;
    const values = [samples.cpuLoad[row] as number, samples.concurrency[row] as number];
    (series[row % n] as { labels: Label[]; shard: number }[]).forEach(({ labels, shard }, metric) => {
      const queue = pending[shard] as (typeof pending)[number];
      // One TimeSeries per sample, its labels repeated: Prometheus' populateTimeSeries.
      queue.push({ labels, samples: [{ value: values[metric] as number, timestamp }] });
      (positions[shard] as number[]).push(position++);
      if (queue.length === options.batchPoints) flush(shard);
    });
  }
  for (let shard = 0; shard < options.senders; shard++) flush(shard);
  // Prometheus' default queue capacity is five requests' worth (10,000 for 2,000 per request).
  const reader = new WalReader(positions, sizes, QUEUE_REQUESTS * options.batchPoints);
  return { lanes, points: samples.timestampMs.length * 2, splitSamples, reader };
}

const NANOS_PER_MS = 1_000_000n;
/** AggregationTemporality CUMULATIVE: an up-down counter's. */
const CUMULATIVE = 2;

/** OTLP: requests of every source's points over `batchPoints / (2 x sources)` instants. */
function otlpBodies(samples: Samples, encoding: 'protobuf' | 'json', batchPoints: number): Bodies {
  const n = samples.sources.length;
  const stepsPerRequest = Math.max(1, Math.round(batchPoints / (2 * n)));
  const bodies: Buffer[] = [];
  const json = encoding === 'json';
  // OTLP's JSON mapping gives 64-bit integers as strings; protobufjs takes numbers (exact here:
  // whole milliseconds times 10^6 stay below 2^53 x 2^9).
  const int64 = (value: bigint) => (json ? value.toString() : Number(value));
  const text = (value: string) => ({ stringValue: value });
  for (let first = 0; first < samples.steps; first += stepsPerRequest) {
    const last = Math.min(samples.steps, first + stepsPerRequest);
    const resourceMetrics = samples.sources.map((source, s) => {
      const loads = [];
      const actives = [];
      for (let step = first; step < last; step++) {
        const row = step * n + s;
        const timeUnixNano = int64(BigInt(samples.timestampMs[row] as number) * NANOS_PER_MS);
        loads.push({ timeUnixNano, asDouble: samples.cpuLoad[row] as number });
        actives.push({ timeUnixNano, asInt: int64(BigInt(samples.concurrency[row] as number)) });
      }
      return {
        resource: {
          attributes: [
            { key: 'host.name', value: text(source.name) },
            ...Object.entries(source.labels).map(([key, value]) => ({ key, value: text(value) })),
          ],
        },
        scopeMetrics: [
          {
            metrics: [
              { name: 'system.cpu.load_average.1m', gauge: { dataPoints: loads } },
              {
                name: 'http.server.active_requests',
                sum: { dataPoints: actives, aggregationTemporality: CUMULATIVE, isMonotonic: false },
              },
            ],
          },
        ],
      };
    });
    bodies.push(
      json
        ? Buffer.from(JSON.stringify({ resourceMetrics }))
        : Buffer.from(exportRequestType.encode({ resourceMetrics }).finish()),
    );
  }
  return { lanes: [bodies], points: samples.timestampMs.length * 2 };
}

// ---------------------------------------------------------------------------------------------
// Sending

interface Endpoint {
  port: number;
  path: string;
  headers: Record<string, string>;
  /** Undefined when the answer says every point was stored; else what it says. */
  check: (status: number, body: Buffer) => string | undefined;
}

function post(agent: Agent, endpoint: Endpoint, body: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: endpoint.port,
        path: endpoint.path,
        method: 'POST',
        agent,
        headers: { ...endpoint.headers, 'content-length': body.length },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) }));
        response.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const RETRY_MS = 100;
const MAX_ATTEMPTS = 20;

/**
 * Sends every body: `workersPerLane` senders per lane, each taking the lane's next body once its
 * last is answered. Resolves with the retries and the refusals (4xx, or 5xx past MAX_ATTEMPTS).
 */
async function sendAll(
  endpoint: Endpoint,
  { lanes, reader }: Bodies,
  workersPerLane: number,
): Promise<{ retries: number; problems: string[] }> {
  const agent = new Agent({ keepAlive: true, maxSockets: lanes.length * workersPerLane, scheduling: 'fifo' });
  let retries = 0;
  const problems: string[] = [];
  const sender = async (lane: Buffer[], laneIndex: number, next: { index: number }) => {
    while (next.index < lane.length) {
      const index = next.index++;
      await reader?.take(laneIndex, index);
      const body = lane[index] as Buffer;
      for (let attempt = 1; ; attempt++) {
        let problem: string | undefined;
        let retry = false;
        try {
          const answer = await post(agent, endpoint, body);
          problem = endpoint.check(answer.status, answer.body);
          retry = answer.status >= 500 || answer.status === 429;
        } catch (error) {
          problem = (error as Error).message;
          retry = true;
        }
        if (problem === undefined) break;
        if (!retry || attempt === MAX_ATTEMPTS) {
          if (problems.length < 5) problems.push(problem);
          break;
        }
        retries++;
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      }
    }
  };
  try {
    await Promise.all(
      lanes.flatMap((lane, laneIndex) => {
        const next = { index: 0 };
        return Array.from({ length: workersPerLane }, () => sender(lane, laneIndex, next));
      }),
    );
  } finally {
    agent.destroy();
  }
  return { retries, problems };
}

function endpointOf(system: Exclude<AgentSystem, 'cli'>, port: number, token: string): Endpoint {
  const authorization = `Bearer ${token}`;
  const answerText = (status: number, body: Buffer) => `HTTP ${status}: ${body.toString().slice(0, 300)}`;
  if (system === 'remote-write')
    return {
      port,
      path: '/api/v1/write',
      headers: {
        authorization,
        'content-type': 'application/x-protobuf',
        'content-encoding': 'snappy',
        'x-prometheus-remote-write-version': '0.1.0',
        'user-agent': 'Prometheus/2.53.0',
      },
      check: (status, body) => (status === 204 ? undefined : answerText(status, body)),
    };
  const json = system === 'otlp-json';
  return {
    port,
    path: '/v1/metrics',
    headers: { authorization, 'content-type': json ? 'application/json' : 'application/x-protobuf' },
    check: (status, body) => {
      if (status !== 200) return answerText(status, body);
      if (body.length === 0) return undefined;
      const answer = (
        json ? JSON.parse(body.toString()) : exportResponseType.toObject(exportResponseType.decode(body))
      ) as { partialSuccess?: { rejectedDataPoints?: unknown } };
      const rejected = Number(answer.partialSuccess?.rejectedDataPoints ?? 0);
      return rejected === 0 ? undefined : answerText(status, body);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Checking what was stored

/** What two loads of the same samples must agree on (source labels aside: Prometheus adds `job`). */
async function fingerprint(url: string): Promise<string> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<Record<string, string>>(
      `SELECT count(*) AS samples, count(DISTINCT source_id) AS sources,
              count(cpu_load) AS cpu_loads, count(concurrency) AS concurrencies,
              sum(concurrency) AS concurrency, round(sum(cpu_load::numeric), 3) AS cpu_load,
              min("timestamp") AS first, max("timestamp") AS last,
              (SELECT sum(row_count) FROM metric_rollups_hour) AS hour_rollups,
              (SELECT md5(string_agg(name, ',' ORDER BY name)) FROM sources) AS source_names
         FROM metrics`,
    );
    return JSON.stringify(rows[0]);
  });
}

/** A few samples spread over the span, compared with the file's values; and one source's labels. */
async function spotCheck(url: string, samples: Samples, system: AgentSystem): Promise<string[]> {
  const problems: string[] = [];
  const n = samples.sources.length;
  const total = samples.timestampMs.length;
  const rows = [0, 1, Math.floor(total / 3) + 7, Math.floor(total / 2) + n - 1, total - 1];
  await withClient(url, async (client) => {
    for (const row of rows) {
      const source = samples.sources[row % n]?.name as string;
      const { rows: found } = await client.query<{ cpu_load: number; concurrency: number }>(
        `SELECT m.cpu_load, m.concurrency FROM metrics m JOIN sources s ON s.id = m.source_id
          WHERE s.name = $1 AND m."timestamp" = $2`,
        [source, new Date(samples.timestampMs[row] as number)],
      );
      const expected = { cpu_load: samples.cpuLoad[row] as number, concurrency: samples.concurrency[row] };
      const stored = found[0];
      if (
        found.length !== 1 ||
        !stored ||
        Math.abs(stored.cpu_load - expected.cpu_load) > 1e-6 ||
        stored.concurrency !== expected.concurrency
      )
        problems.push(
          `${source} at ${new Date(samples.timestampMs[row] as number).toISOString()}: stored ${JSON.stringify(found)}, sent ${JSON.stringify(expected)}`,
        );
    }
    const first = samples.sources[0];
    if (first) {
      const expected = system === 'remote-write' ? { job: 'node', ...first.labels } : first.labels;
      const { rows: found } = await client.query<{ labels: Record<string, string> }>(
        'SELECT labels FROM sources WHERE name = $1',
        [first.name],
      );
      const sorted = (labels: Record<string, string> | undefined) =>
        JSON.stringify(Object.entries(labels ?? {}).sort());
      if (sorted(found[0]?.labels) !== sorted(expected))
        problems.push(
          `${first.name}'s labels: ${JSON.stringify(found[0]?.labels)}, expected ${JSON.stringify(expected)}`,
        );
    }
  });
  return problems;
}

/** What a backend's statement is, in a few words. */
function statementKind(query: string): string {
  const text = query.replace(/\s+/g, ' ').trim();
  const known: [RegExp, string][] = [
    [
      /^WITH written AS \(INSERT INTO metrics .* ON CONFLICT .* DO UPDATE/,
      'INSERT ... ON CONFLICT DO UPDATE from staging (merge)',
    ],
    [/^WITH written AS \(INSERT INTO metrics/, 'INSERT ... ON CONFLICT from staging'],
    [/^WITH locked AS \(INSERT INTO metrics/, 'draw id bound (writers lock)'],
    [/^INSERT INTO metrics .* WHERE false/, 'writers lock'],
    [/^COPY metrics_staging/, 'COPY into staging'],
    [/^COPY metrics /, 'COPY into metrics'],
    [/^CREATE TEMP TABLE metrics_staging/, 'CREATE TEMP TABLE staging'],
    [/^TRUNCATE metrics_staging/, 'TRUNCATE staging'],
  ];
  for (const [pattern, kind] of known) if (pattern.test(text)) return kind;
  return text.length > 60 ? `${text.slice(0, 60)}...` : text;
}

/** Polls the database's other backends every `intervalMs` until stopped. */
function watchBackends(url: string, intervalMs = 10): { stop(): Promise<BackendActivity> } {
  const activity: BackendActivity = { polls: 0, counts: {} };
  const client = new pg.Client({ connectionString: url });
  let running = true;
  const loop = (async () => {
    await client.connect();
    while (running) {
      const { rows } = await client.query<{ state: string; wait: string | null; query: string }>(
        `SELECT state, wait_event_type || ':' || wait_event AS wait, query FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid()
            AND backend_type = 'client backend' AND state <> 'idle'`,
      );
      activity.polls++;
      if (rows.length === 0)
        activity.counts['(no transaction open)'] = (activity.counts['(no transaction open)'] ?? 0) + 1;
      for (const row of rows) {
        const what =
          row.state === 'active'
            ? `${statementKind(row.query)}${row.wait ? ` [waiting: ${row.wait}]` : ''}`
            : `${row.state} (after ${statementKind(row.query)})`;
        activity.counts[what] = (activity.counts[what] ?? 0) + 1;
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop.finally(() => client.end());
      return activity;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The runs

const DATABASES: Readonly<Record<AgentSystem, string>> = {
  cli: 'metrics_agents_cli',
  'remote-write': 'metrics_agents_remote_write',
  'otlp-protobuf': 'metrics_agents_otlp_protobuf',
  'otlp-json': 'metrics_agents_otlp_json',
};

async function runCli(url: string, file: string, rows: number, round: number): Promise<AgentRun> {
  const machineBefore = (await machineBusyMs()) ?? 0;
  const started = performance.now();
  const summary = await ingestWithScript(url, file);
  const wallSeconds = (performance.now() - started) / 1000;
  const machineCpuMs = ((await machineBusyMs()) ?? 0) - machineBefore;
  const problems: string[] = [];
  if (summary.inserted !== rows || summary.rejected !== 0)
    problems.push(`the CLI inserted ${summary.inserted}, rejected ${summary.rejected}; expected ${rows}`);
  return {
    system: 'cli',
    round,
    rows: await countRows(url),
    wallSeconds,
    cliSeconds: summary.elapsedMs / 1000,
    machineCpuMs,
    problems,
  };
}

async function runReceiver(
  system: Exclude<AgentSystem, 'cli'>,
  url: string,
  bodies: Bodies,
  options: AgentsOptions,
  round: number,
): Promise<AgentRun> {
  const port = await freePort();
  const token = randomBytes(24).toString('hex');
  const service = Service.start(
    `service (${system})`,
    options.service.command,
    options.service.args,
    productionEnv(process.env, url, port, { INGEST_TOKEN: token, ACCESS_LOG: 'false' }),
  );
  const monitor = new pg.Client({ connectionString: url });
  try {
    await service.waitReady(`http://127.0.0.1:${port}/readyz`);
    await monitor.connect();
    const pid = service.child.pid ?? 0;
    const before = {
      service: await cpuMsByPid([pid]),
      postgres: await cpuMsByPid(await backendPids(monitor)),
      machine: (await machineBusyMs()) ?? 0,
    };
    const watcher = options.sampleBackends ? watchBackends(url) : undefined;
    const started = performance.now();
    const sent = await sendAll(
      endpointOf(system, port, token),
      bodies,
      system === 'remote-write' ? 1 : options.senders,
    );
    const wallSeconds = (performance.now() - started) / 1000;
    const machine = ((await machineBusyMs()) ?? 0) - before.machine;
    const backends = await watcher?.stop();
    const used = async (group: 'service' | 'postgres', pids: number[]) => {
      let ms = 0;
      for (const [p, after] of await cpuMsByPid(pids)) ms += after - (before[group].get(p) ?? 0);
      return ms;
    };
    const serviceCpuMs = await used('service', [pid]);
    const postgresCpuMs = await used('postgres', await backendPids(monitor));
    return {
      system,
      round,
      rows: await countRows(url),
      wallSeconds,
      requests: bodies.lanes.reduce((total, lane) => total + lane.length, 0),
      bodyBytes: bodies.lanes.reduce((total, lane) => total + lane.reduce((t, b) => t + b.length, 0), 0),
      retries: sent.retries,
      serviceCpuMs,
      postgresCpuMs,
      machineCpuMs: machine,
      pid,
      ...(backends ? { backends } : {}),
      problems: sent.problems,
    };
  } finally {
    await monitor.end().catch(() => {});
    const code = await service.stop();
    if (code !== 0) options.log(`  the service exited with ${code}: ${service.output.join('').slice(-500)}`);
  }
}

export async function benchAgents(options: AgentsOptions): Promise<AgentsReport> {
  const { log } = options;
  const fleet = {
    rows: options.sources * options.steps,
    sources: options.sources,
    stepSeconds: options.stepSeconds,
  };
  const files = await fleetFiles(fleet, log);
  const samples = await readSamples(files.ndjson, options.sources, options.steps);
  const { log: _log, service, ...reported } = options;
  const report: AgentsReport = {
    options: reported,
    service: service.how,
    file: files.ndjson,
    samples: fleet.rows,
    splitSamples: 0,
    requests: {},
    runs: [],
  };
  const urls = Object.fromEntries(
    AGENT_SYSTEMS.map((system) => [system, databaseUrl(options.benchUrl, DATABASES[system])]),
  ) as Record<AgentSystem, string>;
  let reference: string | undefined;
  try {
    for (let round = 1; round <= options.rounds; round++) {
      for (const system of options.systems) {
        const url = urls[system];
        await prepareFleetDatabase(url, fleet);
        await checkpoint(url);
        let run: AgentRun;
        if (system === 'cli') {
          log(`  round ${round}: npm run ingest of ${int(fleet.rows)} samples (NDJSON)`);
          run = await runCli(url, files.ndjson, fleet.rows, round);
        } else {
          // Encoded anew each run (one system's bodies in memory at a time), before the clock starts.
          const bodies =
            system === 'remote-write'
              ? remoteWriteBodies(samples, options)
              : otlpBodies(samples, system === 'otlp-json' ? 'json' : 'protobuf', options.batchPoints);
          if ('splitSamples' in bodies) report.splitSamples = bodies.splitSamples as number;
          const requests = bodies.lanes.reduce((total, lane) => total + lane.length, 0);
          const bytes = bodies.lanes.reduce(
            (total, lane) => total + lane.reduce((t, b) => t + b.length, 0),
            0,
          );
          report.requests[system] = { count: requests, bytes, points: bodies.points };
          log(
            `  round ${round}: ${system}, ${int(requests)} requests (${(bytes / 2 ** 20).toFixed(1)} MiB), ${options.senders} senders`,
          );
          run = await runReceiver(system, url, bodies, options, round);
        }
        if (run.rows !== fleet.rows) run.problems.push(`stored ${run.rows} rows; expected ${fleet.rows}`);
        const stored = await fingerprint(url);
        reference ??= stored;
        if (stored !== reference)
          run.problems.push(
            `stored other rows than the first load:\n  first: ${reference}\n  this: ${stored}`,
          );
        run.problems.push(...(await spotCheck(url, samples, system)));
        log(
          `  round ${round}: ${system}: ${int(run.rows / (run.cliSeconds ?? run.wallSeconds))} rows/s${run.cliSeconds ? ` (CLI's own time; ${int(run.rows / run.wallSeconds)} start to exit)` : ''}${run.serviceCpuMs !== undefined ? `, service CPU ${(run.serviceCpuMs / run.wallSeconds / 10).toFixed(0)}%` : ''}${run.problems.length > 0 ? `; PROBLEMS: ${run.problems.join('; ')}` : ''}`,
        );
        report.runs.push(run);
        await dropDatabase(url);
      }
    }
    return report;
  } finally {
    for (const system of AGENT_SYSTEMS) await dropDatabase(urls[system]);
  }
}

// ---------------------------------------------------------------------------------------------
// The report

const perThousand = (ms: number | undefined, rows: number) =>
  ms === undefined ? '-' : ((ms * 1000) / rows).toFixed(1);

/** The target of the agents issue: each receiver at least half the CLI's rows/s. */
export const AGENT_TARGET = 0.5;

export function renderAgents(report: AgentsReport): string[] {
  const { options } = report;
  const runsOf = (system: AgentSystem) => report.runs.filter((run) => run.system === system);
  const rate = (run: AgentRun) => run.rows / run.wallSeconds;
  const cliRuns = runsOf('cli');
  const cliOwnRate = (round: number) => {
    const run = cliRuns.find((r) => r.round === round);
    return run?.cliSeconds ? run.rows / run.cliSeconds : Number.NaN;
  };
  const cliWallRate = (round: number) => {
    const run = cliRuns.find((r) => r.round === round);
    return run ? rate(run) : Number.NaN;
  };
  const lines = [
    '## Agents: the push receivers against the ingest CLI',
    '',
    `Samples: ${int(report.samples)} (${options.sources} sources x ${int(options.steps)} instants ${options.stepSeconds} s apart, each with a CPU load and a concurrency), \`scripts/generate-metrics.ts --sources ${options.sources} --rows ${report.samples} --step ${options.stepSeconds} --seed 3\` from 2026-03-01, \`${report.file.slice(ROOT.length)}\`. Each system loads them into a fresh database (migrated, the span's day partitions made first, every trigger on, CHECKPOINT before), ${options.rounds} round${options.rounds === 1 ? '' : 's'} of ${options.systems.join(', ')} in that order.`,
    '',
    `- CLI: \`npm run ingest -- --format ndjson --json <file>\` (tsx, as a user runs it); rows/s over its own reported load time (\`elapsedMs\`), and over start to exit.`,
    `- Receivers: the built service (${report.service}, NODE_ENV=production, LOG_LEVEL=warn, ACCESS_LOG=false, INGEST_TOKEN set, defaults otherwise: DATABASE_POOL_SIZE 10, INGEST_BATCH_SIZE 30,000), fresh for each run. Bodies encoded before the clock starts (the client's encoding is not measured); the clock runs from the first request to the last answer; ${options.senders} concurrent senders over kept-alive loopback connections.`,
    `- remote-write: ${options.senders} shards (each series to one by a hash of its labels; one request in flight per shard, sent once the WAL reader has read its samples, which it stops reading while any shard's queue holds ${int(QUEUE_REQUESTS * options.batchPoints)} samples), WriteRequests of ${int(options.batchPoints)} samples (Prometheus' max_samples_per_send), one TimeSeries per sample with its labels (\`__name__\`, \`instance\`, \`job\`, \`region\`, \`tier\`) as Prometheus writes them, snappy. ${int(report.splitSamples)} of the ${int(report.samples)} samples (${ratio(report.splitSamples / report.samples)}) have their two points in different shards: one request inserts the row, another merges into it.`,
    `- OTLP: a collector's batches: one ResourceMetrics per source (\`host.name\`, \`region\`, \`tier\`), a gauge \`system.cpu.load_average.1m\` (asDouble) and a cumulative non-monotonic sum \`http.server.active_requests\` (asInt), ${Math.max(1, Math.round(options.batchPoints / (2 * options.sources)))} instants of every source per request (${int(2 * options.sources * Math.max(1, Math.round(options.batchPoints / (2 * options.sources))))} points); ${options.senders} senders take the next request as each is answered.`,
    `- Checked after each load: exactly ${int(report.samples)} rows, the same count, sources, sums, first and last instant and hourly rollups as the first load; five samples equal to the file's; a source's labels (remote-write's with Prometheus' \`job\`).`,
    `- CPU: the service process and the database's backends over the measured window, and the whole machine's busy time (client, service and PostgreSQL on the same 2 cores), per 1,000 rows.`,
    '',
  ];
  for (const [system, requests] of Object.entries(report.requests)) {
    if (!requests) continue;
    lines.push(
      `- ${SYSTEM_NAMES[system as AgentSystem]}: ${int(requests.count)} requests, ${int(requests.points)} points, ${(requests.bytes / 2 ** 20).toFixed(1)} MiB of bodies (${int(requests.bytes / requests.count)} bytes a request)`,
    );
  }
  lines.push(
    '',
    `| system | rows/s (median) | rounds | vs CLI (its own time) | vs CLI (start to exit) | service CPU ms / 1k rows | PostgreSQL CPU ms / 1k rows | machine CPU ms / 1k rows | retries | problems |`,
    '| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  );
  const verdicts: string[] = [];
  for (const system of options.systems) {
    const runs = runsOf(system);
    if (runs.length === 0) continue;
    const problems = runs.flatMap((run) => run.problems.map((p) => `round ${run.round}: ${p}`));
    const medianOf = (f: (run: AgentRun) => number | undefined) => {
      const values = runs.map(f).filter((v): v is number => v !== undefined);
      return values.length > 0 ? median(values) : undefined;
    };
    if (system === 'cli') {
      lines.push(
        `| ${SYSTEM_NAMES.cli} | ${int(median(runs.map((run) => run.rows / (run.cliSeconds ?? run.wallSeconds))))} (own time); ${int(median(runs.map(rate)))} (start to exit) | ${runs.map((run) => `${int(run.rows / (run.cliSeconds ?? run.wallSeconds))} / ${int(rate(run))}`).join(', ')} | 100% | 100% | - | - | ${perThousand(
          medianOf((run) => run.machineCpuMs),
          report.samples,
        )} | - | ${problems.length > 0 ? `**${problems.join('; ')}**` : 'none'} |`,
      );
      continue;
    }
    const own = median(runs.map((run) => rate(run) / cliOwnRate(run.round)));
    const wall = median(runs.map((run) => rate(run) / cliWallRate(run.round)));
    lines.push(
      `| ${SYSTEM_NAMES[system]} | ${int(median(runs.map(rate)))} | ${runs.map((run) => int(rate(run))).join(', ')} | ${ratio(own)} | ${ratio(wall)} | ${perThousand(
        medianOf((run) => run.serviceCpuMs),
        report.samples,
      )} | ${perThousand(
        medianOf((run) => run.postgresCpuMs),
        report.samples,
      )} | ${perThousand(
        medianOf((run) => run.machineCpuMs),
        report.samples,
      )} | ${runs.map((run) => run.retries ?? 0).join(', ')} | ${problems.length > 0 ? `**${problems.join('; ')}**` : 'none'} |`,
    );
    if (cliRuns.length > 0)
      verdicts.push(
        `- ${SYSTEM_NAMES[system]} >= ${ratio(AGENT_TARGET)} of the CLI's rows/s: **${own >= AGENT_TARGET ? 'met' : 'not met'}** (${ratio(own)} of the rows/s the CLI reports, ${ratio(wall)} of its start-to-exit rate; ratios are per round, then the median)`,
      );
  }
  lines.push('', ...verdicts);
  for (const run of report.runs) {
    if (!run.backends) continue;
    const { polls, counts } = run.backends;
    lines.push(
      '',
      `What the database's backends were doing during ${SYSTEM_NAMES[run.system]}, round ${run.round} (pg_stat_activity polled every 10 ms, ${int(polls)} polls; a poll can find several backends, so shares may add up past 100%):`,
      '',
      '| activity | share of polls |',
      '| --- | ---: |',
      ...Object.entries(counts)
        .sort((a, b) => b[1] - a[1])
        .filter(([, n]) => n / polls >= 0.005)
        .map(([what, n]) => `| ${what.replaceAll('|', '\\|')} | ${ratio(n / polls)} |`),
    );
  }
  const pids = report.runs.filter((run) => run.pid !== undefined);
  if (options.sampleBackends && pids.length > 0)
    lines.push(
      '',
      `Service pids (their \`--cpu-prof\` profiles are named by them): ${pids.map((run) => `${run.system} round ${run.round}: ${run.pid}`).join(', ')}.`,
    );
  return lines;
}
