/** What a write does with a sample whose timestamp is already stored: keep the stored one, or replace it. */
export type ConflictMode = 'skip' | 'update';

/** What a write did with its samples, counted. */
export interface BatchCounts {
  inserted: number;
  updated: number;
  duplicates: number;
}
