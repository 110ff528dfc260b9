/** A sample as stored: the row of `metrics`, with the id the database gave it. */
export interface StoredMetric {
  id: bigint;
  timestamp: Date;
  cpuLoad: number;
  concurrency: number;
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
