/**
 * How many epoch-aligned buckets of `bucketSeconds` a window touches: the first bucket starts at or
 * before `start`, so a window shorter than a bucket can still span two.
 */
export function seriesBucketCount(start: Date, end: Date, bucketSeconds: number): number {
  const bucketMs = bucketSeconds * 1000;
  const firstBucketStart = Math.floor(start.getTime() / bucketMs) * bucketMs;
  return Math.ceil((end.getTime() - firstBucketStart) / bucketMs);
}
