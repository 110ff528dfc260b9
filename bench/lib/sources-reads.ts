/**
 * Reads of a fleet through the HTTP API, with wrk as every workload of the bench:
 *
 * - per source (P): a page, a deep page, summaries and a series of the fleet's measured source,
 *   against the same questions without a filter on the single-series reference, which holds the
 *   same rows in its one source (today's single-series figures); rounds interleaved, the ratio
 *   the median of the rounds' ratios;
 * - every source (A): the fleet's hourly series, its 10 hottest sources by CPU p95 (sourceSummaries),
 *   their series (sourceSeries) and its summary, one connection, every request computed.
 *
 * Both services run with AGGREGATE_CACHE_BYTES=0: each answer is computed, never remembered. The
 * per-source summaries and series ask about a new window each request, as the bench's W4c does:
 * requests running at once for the same question would otherwise share one computation.
 */
import pg from 'pg';
import { backendPids, waitForIdleDatabase } from './dataset.js';
import { type LoadOptions, type LoadResult, medianRun, runLoad, sample } from './load.js';
import { cpuMsByPid, freePort, productionEnv, Service } from './processes.js';
import {
  type Fleet,
  type FleetState,
  measuredSource,
  samplesPerSource,
  sourceName,
} from './sources-dataset.js';
import { dig, graphql, type Target, varying } from './workloads.js';

export type FleetSystem = 'fleet' | 'single';

export interface FleetWorkload {
  id: string;
  title: string;
  description: string;
  fleet: Target;
  /** The same question on the single-series reference, for the per-source workloads. */
  single?: Target;
  /** Connections of the runs: the bench's own, or 1 for the cost of one request. */
  connections: number;
  /** p50 under this many ms is the target, for the questions over every source. */
  targetMs?: number;
  check(answer: unknown, system: FleetSystem): string | undefined;
}

export interface FleetWorkloadResult {
  workload: FleetWorkload;
  fleet: LoadResult;
  single?: LoadResult;
  /** req/s of each round, in order. */
  rounds: { fleet: LoadResult[]; single: LoadResult[] };
  /** Problems found in the sample answers before the load. */
  problems: string[];
}

export interface FleetReads {
  fleet: Fleet;
  states: { fleet: FleetState; single: FleetState };
  results: FleetWorkloadResult[];
}

const NODE_FIELDS =
  'edges { cursor node { id timestamp cpuLoad concurrency } } pageInfo { hasNextPage endCursor }';
const SUMMARY_FIELDS =
  'count firstTimestamp lastTimestamp cpuLoad { min max avg p50 p95 p99 } concurrency { min max avg p95 }';
const BUCKET_FIELDS = 'start count cpuLoad { min max avg } concurrency { min max avg }';

const iso = (ms: number) => new Date(ms).toISOString();

function graphqlErrors(answer: unknown): string | undefined {
  const errors = dig(answer, 'errors');
  return errors === undefined ? undefined : `GraphQL errors: ${JSON.stringify(errors).slice(0, 300)}`;
}

const HOUR_MS = 3_600_000;

/**
 * Offsets of 0 to `count` - 1 seconds in a fixed order, 0 first (a prime stride: each once, unless
 * `count` is a multiple of it); just 0 when `count` is 0 or less.
 */
function shifts(count: number): () => number {
  let visited = 0;
  return () => (count > 0 ? (visited++ * 7919) % count : 0);
}

/** The workloads of `fleet`; `deepCursor`s are each system's cursor of the measured source's row at 90%. */
export function fleetWorkloads(
  fleet: Fleet,
  connections: number,
  deepCursor: Record<FleetSystem, string>,
  deepRow: number,
): FleetWorkload[] {
  const source = sourceName(measuredSource(fleet.sources), fleet.sources);
  const perSource = samplesPerSource(fleet);
  const perHour = 3600 / fleet.stepSeconds;
  const hours = fleet.seconds / 3600;
  const start = fleet.startMs;
  const end = start + fleet.seconds * 1000;
  const span = `start: "${iso(start)}", end: "${iso(end)}"`;
  /** A window of `ms` starting `offset` seconds after the first sample. */
  const window = (offset: number, ms: number) =>
    `start: "${iso(start + offset * 1000)}", end: "${iso(start + offset * 1000 + ms)}"`;
  const spanTitle = hours === 24 ? 'the day' : `${hours} h`;
  const buckets = `${hours} bucket${hours === 1 ? '' : 's'}`;
  // The fleet's question names the source; the reference's is today's, without one.
  const filters = { fleet: `source: ${JSON.stringify(source)}`, single: '' };
  const perSourceTargets = (args: (filter: string) => string) => ({
    fleet: graphql(args(filters.fleet)),
    single: graphql(args(filters.single)),
  });
  const arguments_ = (...parts: string[]) => parts.filter(Boolean).join(', ');
  // Summaries and series of a window that starts `offsets()` seconds after the first sample, a new
  // one each request (the same sequence for both systems): with the aggregate cache off, requests
  // running at once for the same question would share one computation. The source and the window
  // are variables, as the dashboard and GraphQL client libraries send them: the service parses and
  // validates the one document once, as it does for theirs.
  const perSourceWindows = (count: number, ms: number, field: (args: string) => string) => {
    const targetOf = (system: FleetSystem) => {
      const named = system === 'fleet';
      const declared = arguments_(named ? '$source: String!' : '', '$start: DateTime!, $end: DateTime!');
      const query = `query (${declared}) { ${field(arguments_(named ? 'source: $source' : '', 'start: $start, end: $end'))} }`;
      const variablesAt = (offset: number) => ({
        ...(named ? { source } : {}),
        start: iso(start + offset * 1000),
        end: iso(start + offset * 1000 + ms),
      });
      return varying(graphql(query, variablesAt(0)), shifts(count), (offset) => ({
        path: '/graphql',
        body: JSON.stringify({ query, variables: variablesAt(offset) }),
      }));
    };
    return { fleet: targetOf('fleet'), single: targetOf('single') };
  };
  const sampleTime = (row: number) => iso(start + (row - 1) * fleet.stepSeconds * 1000);

  const checkPage = (answer: unknown, firstRow: number) => {
    const problem = graphqlErrors(answer);
    if (problem) return problem;
    const rows = dig(answer, 'data', 'metrics', 'edges');
    if (!Array.isArray(rows) || rows.length !== Math.min(100, perSource - firstRow + 1))
      return `${Array.isArray(rows) ? rows.length : 'no'} rows`;
    const first = dig(rows, 0, 'node', 'timestamp');
    return first === sampleTime(firstRow)
      ? undefined
      : `first row at ${String(first)}, expected ${sampleTime(firstRow)}`;
  };
  const checkSummary = (answer: unknown, field: string, count: number) => {
    const problem = graphqlErrors(answer);
    if (problem) return problem;
    const found = dig(answer, 'data', field, 'count');
    return found === count ? undefined : `count ${String(found)}, expected ${count}`;
  };
  const checkSeries = (buckets: unknown, count: number) => {
    if (!Array.isArray(buckets) || buckets.length !== hours) return `expected ${hours} buckets`;
    return buckets.every((bucket) => dig(bucket, 'count') === count)
      ? undefined
      : `expected ${count} samples a bucket`;
  };
  const top = Math.min(10, fleet.sources);

  return [
    {
      id: 'P1',
      title: 'first page of 100 of one source',
      description: `\`metrics(source: "${source}", first: 100)\` with cursor, id, timestamp, cpuLoad, concurrency and pageInfo; the reference: \`metrics(first: 100)\``,
      ...perSourceTargets((filter) => `{ metrics(${arguments_(filter, 'first: 100')}) { ${NODE_FIELDS} } }`),
      connections,
      check: (answer) => checkPage(answer, 1),
    },
    {
      id: 'P2',
      title: 'deep page of 100 of one source',
      description: `the same after the cursor of the source's row ${deepRow.toLocaleString('en')} (of ${perSource.toLocaleString('en')})`,
      fleet: graphql(
        `{ metrics(source: ${JSON.stringify(source)}, first: 100, after: ${JSON.stringify(deepCursor.fleet)}) { ${NODE_FIELDS} } }`,
      ),
      single: graphql(
        `{ metrics(first: 100, after: ${JSON.stringify(deepCursor.single)}) { ${NODE_FIELDS} } }`,
      ),
      connections,
      check: (answer) => checkPage(answer, deepRow + 1),
    },
    {
      id: 'P3',
      title: 'summary of one source, 1 h',
      description: `\`metricsSummary(source, start, end)\` over an hour (${perHour} rows) within ${spanTitle}, starting at a different second each request, every field`,
      ...perSourceWindows(
        fleet.seconds - 3600,
        HOUR_MS,
        (args) => `metricsSummary(${args}) { ${SUMMARY_FIELDS} }`,
      ),
      connections,
      check: (answer) => checkSummary(answer, 'metricsSummary', perHour),
    },
    {
      id: 'P4',
      title: `summary of one source, ${spanTitle}`,
      description: `\`metricsSummary(source, start, end)\` over ${spanTitle} (${perSource.toLocaleString('en')} rows), then as long a window starting at a different second of its first hour each request, every field`,
      ...perSourceWindows(
        3600,
        fleet.seconds * 1000,
        (args) => `metricsSummary(${args}) { ${SUMMARY_FIELDS} }`,
      ),
      connections,
      check: (answer) => checkSummary(answer, 'metricsSummary', perSource),
    },
    {
      id: 'P5',
      title: `hourly series of one source, ${spanTitle}`,
      description: `\`metricSeries(source, bucket: "1h")\` over ${spanTitle} (${buckets}), then over the same windows as P4`,
      ...perSourceWindows(
        3600,
        fleet.seconds * 1000,
        (args) => `metricSeries(${args}, bucket: "1h") { ${BUCKET_FIELDS} }`,
      ),
      connections,
      check: (answer) => graphqlErrors(answer) ?? checkSeries(dig(answer, 'data', 'metricSeries'), perHour),
    },
    {
      id: 'A1',
      title: `hourly series of every source, ${spanTitle}`,
      description: `\`metricSeries(bucket: "1h")\` over ${spanTitle} without a filter: ${buckets} of ${(perHour * fleet.sources).toLocaleString('en')} samples`,
      fleet: graphql(`{ metricSeries(${span}, bucket: "1h") { ${BUCKET_FIELDS} } }`),
      connections: 1,
      targetMs: 50,
      check: (answer) =>
        graphqlErrors(answer) ?? checkSeries(dig(answer, 'data', 'metricSeries'), perHour * fleet.sources),
    },
    ...[
      { id: 'A2', title: spanTitle, within: span },
      // A window starting at no whole minute, hour or day, as "the last 24 hours" does.
      {
        id: 'A2u',
        title: `${spanTitle} from an unaligned instant`,
        within: window(2233, fleet.seconds * 1000),
      },
    ].map(({ id, title, within }) => ({
      id,
      title: `the ${top} hottest sources by CPU p95, ${title}`,
      description: `\`sourceSummaries(start, end, first: ${top})\` (orderBy CPU_LOAD_P95, DESC) with each source's name and labels and every summary field`,
      fleet: graphql(
        `{ sourceSummaries(${within}, first: ${top}, orderBy: CPU_LOAD_P95) { source { name labels { name value } } summary { ${SUMMARY_FIELDS} } } }`,
      ),
      connections: 1,
      targetMs: 100,
      check: (answer: unknown) => {
        const problem = graphqlErrors(answer);
        if (problem) return problem;
        const ranked = dig(answer, 'data', 'sourceSummaries');
        if (!Array.isArray(ranked) || ranked.length !== top) return `expected ${top} sources`;
        const p95s = ranked.map((entry) => dig(entry, 'summary', 'cpuLoad', 'p95') as number);
        return p95s.every((p95, i) => i === 0 || p95 <= (p95s[i - 1] as number))
          ? undefined
          : `not by CPU p95, descending: ${p95s.join(', ')}`;
      },
    })),
    {
      id: 'A3',
      title: `hourly series of the ${top} hottest sources, ${spanTitle}`,
      description: `\`sourceSeries(start, end, bucket: "1h", first: ${top})\` (orderBy CPU_LOAD_P95): a chart with a line per source`,
      fleet: graphql(
        `{ sourceSeries(${span}, bucket: "1h", first: ${top}) { source { name } buckets { ${BUCKET_FIELDS} } } }`,
      ),
      connections: 1,
      check: (answer) => {
        const problem = graphqlErrors(answer);
        if (problem) return problem;
        const lines = dig(answer, 'data', 'sourceSeries');
        if (!Array.isArray(lines) || lines.length !== top) return `expected ${top} series`;
        for (const line of lines) {
          const wrong = checkSeries(dig(line, 'buckets'), perHour);
          if (wrong) return wrong;
        }
        return undefined;
      },
    },
    {
      id: 'A4',
      title: `summary of every source, ${spanTitle}`,
      description: `\`metricsSummary(start, end)\` over ${spanTitle} without a filter (${(perSource * fleet.sources).toLocaleString('en')} rows), every field`,
      fleet: graphql(`{ metricsSummary(${span}) { ${SUMMARY_FIELDS} } }`),
      connections: 1,
      check: (answer) => checkSummary(answer, 'metricsSummary', perSource * fleet.sources),
    },
  ];
}

/**
 * Rounds of each workload, each the reference then the fleet; the median round is reported. Five:
 * on a 2-core machine one round's rate moves by 10-20%, and the median of three still landed a
 * question of equal cost on either side of the 90% target.
 */
export const READ_ROUNDS = 5;

function describe(result: LoadResult): string {
  return `${result.requestsPerSecond.toFixed(0)} req/s, p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms, ${result.errors} errors`;
}

interface Running {
  service: Service;
  url: string;
  monitor: pg.Client;
}

async function start(
  name: string,
  service: { command: string; args: string[] },
  databaseUrl: string,
): Promise<Running> {
  const port = await freePort();
  const running = Service.start(
    name,
    service.command,
    service.args,
    productionEnv(process.env, databaseUrl, port, { AGGREGATE_CACHE_BYTES: '0', ACCESS_LOG: 'false' }),
  );
  const monitor = new pg.Client({ connectionString: databaseUrl });
  const url = `http://127.0.0.1:${port}`;
  try {
    await monitor.connect();
    await running.waitReady(`${url}/readyz`);
  } catch (error) {
    await stop({ service: running, url, monitor });
    throw error;
  }
  return { service: running, url, monitor };
}

async function stop(running: Running | undefined): Promise<void> {
  if (!running) return;
  await running.monitor.end().catch(() => {});
  await running.service.stop();
}

/** The cursor of the measured source's row `row` (1-based), asked of the API itself (cursors are opaque). */
async function cursorOf(url: string, fleet: Fleet, row: number, filter: string): Promise<string> {
  const at = iso(fleet.startMs + (row - 1) * fleet.stepSeconds * 1000);
  const answer = await sample(
    url,
    graphql(`{ metrics(${filter}start: "${at}", first: 1) { pageInfo { endCursor } } }`),
  );
  const cursor = answer.ok ? dig(answer.answer, 'data', 'metrics', 'pageInfo', 'endCursor') : undefined;
  if (typeof cursor !== 'string') throw new Error(`no cursor of row ${row}: ${JSON.stringify(answer)}`);
  return cursor;
}

export async function benchFleetReads(options: {
  fleet: Fleet;
  states: { fleet: FleetState; single: FleetState };
  service: { command: string; args: string[] };
  load: LoadOptions;
  log: (line: string) => void;
  /** Only the workloads of these ids (all when absent). */
  questions?: readonly string[] | undefined;
}): Promise<FleetReads> {
  const { fleet, states, load, log } = options;
  const systems: Partial<Record<FleetSystem, Running>> = {};
  const results: FleetWorkloadResult[] = [];
  try {
    systems.fleet = await start('service (fleet)', options.service, states.fleet.url);
    systems.single = await start('service (single series)', options.service, states.single.url);
    const deepRow = Math.floor(samplesPerSource(fleet) * 0.9);
    const source = sourceName(measuredSource(fleet.sources), fleet.sources);
    const deepCursor = {
      fleet: await cursorOf(systems.fleet.url, fleet, deepRow, `source: ${JSON.stringify(source)}, `),
      single: await cursorOf(systems.single.url, fleet, deepRow, ''),
    };
    const measure = (running: Running, target: Target, connections: number) =>
      runLoad(
        running.url,
        target,
        { ...load, connections },
        {
          settle: async () => {
            // Both databases idle: a request left queued on one steals CPU from the other's run.
            for (const other of Object.values(systems)) if (other) await waitForIdleDatabase(other.monitor);
          },
          cpu: async () => ({
            server: await cpuMsByPid(running.service.child.pid ? [running.service.child.pid] : []),
            postgres: await cpuMsByPid(await backendPids(running.monitor)),
          }),
        },
      );
    const workloads = fleetWorkloads(fleet, load.connections, deepCursor, deepRow);
    const unknown = options.questions?.filter((id) => !workloads.some((workload) => workload.id === id));
    if (unknown?.length) throw new Error(`--sources-questions: no question ${unknown.join(', ')}`);
    for (const workload of workloads.filter(({ id }) => options.questions?.includes(id) ?? true)) {
      const problems: string[] = [];
      for (const system of ['single', 'fleet'] as const) {
        const target = workload[system];
        const running = systems[system];
        if (!target || !running) continue;
        const answer = await sample(running.url, target);
        const problem = answer.ok ? workload.check(answer.answer, system) : answer.problem;
        if (problem) {
          problems.push(`${system}: ${problem}`);
          log(`  problem: ${workload.id} ${system}: ${problem}`);
        }
      }
      const rounds: FleetWorkloadResult['rounds'] = { fleet: [], single: [] };
      for (let round = 1; round <= READ_ROUNDS; round++) {
        for (const system of ['single', 'fleet'] as const) {
          const target = workload[system];
          const running = systems[system];
          if (!target || !running) continue;
          const result = await measure(running, target, workload.connections);
          log(
            `${fleet.sources} sources ${workload.id} ${workload.title} (${workload.connections} conn.) round ${round}: ${system} ${describe(result)}`,
          );
          rounds[system].push(result);
        }
      }
      const single = medianRun(rounds.single);
      results.push({
        workload,
        fleet: medianRun(rounds.fleet) as LoadResult,
        ...(single ? { single } : {}),
        rounds,
        problems,
      });
    }
  } finally {
    await stop(systems.fleet);
    await stop(systems.single);
  }
  return { fleet, states, results };
}
