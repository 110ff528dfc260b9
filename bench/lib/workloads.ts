/**
 * The HTTP workloads of issue 5, each as a request to the service and, where one exists, the
 * equivalent request to the baseline server. Most repeat one request for the whole run; W4c asks
 * about a different window every time (`next`). A sample answer is checked in full before the
 * load, and during the load every answer is checked cheaply (status 2xx, the expected start, no
 * `"errors"`).
 */
import { DATASET, sampleTime } from './dataset.js';

export interface Target {
  method: 'GET' | 'POST';
  path: string;
  body?: string;
  headers?: Record<string, string>;
  /** Every correct answer starts with this. */
  prefix: string;
  /** When set, each request of the load is this one's answer instead of `path` and `body`. */
  next?: () => { path: string; body?: string };
}

export type System = 'service' | 'baseline';

export interface Workload {
  id: string;
  title: string;
  description: string;
  service: Target;
  baseline: Target | undefined;
  /** Also measure with a single connection: the cost of one request without queueing. */
  alsoSerial?: boolean;
  /** Rounds of baseline then service, when not the suite's three. */
  rounds?: number;
  /** Checks a sample answer (parsed JSON); returns what is wrong, or undefined. */
  check(answer: unknown, system: System): string | undefined;
}

/** What a Relay client asks of a page: a cursor on every edge. */
const NODE_FIELDS =
  'edges { cursor node { id timestamp cpuLoad concurrency } } pageInfo { hasNextPage endCursor }';
const SUMMARY_FIELDS =
  'count firstTimestamp lastTimestamp cpuLoad { min max avg p50 p95 p99 } concurrency { min max avg p95 }';
const SERIES_FIELDS = 'start count cpuLoad { min max avg } concurrency { min max avg }';

export function graphql(query: string, variables?: Record<string, unknown>): Target {
  return {
    method: 'POST',
    path: '/graphql',
    body: JSON.stringify(variables ? { query, variables } : { query }),
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    prefix: '{"data":',
  };
}

function get(path: string, prefix: string): Target {
  return { method: 'GET', path, prefix };
}

/** `target` with a new window from `windows` for each request; the first one is `target`'s own. */
export function varying<W>(
  target: Target,
  windows: () => W,
  request: (window: W) => { path: string; body?: string },
): Target {
  return { ...target, ...request(windows()), next: () => request(windows()) };
}

/** Follows `keys` into nested objects and arrays; undefined where the path does not exist. */
export function dig(value: unknown, ...keys: (string | number)[]): unknown {
  let current = value;
  for (const key of keys) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string | number, unknown>)[key];
  }
  return current;
}

function graphqlErrors(answer: unknown): string | undefined {
  const errors = dig(answer, 'errors');
  return errors === undefined ? undefined : `GraphQL errors: ${JSON.stringify(errors).slice(0, 300)}`;
}

/** A page answer: `length` rows, the first at sample `firstRow` (1-based). */
function checkPage(answer: unknown, system: System, length: number, firstRow: number): string | undefined {
  const problem = graphqlErrors(answer);
  if (problem) return problem;
  // The baseline answers in the service's JSON.
  const rows = dig(answer, 'data', 'metrics', 'edges');
  if (!Array.isArray(rows)) return `no edges in the ${system}'s answer`;
  if (rows.length !== length) return `${rows.length} rows, expected ${length}`;
  if (typeof dig(rows, 0, 'cursor') !== 'string') return 'no cursor on the first edge';
  const first = dig(rows, 0, 'node', 'timestamp');
  const expected = sampleTime(firstRow).toISOString();
  return first === expected ? undefined : `first row at ${String(first)}, expected ${expected}`;
}

function checkSummary(answer: unknown, system: System, count: number): string | undefined {
  const problem = graphqlErrors(answer);
  if (problem) return problem;
  const summary = system === 'service' ? dig(answer, 'data', 'metricsSummary') : answer;
  const found = dig(summary, 'count');
  if (found !== count) return `count ${String(found)}, expected ${count}`;
  return typeof dig(summary, 'cpuLoad', 'p99') === 'number' ? undefined : 'no cpuLoad.p99';
}

export const DAY_SECONDS = 86_400;

/**
 * One-day windows starting at a different second each time, over the first ten days: 864,000
 * starts visited in a fixed order (a stride coprime to their number), so runs are reproducible
 * and no window repeats within a run.
 */
function dayWindows(): () => { start: Date; end: Date } {
  const starts = 10 * DAY_SECONDS;
  let visited = 0;
  return () => {
    const offset = (visited++ * 7919) % starts;
    return { start: sampleTime(offset + 1), end: sampleTime(offset + DAY_SECONDS + 1) };
  };
}

/** Builds the workloads; `deepCursor` is the service's cursor of sample 900,000. */
export function workloads(deepCursor: string): Workload[] {
  const deepRow = 900_000;
  const day = { start: sampleTime(5 * DAY_SECONDS + 1), end: sampleTime(6 * DAY_SECONDS + 1) };
  const windowStart = sampleTime(5 * DAY_SECONDS + DAY_SECONDS / 2 + 1);
  const windowEnd = new Date(windowStart.getTime() + 1000 * 1000 * DATASET.stepSeconds);
  const iso = (date: Date) => date.toISOString();
  const ms = (date: Date) => String(date.getTime());

  return [
    {
      id: '1',
      title: 'first page of 100',
      description: '`metrics(first: 100)` with cursor, id, timestamp, cpuLoad, concurrency and pageInfo',
      service: graphql(`{ metrics(first: 100) { ${NODE_FIELDS} } }`),
      baseline: get('/metrics?limit=100', '{"data":'),
      check: (answer, system) => checkPage(answer, system, 100, 1),
    },
    {
      id: '2',
      title: 'deep page of 100',
      description: `the same page after the cursor of row ${deepRow.toLocaleString('en')}`,
      service: graphql(`{ metrics(first: 100, after: ${JSON.stringify(deepCursor)}) { ${NODE_FIELDS} } }`),
      baseline: get(`/metrics?limit=100&after=${ms(sampleTime(deepRow))}`, '{"data":'),
      check: (answer, system) => checkPage(answer, system, 100, deepRow + 1),
    },
    {
      id: '3',
      title: '1,000-row window',
      description: `\`metrics(start, end, first: 1000)\` over ${iso(windowStart)} + 1000 s`,
      service: graphql(
        `{ metrics(start: "${iso(windowStart)}", end: "${iso(windowEnd)}", first: 1000) { ${NODE_FIELDS} } }`,
      ),
      baseline: get(`/metrics?limit=1000&start=${ms(windowStart)}&end=${ms(windowEnd)}`, '{"data":'),
      check: (answer, system) => checkPage(answer, system, 1000, 5 * DAY_SECONDS + DAY_SECONDS / 2 + 1),
    },
    {
      id: '4a',
      title: 'summary, one day',
      description: `\`metricsSummary\` over ${iso(day.start).slice(0, 10)} (86,400 rows), every field`,
      service: graphql(
        `{ metricsSummary(start: "${iso(day.start)}", end: "${iso(day.end)}") { ${SUMMARY_FIELDS} } }`,
      ),
      baseline: get(`/summary?start=${ms(day.start)}&end=${ms(day.end)}`, '{"count":'),
      alsoSerial: true,
      check: (answer, system) => checkSummary(answer, system, DAY_SECONDS),
    },
    {
      id: '4c',
      title: 'summary, one day, new window each time',
      description:
        '`metricsSummary` over 86,400 rows starting at a different second each request: never an answer the service remembers',
      service: varying(graphql(''), dayWindows(), ({ start, end }) => ({
        path: '/graphql',
        body: JSON.stringify({
          query: `{ metricsSummary(start: "${iso(start)}", end: "${iso(end)}") { ${SUMMARY_FIELDS} } }`,
        }),
      })),
      baseline: varying(get('', '{"count":'), dayWindows(), ({ start, end }) => ({
        path: `/summary?start=${ms(start)}&end=${ms(end)}`,
      })),
      alsoSerial: true,
      check: (answer, system) => checkSummary(answer, system, DAY_SECONDS),
    },
    {
      id: '4b',
      title: 'summary, whole table',
      description: '`metricsSummary` with no bounds (1,000,000 rows), every field',
      service: graphql(`{ metricsSummary { ${SUMMARY_FIELDS} } }`),
      baseline: get('/summary', '{"count":'),
      alsoSerial: true,
      // The baseline scans the whole table per request (seconds each, 32 at a time, and as long
      // again to drain): one round, or this workload alone would take 90 s of the run.
      rounds: 1,
      check: (answer, system) => checkSummary(answer, system, DATASET.rows),
    },
    {
      id: '5',
      title: 'series, one day by minute',
      description: '`metricSeries(bucket: "1m")` over the same day: 1,440 buckets',
      service: graphql(
        `{ metricSeries(start: "${iso(day.start)}", end: "${iso(day.end)}", bucket: "1m") { ${SERIES_FIELDS} } }`,
      ),
      baseline: get(`/series?start=${ms(day.start)}&end=${ms(day.end)}&bucket=60`, '[{"start":'),
      check: (answer, system) => {
        const problem = graphqlErrors(answer);
        if (problem) return problem;
        const buckets = system === 'service' ? dig(answer, 'data', 'metricSeries') : answer;
        if (!Array.isArray(buckets) || buckets.length !== 1440) return 'expected 1440 buckets';
        return dig(buckets, 0, 'count') === 60 ? undefined : 'expected 60 samples a bucket';
      },
    },
    {
      id: '6',
      title: 'REST first page of 1000',
      description: '`GET /api/metrics` (default limit 1000)',
      service: get('/api/metrics', '[{"id":'),
      baseline: get('/legacy?limit=1000', '[{"id":'),
      check: (answer) => {
        if (!Array.isArray(answer) || answer.length !== 1000) return 'expected an array of 1000';
        return dig(answer, 0, 'timestamp') === DATASET.startSeconds
          ? undefined
          : 'first row is not the first sample';
      },
    },
    {
      id: '7',
      title: 'healthz',
      description: '`GET /healthz`: liveness, no database',
      service: get('/healthz', '"Ping!"'),
      baseline: get('/healthz', '"Ping!"'),
      check: (answer) => (answer === 'Ping!' ? undefined : `answered ${JSON.stringify(answer)}`),
    },
  ];
}

/** W1 on the benchmark's earlier baseline (BASELINE_MODE=old), in its own smaller JSON. */
export const OLD_BASELINE_FIRST_PAGE: Target = get('/metrics?limit=100', '{"rows":');

/** The query that finds the deep cursor through the API itself (cursors are opaque). */
export function deepCursorQuery(row: number): Target {
  return graphql(
    `{ metrics(start: "${sampleTime(row).toISOString()}", first: 1) { pageInfo { endCursor } } }`,
  );
}
