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
  concurrency: { count: number; min: number | null; max: number | null; avg: number | null; p95: number | null };
  /** Percentiles from raw rows (percentile_cont), or from the rollups' sketches. */
  percentilesExact: boolean;
  /** The sketch's bound on each percentile's relative error; 0 when exact. */
  percentileRelativeError: number;
}
