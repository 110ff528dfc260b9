// Queries (and the times to ask them at) on which this service must answer exactly as Prometheus
// 2.42 does, over the data set of promql-dataset.ts. Shared by the evaluator's conformance test
// and, later, the HTTP API's.
import { DATASET_END_MS, DATASET_START_MS } from './promql-dataset.js';

export interface ConformanceQuery {
  query: string;
  /** Instant results whose order Prometheus defines (topk/bottomk), compared in order. */
  ordered?: boolean;
  /** Only as an instant query (a string result cannot be a range query's). */
  instantOnly?: boolean;
}

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const at = (minutes: number, seconds = 0): number => DATASET_START_MS + minutes * MINUTE + seconds * SECOND;

/** Evaluation times: on and between samples, at the edges of gaps and lookback, before and after the data. */
export const INSTANT_TIMES_MS: readonly number[] = [
  DATASET_START_MS,
  at(0, 7.5),
  at(3, 1.234),
  at(30), // batch-1's first sample
  at(44, 45), // web-2's last sample before its gap is exactly 5 min old
  at(44, 45.001), // ...and 1 ms older than that
  at(52), // web-2 back
  at(60, 59), // db-2 not yet started
  at(61), // db-2's first sample
  at(75, 3.5), // inside batch-1's and web-2's gaps
  at(104, 59.999), // db-1's gap, 4:59.999 after its last sample
  DATASET_END_MS,
  DATASET_END_MS + 5 * MINUTE, // the last samples exactly 5 min old
  DATASET_END_MS + 6 * MINUTE,
];

export interface RangeWindow {
  startMs: number;
  endMs: number;
  stepMs: number;
}

export const RANGE_WINDOWS: readonly RangeWindow[] = [
  { startMs: DATASET_START_MS, endMs: DATASET_END_MS, stepMs: 15 * SECOND },
  { startMs: DATASET_START_MS - 10 * MINUTE, endMs: DATASET_END_MS + 10 * MINUTE, stepMs: MINUTE },
  { startMs: at(20, 34.5), endMs: DATASET_END_MS, stepMs: 5 * MINUTE },
  { startMs: DATASET_START_MS, endMs: DATASET_END_MS, stepMs: 60 * MINUTE },
  { startMs: at(38), endMs: at(55), stepMs: 7 * SECOND },
];

export const CONFORMANCE_QUERIES: readonly ConformanceQuery[] = [
  // Scalars and their arithmetic.
  { query: '1+1' },
  { query: '2 * 3 - 4 / 8 + 7 % 3' },
  { query: '-7 % 3' },
  { query: '2 ^ 10' },
  { query: '-2 ^ 2' },
  { query: '2 ^ 3 ^ 2' },
  { query: '(1 + 2) * -(3)' },
  { query: '+5' },
  { query: '1 / 0' },
  { query: '-1 / 0' },
  { query: '0 / 0' },
  { query: '1 ^ NaN' },
  { query: '(-1) ^ Inf' },
  { query: '1e21 + 0' },
  { query: '1e-7' },
  { query: '0.1 + 0.2' },
  { query: '0x1f + 010' },
  { query: '-0' },
  { query: 'Inf - Inf' },
  { query: '1 > bool 2' },
  { query: '2 >= bool 2' },
  { query: '3 == bool 3' },
  { query: '1 != bool 1' },
  { query: '2 < bool 3' },
  { query: '3 <= bool 2' },
  { query: '"a string"', instantOnly: true },
  // Functions without a range.
  { query: 'time()' },
  { query: 'time() - 1700000000' },
  { query: 'vector(1)' },
  { query: 'vector(time())' },
  { query: 'scalar(cpu_load{source="web-2"})' },
  { query: 'scalar(cpu_load)' },
  // Instant selectors.
  { query: 'cpu_load' },
  { query: 'concurrency' },
  { query: '{__name__="cpu_load"}' },
  { query: '{__name__=~"cpu_load|concurrency"}' },
  { query: 'cpu_load{source="web-1"}' },
  { query: 'cpu_load{source!="web-1"}' },
  { query: 'cpu_load{source=~"web-.*"}' },
  { query: 'cpu_load{source!~"web-.*|db-1"}' },
  { query: 'cpu_load{source=~"web"}' },
  { query: 'cpu_load{source=~"(?i)WEB-1"}' },
  { query: 'cpu_load{tier=""}' },
  { query: 'concurrency{tier!="", region="us"}' },
  { query: 'cpu_load{source="nowhere"}' },
  { query: 'cpu_load offset 5m' },
  { query: 'concurrency offset -1m' },
  // Range functions.
  { query: 'avg_over_time(cpu_load[5m])' },
  { query: 'min_over_time(concurrency[10m])' },
  { query: 'max_over_time(cpu_load[1m])' },
  { query: 'sum_over_time(concurrency[5m])' },
  { query: 'count_over_time(cpu_load[5m])' },
  { query: 'count_over_time(cpu_load[15s])' },
  { query: 'quantile_over_time(0.9, cpu_load[10m])' },
  { query: 'quantile_over_time(0, concurrency[1h])' },
  { query: 'quantile_over_time(1.5, cpu_load[5m])' },
  { query: 'quantile_over_time(-1, cpu_load[5m])' },
  { query: 'last_over_time(cpu_load[5m])' },
  { query: 'last_over_time(concurrency[1h] offset 10m)' },
  { query: 'avg_over_time(cpu_load[1h30m])' },
  { query: 'sum_over_time({__name__="concurrency", tier="db"}[2m])' },
  // Aggregations.
  { query: 'sum(cpu_load)' },
  { query: 'sum by (region) (cpu_load)' },
  { query: 'sum(cpu_load) by (region, tier)' },
  { query: 'avg without (source) (cpu_load)' },
  { query: 'min(concurrency) by (tier)' },
  { query: 'max by (region) (cpu_load)' },
  { query: 'count(cpu_load)' },
  { query: 'count by (tier) (cpu_load)' },
  { query: 'count without (source, region) ({__name__=~"cpu_load|concurrency"})' },
  { query: 'sum by (__name__) ({__name__=~"cpu_load|concurrency"})' },
  { query: 'avg(avg_over_time(cpu_load[5m]))' },
  { query: 'quantile(0.5, cpu_load)' },
  { query: 'quantile by (tier) (0.25, concurrency)' },
  { query: 'quantile(1.2, cpu_load)' },
  { query: 'quantile(-0.1, cpu_load)' },
  { query: 'topk(2, cpu_load)', ordered: true },
  { query: 'bottomk(2, cpu_load)', ordered: true },
  { query: 'topk(3, concurrency)', ordered: true },
  { query: 'bottomk(3, concurrency)', ordered: true },
  { query: 'topk(1, concurrency) by (region)', ordered: true },
  { query: 'bottomk by (tier) (2, concurrency)', ordered: true },
  { query: 'topk(10, {__name__=~"cpu_load|concurrency"})', ordered: true },
  { query: 'topk(0, cpu_load)' },
  { query: 'topk(2.9, concurrency)', ordered: true },
  { query: 'topk(scalar(count(cpu_load)) - 2, cpu_load)', ordered: true },
  { query: 'sum(topk(2, cpu_load))' },
  { query: 'max(sum by (region) (concurrency))' },
  // Vector-scalar arithmetic and comparisons.
  { query: 'cpu_load * 100' },
  { query: '100 - cpu_load' },
  { query: 'cpu_load / 0' },
  { query: '2 ^ concurrency' },
  { query: 'concurrency % 7' },
  { query: 'cpu_load > 2' },
  { query: '2 < cpu_load' },
  { query: 'concurrency == 10' },
  { query: 'cpu_load >= bool 2' },
  { query: '1 > bool concurrency' },
  { query: '-cpu_load' },
  { query: '+cpu_load' },
  { query: 'sum(cpu_load) / scalar(count(cpu_load))' },
  { query: 'cpu_load * 2 + 1' },
  { query: '(cpu_load > 1) * 2' },
  { query: 'avg_over_time(cpu_load[5m]) * 100 > 150' },
  { query: 'count(cpu_load > 2)' },
  { query: 'vector(1) + 1' },
  { query: 'time() - cpu_load' },
];

/** Queries both must refuse the same way (errorType, and the message after Prometheus' parameter prefix). */
export const CONFORMANCE_ERRORS: readonly string[] = [
  '',
  '5m',
  'sum(1)',
  '1 > 2',
  '{}',
  '{source=~".*"}',
  'cpu_load{__name__="concurrency"}',
  'max_over_time(cpu_load)',
  'cpu_load offset 1m offset 2m',
  'topk(NaN, cpu_load)',
  'max_over_time({__name__=~"cpu_load|concurrency"}[5m])',
  '{__name__=~"cpu_load|concurrency"} * 2',
  '-{__name__=~"cpu_load|concurrency"}',
];
