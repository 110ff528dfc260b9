import type { TimeRange } from './time.js';

export type SortDirection = 'asc' | 'desc';

/**
 * One page of samples by keyset: those in `range`, after `after` and before `before` in timestamp
 * order (cursors are exclusive), `size` of them, counted from the newest end when `fromEnd`.
 * `range.end` is exclusive unless `endInclusive`.
 */
export interface PageRequest {
  range: TimeRange;
  endInclusive?: boolean;
  after?: Date | undefined;
  before?: Date | undefined;
  direction: SortDirection;
  size: number;
  /** Take the page from the far end of the order (Relay's `last`): rows are still returned in `direction`. */
  fromEnd?: boolean;
}

export interface Page<T> {
  rows: T[];
  /** Whether more rows lie beyond the page, on the side it was taken from. */
  hasMore: boolean;
}
