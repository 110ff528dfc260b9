/**
 * What a write does with a sample whose source and timestamp are already stored: keep the stored
 * one (`skip`), replace it (`update`), or fill in the values it lacks and replace those it has
 * (`merge`: agents send a source's CPU load and concurrency of one instant in separate requests).
 */
export type ConflictMode = 'skip' | 'update' | 'merge';

/** What a write did with its samples, counted. */
export interface BatchCounts {
  inserted: number;
  updated: number;
  duplicates: number;
}
