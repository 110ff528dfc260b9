/** One window of samples in numbers: counts, bounds, extremes, means and percentiles. */
export interface MetricSummary {
  count: number;
  firstTimestamp: Date | null;
  lastTimestamp: Date | null;
  cpuLoad: {
    min: number | null;
    max: number | null;
    avg: number | null;
    p50: number | null;
    p95: number | null;
    p99: number | null;
  };
  concurrency: { min: number | null; max: number | null; avg: number | null; p95: number | null };
  /** Percentiles from raw rows (percentile_cont), or from the rollups' sketches. */
  percentilesExact: boolean;
  /** The sketch's bound on each percentile's relative error; 0 when exact. */
  percentileRelativeError: number;
}
