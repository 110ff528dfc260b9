// Range functions answered from per-minute statistics (the store's minute rollups) instead of raw
// samples. A PromQL range is closed, [t - r, t]: when t and r are whole minutes it is the minutes
// starting in [t - r, t) plus the samples exactly at t, so min, max, sum, count and avg over it
// are exact from the minutes' statistics and those samples alone.
import type { RangeFunctionName } from './ast.js';

export const MINUTE_MS = 60_000;

const FROM_MINUTES = new Set<RangeFunctionName>([
  'min_over_time',
  'max_over_time',
  'sum_over_time',
  'count_over_time',
  'avg_over_time',
]);

/** One series' statistics by minute (minute starts ascending), and its samples at the evaluation instants. */
export interface MinuteSeries {
  labels: Record<string, string>;
  minutes: readonly number[];
  counts: readonly number[];
  sums: readonly number[];
  mins: readonly number[];
  maxs: readonly number[];
  /** Samples exactly at an evaluation instant (the closed end of its range), ascending. */
  exact: { timestamps: readonly number[]; values: readonly number[] };
  /**
   * Significant digits the stored values hold (7 for 32-bit floats), when fewer than a double's:
   * sums and means are given to it, not with the digits of the widening's error.
   */
  precision?: number;
}

/** Whether `func` over a `rangeMs` range at these instants (offset applied) can be read from minutes. */
export function answerableFromMinutes(
  func: RangeFunctionName,
  rangeMs: number,
  instants: readonly number[],
): boolean {
  return (
    FROM_MINUTES.has(func) &&
    rangeMs >= MINUTE_MS &&
    rangeMs % MINUTE_MS === 0 &&
    instants.every((instant) => instant % MINUTE_MS === 0)
  );
}

/** `func` at each instant over [instant - rangeMs, instant], undefined where the range is empty. */
export function minuteWindows(
  func: RangeFunctionName,
  series: MinuteSeries,
  instants: readonly number[],
  rangeMs: number,
): Array<number | undefined> {
  const { minutes, counts, sums, mins, maxs, exact } = series;
  let from = 0;
  let exactAt = 0;
  return instants.map((instant) => {
    while (from < minutes.length && (minutes[from] as number) < instant - rangeMs) from++;
    while (exactAt < exact.timestamps.length && (exact.timestamps[exactAt] as number) < instant) exactAt++;
    let count = 0;
    let sum = 0;
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (let at = from; at < minutes.length && (minutes[at] as number) < instant; at++) {
      count += counts[at] as number;
      sum += sums[at] as number;
      min = Math.min(min, mins[at] as number);
      max = Math.max(max, maxs[at] as number);
    }
    if (exact.timestamps[exactAt] === instant) {
      const value = exact.values[exactAt] as number;
      count++;
      sum += value;
      min = Math.min(min, value);
      max = Math.max(max, value);
    }
    if (count === 0) return undefined;
    const atPrecision = (value: number) =>
      series.precision === undefined ? value : Number(value.toPrecision(series.precision));
    switch (func) {
      case 'min_over_time':
        return min;
      case 'max_over_time':
        return max;
      case 'sum_over_time':
        return atPrecision(sum);
      case 'count_over_time':
        return count;
      default:
        return atPrecision(sum / count);
    }
  });
}
