/**
 * How a live read that failed is tried again: after 250 ms, then twice as long each time up to
 * 8 s; a stream gives up after FAILED_READS_BEFORE_GIVING_UP failures in a row (about 8 s of
 * trying), rather than retrying for as long as the client stays connected.
 */
const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 8000;
export const FAILED_READS_BEFORE_GIVING_UP = 6;

/** The wait before the next try, after `failures` failures in a row (1 for the first). */
export function retryDelayMs(failures: number): number {
  return Math.min(FIRST_RETRY_MS * 2 ** Math.max(0, failures - 1), MAX_RETRY_MS);
}

/**
 * The last event of a stream that cannot go on (its reads kept failing): the subscription field's
 * resolver throws `error`, so the subscriber receives it as a coded GraphQL error
 * (DATABASE_UNAVAILABLE when the database is away) and then the stream completes. Ending the
 * response without an event would leave the client to guess; a client resumes with its cursor.
 */
export class StreamFailure {
  /** Already classified: every read of the store comes through its availability (a DatabaseUnavailableError when away). */
  constructor(readonly error: unknown) {}
}

/** A stream's event, or the error its StreamFailure carries, thrown for the subscriber. */
export function unlessFailed<T>(event: T | StreamFailure): T {
  if (event instanceof StreamFailure) throw event.error;
  return event;
}
