// The evaluator against a real Prometheus 2.42 over the same data: every query of the subset, as
// instant queries at awkward times and as range queries with several steps and windows.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_LOOKBACK_DELTA_MS,
  evaluateInstant,
  evaluateRange,
  MINUTE_MS,
  PromQLError,
  parseQuery,
  type QueryData,
  type SeriesReader,
} from '../src/promql/index.js';
import { differences, type Outcome, theirs } from './support/promql-compare.js';
import {
  CONFORMANCE_ERRORS,
  CONFORMANCE_QUERIES,
  INSTANT_TIMES_MS,
  RANGE_WINDOWS,
} from './support/promql-conformance-queries.js';
import { DATASET, DATASET_START_MS, datasetAsOpenMetrics } from './support/promql-dataset.js';
import { memoryReader, minuteReader } from './support/promql-memory-reader.js';
import { type RunningPrometheus, startPrometheus } from './support/promql-prometheus.js';

const LIMITS = { maxSamples: 50_000_000, lookbackDeltaMs: DEFAULT_LOOKBACK_DELTA_MS };

let prometheus: RunningPrometheus;

beforeAll(async () => {
  prometheus = await startPrometheus(datasetAsOpenMetrics());
});
afterAll(async () => {
  await prometheus?.stop();
});

async function ours(evaluate: () => Promise<QueryData>): Promise<Outcome> {
  try {
    return { status: 'success', data: await evaluate() };
  } catch (error) {
    if (!(error instanceof PromQLError)) throw error;
    return { status: 'error', errorType: error.type, error: error.message };
  }
}

const seconds = (ms: number): string => String(ms / 1000);

function askInstant(
  query: string,
  timeMs: number,
  reader: SeriesReader = memoryReader(DATASET),
): Promise<[Outcome, Outcome]> {
  return Promise.all([
    ours(() => evaluateInstant(parseQuery(query), timeMs, reader, LIMITS)),
    prometheus.get('/api/v1/query', { query, time: seconds(timeMs) }).then(theirs),
  ]);
}

function askRange(
  query: string,
  startMs: number,
  endMs: number,
  stepMs: number,
  reader: SeriesReader = memoryReader(DATASET),
): Promise<[Outcome, Outcome]> {
  return Promise.all([
    ours(() => evaluateRange(parseQuery(query), startMs, endMs, stepMs, reader, LIMITS)),
    prometheus
      .get('/api/v1/query_range', {
        query,
        start: seconds(startMs),
        end: seconds(endMs),
        step: seconds(stepMs),
      })
      .then(theirs),
  ]);
}

describe('the evaluator answers as Prometheus 2.42', () => {
  it.each(CONFORMANCE_QUERIES)('$query', async ({ query, ordered = false, instantOnly = false }) => {
    const asked = [
      ...INSTANT_TIMES_MS.map((timeMs) => ({
        label: `instant at ${timeMs}`,
        ask: () => askInstant(query, timeMs),
      })),
      ...(instantOnly ? [] : RANGE_WINDOWS).map(({ startMs, endMs, stepMs }) => ({
        label: `range ${startMs}..${endMs} step ${stepMs}`,
        ask: () => askRange(query, startMs, endMs, stepMs),
      })),
    ];
    const outcomes = await Promise.all(
      asked.map(async ({ label, ask }) => ({ label, outcome: await ask() })),
    );
    const mismatches = outcomes.flatMap(({ label, outcome: [mine, prometheusOwn] }) =>
      differences(mine, prometheusOwn, ordered).map((line) => `${label}: ${line}`),
    );
    expect(mismatches).toEqual([]);
    // A query that errs everywhere would prove nothing here; those belong to the list below.
    expect(outcomes.some(({ outcome: [mine] }) => mine.status === 'success')).toBe(true);
  });

  it.each(CONFORMANCE_ERRORS)('refuses %j the same way', async (query) => {
    const [mine, prometheusOwn] = await askInstant(query, INSTANT_TIMES_MS[3] as number);
    expect(prometheusOwn.status).toBe('error');
    expect(mine).toEqual(prometheusOwn);
  });
});

/** The queries whose range functions read minute statistics where instants and ranges are whole minutes. */
const MINUTE_QUERIES = CONFORMANCE_QUERIES.filter(({ query }) =>
  /\b(min|max|sum|count|avg)_over_time\(/.test(query),
);
/** Whole minutes over the data set (it starts between two), every one of them the end of ranges. */
const FIRST_MINUTE_MS = Math.ceil(DATASET_START_MS / MINUTE_MS) * MINUTE_MS;
const MINUTE_TIMES_MS = [0, 1, 30, 45, 52, 61, 75, 105, 119, 125].map(
  (minute) => FIRST_MINUTE_MS + minute * MINUTE_MS,
);
const MINUTE_WINDOWS = [
  { startMs: FIRST_MINUTE_MS, endMs: FIRST_MINUTE_MS + 120 * MINUTE_MS, stepMs: MINUTE_MS },
  {
    startMs: FIRST_MINUTE_MS - 10 * MINUTE_MS,
    endMs: FIRST_MINUTE_MS + 130 * MINUTE_MS,
    stepMs: 5 * MINUTE_MS,
  },
  { startMs: FIRST_MINUTE_MS, endMs: FIRST_MINUTE_MS + 120 * MINUTE_MS, stepMs: 60 * MINUTE_MS },
];

describe('range functions read from minute statistics answer as Prometheus 2.42', () => {
  it('covers queries of every function that minutes answer', () => {
    expect(MINUTE_QUERIES.length).toBeGreaterThanOrEqual(8);
  });

  it.each(MINUTE_QUERIES)('$query', async ({ query, ordered = false }) => {
    const mismatches: string[] = [];
    let rawReads = 0;
    for (const timeMs of MINUTE_TIMES_MS) {
      const reader = minuteReader(DATASET);
      const [mine, prometheusOwn] = await askInstant(query, timeMs, reader);
      mismatches.push(
        ...differences(mine, prometheusOwn, ordered).map((line) => `instant at ${timeMs}: ${line}`),
      );
      rawReads += reader.calls.length;
    }
    for (const { startMs, endMs, stepMs } of MINUTE_WINDOWS) {
      const reader = minuteReader(DATASET);
      const [mine, prometheusOwn] = await askRange(query, startMs, endMs, stepMs, reader);
      mismatches.push(
        ...differences(mine, prometheusOwn, ordered).map(
          (line) => `range ${startMs} step ${stepMs}: ${line}`,
        ),
      );
      rawReads += reader.calls.length;
    }
    expect(mismatches).toEqual([]);
    // Whole-minute ranges without other selectors read minutes only.
    if (/^\w+\(\w+(\{[^}]*\})?\[\d+[mh]\]\)$/.test(query)) expect(rawReads).toBe(0);
  });
});
