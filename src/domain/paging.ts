import type { LabelMatcher } from './source.js';
import type { TimeRange } from './time.js';

export type SortDirection = 'asc' | 'desc';

/**
 * Where a page starts or ends: a sample's timestamp and source. Samples are ordered by time, then
 * by source id, so a position names one place in that order whether or not its sample still exists.
 */
export interface PagePosition {
  timestamp: Date;
  sourceId: number;
}

/**
 * One page of samples by keyset: those in `range`, after `after` and before `before` in (timestamp,
 * source id) order (positions are exclusive), `size` of them, counted from the newest end when
 * `fromEnd`. `range.end` is exclusive unless `endInclusive`.
 */
export interface PageRequest {
  range: TimeRange;
  endInclusive?: boolean;
  after?: PagePosition | undefined;
  before?: PagePosition | undefined;
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

/** How a page of sources is ordered: by name, or most recently seen first (never-seen sources last). */
export type SourceOrder = 'name' | 'lastSeen';

/**
 * Where a page of sources starts or ends, in its order: a name (names are unique), or a last-seen
 * instant (null: never seen) with the source's id for the sources seen at the same instant.
 */
export type SourcePosition =
  | { order: 'name'; name: string }
  | { order: 'lastSeen'; lastSeen: Date | null; id: number };

/** Which sources a page of sources holds: those whose names start with `namePrefix` and whose labels match every matcher. */
export interface SourceSearch {
  namePrefix?: string | undefined;
  labels?: readonly LabelMatcher[] | undefined;
}

/**
 * One page of the sources a search finds, by keyset: after `after` and before `before` in `order`
 * (exclusive), `size` of them, counted from the far end when `fromEnd` (returned in order still).
 */
export interface SourcePageRequest extends SourceSearch {
  order: SourceOrder;
  after?: SourcePosition | undefined;
  before?: SourcePosition | undefined;
  size: number;
  fromEnd?: boolean;
}
