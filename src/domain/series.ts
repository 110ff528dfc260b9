/** One bucket of a series: the samples whose timestamps fall in [start, start + bucket). */
/** One value's statistics over the samples of a bucket that hold it. */
export interface ValueStatistics {
  count: number;
  min: number | null;
  max: number | null;
  avg: number | null;
}

export interface MetricBucket {
  start: Date;
  count: number;
  /** Over the bucket's samples that hold a CPU load (all null when none does). */
  cpuLoad: ValueStatistics;
  /** Over the bucket's samples that hold a concurrency (all null when none does). */
  concurrency: ValueStatistics;
}

/**
 * How many epoch-aligned buckets of `bucketSeconds` a window touches: the first bucket starts at or
 * before `start`, so a window shorter than a bucket can still span two.
 */
export function seriesBucketCount(start: Date, end: Date, bucketSeconds: number): number {
  const bucketMs = bucketSeconds * 1000;
  const firstBucketStart = Math.floor(start.getTime() / bucketMs) * bucketMs;
  return Math.ceil((end.getTime() - firstBucketStart) / bucketMs);
}

/**
 * The window of a series whose bounds may be left out: a missing `end` is `now` rounded up to a
 * bucket boundary (the current bucket included whole); a missing `start` is the earliest bucket
 * boundary that keeps the window within `maxBuckets` buckets of `end`. Empty buckets are omitted
 * from a series, so a window reaching back before the first sample answers as one starting there.
 */
export function seriesWindow(
  start: Date | undefined,
  end: Date | undefined,
  bucketSeconds: number,
  maxBuckets: number,
  now: Date,
): { start: Date; end: Date } {
  const bucketMs = bucketSeconds * 1000;
  const resolvedEnd = end ?? new Date(Math.ceil(now.getTime() / bucketMs) * bucketMs);
  const resolvedStart =
    start ?? new Date(Math.ceil((resolvedEnd.getTime() - maxBuckets * bucketMs) / bucketMs) * bucketMs);
  return { start: resolvedStart, end: resolvedEnd };
}
