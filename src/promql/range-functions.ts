// The *_over_time functions over the samples of one series in one window, as in Prometheus 2.42's
// promql/functions.go (plain summation; the incremental mean that survives overflow).
import type { RangeFunctionName } from './ast.js';
import { quantile } from './quantile.js';

type WindowFunction = (values: readonly number[], phi: number) => number;

function incrementalMean(values: readonly number[]): number {
  let mean = 0;
  let count = 0;
  for (const value of values) {
    count++;
    if (!Number.isFinite(mean) && !Number.isNaN(mean)) {
      // An infinite mean stays as it is unless an opposite infinity or NaN arrives.
      if (!Number.isFinite(value) && !Number.isNaN(value) && mean > 0 === value > 0) continue;
      if (Number.isFinite(value)) continue;
    }
    mean += value / count - mean / count;
  }
  return mean;
}

export const RANGE_FUNCTIONS: Record<RangeFunctionName, WindowFunction> = {
  min_over_time: (values) => {
    let min = values[0] as number;
    for (const value of values) if (value < min || Number.isNaN(min)) min = value;
    return min;
  },
  max_over_time: (values) => {
    let max = values[0] as number;
    for (const value of values) if (value > max || Number.isNaN(max)) max = value;
    return max;
  },
  avg_over_time: incrementalMean,
  sum_over_time: (values) => {
    let sum = 0;
    for (const value of values) sum += value;
    return sum;
  },
  count_over_time: (values) => values.length,
  quantile_over_time: (values, phi) => quantile(phi, values),
  last_over_time: (values) => values[values.length - 1] as number,
};

/** last_over_time acts like an offset, so unlike the others it keeps the metric name. */
export function keepsMetricName(func: RangeFunctionName): boolean {
  return func === 'last_over_time';
}
