/**
 * One window of samples in numbers: counts, bounds, extremes, means and percentiles. A sample may
 * hold one value only: each value's statistics are over the samples that hold it (its `count`),
 * and null when none does.
 */
export interface MetricSummary {
  count: number;
  firstTimestamp: Date | null;
  lastTimestamp: Date | null;
  cpuLoad: {
    count: number;
    min: number | null;
    max: number | null;
    avg: number | null;
    p50: number | null;
    p95: number | null;
    p99: number | null;
  };
  concurrency: {
    count: number;
    min: number | null;
    max: number | null;
    avg: number | null;
    p95: number | null;
  };
  /** Percentiles from raw rows (percentile_cont), or from the rollups' sketches. */
  percentilesExact: boolean;
  /** The sketch's bound on each percentile's relative error; 0 when exact. */
  percentileRelativeError: number;
}

/**
 * A statistic sources are ranked by, over a window: samples, the last sample's time, or a value's
 * mean, maximum or percentile.
 */
export type SourceStatistic =
  | 'samples'
  | 'lastSeen'
  | 'cpuLoadAvg'
  | 'cpuLoadMax'
  | 'cpuLoadP50'
  | 'cpuLoadP95'
  | 'cpuLoadP99'
  | 'concurrencyAvg'
  | 'concurrencyMax'
  | 'concurrencyP95';

/** The most sources one ranking of summaries answers; of series, fewer: each is a series. */
export const MAX_SOURCE_SUMMARIES = 1000;
export const MAX_SOURCE_SERIES = 100;

/**
 * The first `first` sources by `statistic` in `direction` (descending: the highest first). Sources
 * without the statistic (no sample holding the value) come after every source with it, and ties
 * go to the smaller source id.
 */
export interface SourceRanking {
  statistic: SourceStatistic;
  direction: 'asc' | 'desc';
  first: number;
}
