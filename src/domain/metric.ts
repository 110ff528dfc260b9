/**
 * A sample as stored: the row of `metrics`, with the id the database gave it and the id of its
 * source. A sample holds a CPU load, a concurrency or both.
 */
export interface StoredMetric {
  id: bigint;
  sourceId: number;
  timestamp: Date;
  cpuLoad: number | null;
  concurrency: number | null;
}

/**
 * Stored samples that some INSERT notifications announced: ids up to `lastId`, timestamps within
 * [from, to]. What the change feed reads after a notification (live/change-feed.ts).
 */
export interface AnnouncedRows {
  lastId: bigint;
  from: Date;
  to: Date;
}
