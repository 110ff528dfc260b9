// Comparing an answer of this service with Prometheus' own, as the conformance tests do: same
// label sets and timestamps, values equal within a relative tolerance, 1e-9 unless told (NaN equal
// to NaN).
import type { QueryData } from '../../src/promql/index.js';
import type { PrometheusResponse } from './promql-prometheus.js';

/** The API's wrapping of parse errors, which the evaluator leaves to the HTTP layer. */
export const PARAMETER_PREFIX = 'invalid parameter "query": ';

export type Outcome =
  | { status: 'success'; data: QueryData }
  | { status: 'error'; errorType: string; error: string };

export function theirs(response: PrometheusResponse): Outcome {
  if (response.status === 'success') return { status: 'success', data: response.data as QueryData };
  return {
    status: 'error',
    errorType: response.errorType,
    error: response.error.replace(PARAMETER_PREFIX, ''),
  };
}

function sameValue(a: string, b: string, tolerance: number): boolean {
  if (a === b) return true;
  const x = Number(a);
  const y = Number(b);
  if (!Number.isFinite(x) || !Number.isFinite(y)) return false;
  return Math.abs(x - y) <= tolerance * Math.max(Math.abs(x), Math.abs(y));
}

const metricKey = (metric: object): string => JSON.stringify(Object.entries(metric).sort());

/** Differences between two outcomes, as readable lines (empty when they agree). */
export function differences(
  actual: Outcome,
  expected: Outcome,
  ordered: boolean,
  tolerance = 1e-9,
): string[] {
  if (actual.status !== expected.status || actual.status === 'error' || expected.status === 'error') {
    return JSON.stringify(actual) === JSON.stringify(expected)
      ? []
      : [`ours ${JSON.stringify(actual).slice(0, 300)}\ntheirs ${JSON.stringify(expected).slice(0, 300)}`];
  }
  const [a, b] = [actual.data, expected.data];
  if (a.resultType !== b.resultType) return [`result type ${a.resultType} vs ${b.resultType}`];
  const found: string[] = [];
  const comparePair = (where: string, x: [number, string], y: [number, string]): void => {
    if (x[0] !== y[0] || !sameValue(x[1], y[1], tolerance))
      found.push(`${where}: ${JSON.stringify(x)} vs ${JSON.stringify(y)}`);
  };
  if (a.resultType === 'scalar' || a.resultType === 'string') {
    comparePair('scalar', a.result, b.result as [number, string]);
    return found;
  }
  const left = a.result as Array<{
    metric: object;
    value?: [number, string];
    values?: Array<[number, string]>;
  }>;
  const right = b.result as typeof left;
  const sorted = (list: typeof left) =>
    ordered || a.resultType === 'matrix'
      ? list
      : [...list].sort((x, y) => metricKey(x.metric).localeCompare(metricKey(y.metric)));
  const [mine, prometheusOwn] = [sorted(left), sorted(right)];
  if (mine.map((s) => metricKey(s.metric)).join() !== prometheusOwn.map((s) => metricKey(s.metric)).join()) {
    return [
      `series ${mine.map((s) => metricKey(s.metric))} vs ${prometheusOwn.map((s) => metricKey(s.metric))}`,
    ];
  }
  mine.forEach((series, i) => {
    const other = prometheusOwn[i] as (typeof left)[number];
    const where = metricKey(series.metric);
    if (series.value && other.value) comparePair(where, series.value, other.value);
    const [xs, ys] = [series.values ?? [], other.values ?? []];
    if (xs.length !== ys.length) found.push(`${where}: ${xs.length} points vs ${ys.length}`);
    else {
      xs.forEach((x, j) => {
        comparePair(where, x, ys[j] as [number, string]);
      });
    }
  });
  return found;
}
