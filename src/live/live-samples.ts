import type { StoredMetric } from '../domain/metric.js';
import type { SourceFilter } from '../domain/source.js';
import type { Logger } from '../observability/logger.js';
import type { AddedRows } from '../store/change-reads.js';
import type { MetricStore } from '../store/metric-store.js';
import { type ChangeFeed, READ_BATCH } from './change-feed.js';
import type { ReadPermits } from './read-permits.js';
import { FAILED_READS_BEFORE_GIVING_UP, retryDelayMs, StreamFailure } from './stream-failure.js';

/** Rows a subscriber may fall behind the feed by before it reads from the database instead. */
const MAX_QUEUED = 10_000;

export interface AddedSubscription {
  /** Resume after this position (an earlier event's id): replay what was stored since, then go on live. */
  after?: bigint;
  /** Only samples taken at or after this instant. */
  start?: Date;
  /**
   * Only samples of the sources this filter selects: as the change feed reads them (a source that
   * appears later is in if it matches), and as a catch-up read finds them.
   */
  filter?: SourceFilter;
}

/**
 * Subscribers' streams of added samples, exactly once each, in commit order: sample by sample
 * (`subscribe`) or batch by batch (`subscribeBatches`). See AddedStream for how.
 */
export class LiveSamples {
  readonly #feed: ChangeFeed;
  readonly #reads: CatchUpReads;
  /** Streams open now, and samples delivered to them so far (the service's metrics). */
  readonly counts = { open: 0, delivered: 0 };

  /** `permits`: the catch-up reads that may run at once, for all streams together. */
  constructor(
    feed: ChangeFeed,
    store: CatchUpReads['store'],
    options: { permits: ReadPermits; logger: Logger },
  ) {
    this.#feed = feed;
    this.#reads = { store, ...options };
  }

  /**
   * Resolves once the feed listens (or rejects, the database being away) so the stream opens on
   * solid ground, and once a filter is known to be one the database can evaluate (else it rejects
   * with InvalidSourceFilterError, before any stream). Its nextBatch() takes every sample queued
   * from the next feed read at once.
   */
  async subscribe(
    subscription: AddedSubscription,
  ): Promise<AsyncIterableIterator<StoredMetric | StreamFailure> & RowBatches> {
    await this.#ready(subscription);
    return new SampleStream(this.#feed, this.#reads, this.counts, subscription, takeSample);
  }

  /** As subscribe, a batch of rows at a time: at most one per feed read (up to READ_BATCH rows), never empty. */
  async subscribeBatches(
    subscription: AddedSubscription,
  ): Promise<AsyncIterableIterator<readonly StoredMetric[] | StreamFailure>> {
    await this.#ready(subscription);
    return new AddedStream(this.#feed, this.#reads, this.counts, subscription, takeBatch);
  }

  async #ready({ filter }: AddedSubscription): Promise<void> {
    // A filter the feed sorts rows by must never fail its shared statement.
    if (filter) await this.#reads.store.checkEvaluable(filter);
    await this.#feed.ready();
  }
}

/** What a stream's catch-up reads go through: the store, the permits they share, where failures are logged. */
interface CatchUpReads {
  store: Pick<MetricStore, 'addedSince' | 'checkEvaluable'>;
  permits: ReadPermits;
  logger: Logger;
}

/**
 * A stream of rows that can also hand over several at once: one step per feed read instead of per
 * row. A stream that cannot go on hands over its StreamFailure alone, as its last batch.
 */
export interface RowBatches {
  /** The rows next() would give next, up to the end of their feed read (at least one), in one step. */
  nextBatch(): Promise<IteratorResult<readonly StoredMetric[] | readonly [StreamFailure]>>;
}

/** What a stream has queued: whole batches, the first of them taken up to `offset`. */
interface Queue {
  batches: (readonly StoredMetric[])[];
  offset: number;
  /** Whether a row is still wanted: not delivered yet, and in the time filter. */
  wanted: (row: StoredMetric) => boolean;
}

/** Takes the next item from the queue: what it delivers, how many rows, and how many left the queue. */
type Take<T> = (queue: Queue) => { item: T; rows: number; last: StoredMetric; consumed: number } | undefined;

const takeSample: Take<StoredMetric> = (queue) => {
  let consumed = 0;
  for (;;) {
    const batch = queue.batches[0];
    if (!batch) return undefined;
    const row = batch[queue.offset++];
    consumed++;
    if (queue.offset >= batch.length) {
      queue.batches.shift();
      queue.offset = 0;
    }
    if (row && queue.wanted(row)) return { item: row, rows: 1, last: row, consumed };
  }
};

const takeBatch: Take<readonly StoredMetric[]> = (queue) => {
  let consumed = 0;
  for (;;) {
    const whole = queue.batches.shift();
    if (!whole) return undefined;
    // What a sample stream's next() left of it.
    const batch = queue.offset > 0 ? whole.slice(queue.offset) : whole;
    queue.offset = 0;
    consumed += batch.length;
    const rows = batch.every(queue.wanted) ? batch : batch.filter(queue.wanted);
    const last = rows.at(-1);
    if (last) return { item: rows, rows: rows.length, last, consumed };
  }
};

/** A waiting call: how it takes from the queue, what it hands over for a failure, and its promise's resolve. */
interface Waiting {
  take: Take<unknown>;
  failed: (failure: StreamFailure) => unknown;
  resolve: (result: IteratorResult<unknown>) => void;
}

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };
const failureAlone = (failure: StreamFailure) => failure;
const failureAsBatch = (failure: StreamFailure): readonly [StreamFailure] => [failure];

/**
 * One subscriber's stream. It hears the feed from the moment it subscribes and delivers a row only
 * if its id is above the last one delivered. When it has to catch up (a resume with `after`, or a
 * client so slow that MAX_QUEUED rows piled up) it drops what it queued and reads from the
 * database after its last delivered id: every row the feed published before that read committed
 * before it, so the read sees it, and every row published after it is queued again. Nothing is
 * skipped, nothing repeats, and a slow client costs bounded memory. Catch-up reads wait for one of
 * the permits all streams share (LIVE_MAX_CATCHUP_READS); a read that fails is tried again after a
 * growing delay, and after FAILED_READS_BEFORE_GIVING_UP failures in a row the stream ends with a
 * StreamFailure (a coded error for the subscriber), as it does when the change feed gives up.
 *
 * With a source filter the feed hands it only its sources' rows, and a catch-up read selects them
 * in SQL: both evaluate the filter on the sources as they are when the rows are read, so a source
 * created after the subscription is in as soon as it matches, and the order and the once-only hold
 * as above (a row's id decides, whichever of the two found it).
 *
 * It is an async iterator of its own rather than a Repeater: with a sample per event and a
 * thousand subscribers, a Repeater's promises per push were the largest cost left per event
 * (bench/PROFILE.md, "Live delivery"). A queued item costs one resolved promise.
 *
 * A batch the feed published reaches every batch stream that takes all of it as the same array
 * (and every sample stream's nextBatch() that takes all of it), and every row is the same object
 * for every stream: what is made of an event for one subscriber (its GraphQL result, its bytes)
 * can be reused for the others.
 */
class AddedStream<T> implements AsyncIterableIterator<T | StreamFailure> {
  readonly #reads: CatchUpReads;
  readonly #counts: LiveSamples['counts'];
  readonly #only: AddedRows;
  readonly #take: Take<T>;
  readonly #queue: Queue;
  #queued = 0;
  #delivered: bigint;
  /** Read from the database before taking from the queue. */
  #catchUp: boolean;
  /** The queue holds a full read, and more may follow it in the database: read again once it is taken. */
  #more = false;
  #reading = false;
  #retry: NodeJS.Timeout | undefined;
  /** Catch-up reads failed in a row. */
  #failures = 0;
  /** Why the stream ended, until a next() call has handed it over. */
  #failure: StreamFailure | undefined;
  #stopped = false;
  /** next() and nextBatch() calls waiting for an item, in order, each with how it takes from the queue. */
  readonly #waiting: Waiting[] = [];
  readonly #unsubscribe: () => void;
  readonly #unregister: () => void;

  constructor(
    feed: ChangeFeed,
    reads: CatchUpReads,
    counts: LiveSamples['counts'],
    { after, start, filter }: AddedSubscription,
    take: Take<T>,
  ) {
    this.#reads = reads;
    this.#counts = counts;
    this.#only = { start, filter };
    this.#take = take;
    this.#delivered = after ?? feed.position;
    this.#catchUp = after !== undefined;
    this.#queue = {
      batches: [],
      offset: 0,
      wanted: (row) => row.id > this.#delivered && (!start || row.timestamp >= start),
    };
    counts.open++;
    this.#unsubscribe = feed.onAdded((rows) => this.#added(rows), filter);
    this.#unregister = feed.onClose((error) => {
      if (error === undefined) void this.return();
      else this.#fail(new StreamFailure(error));
    });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<T | StreamFailure>> {
    return this.nextTaken(this.#take, failureAlone);
  }

  /** The next item as `take` takes it from the queue; a failure as `failed` hands it over. */
  protected nextTaken<I, F>(
    take: Take<I>,
    failed: (failure: StreamFailure) => F,
  ): Promise<IteratorResult<I | F>> {
    if (this.#stopped) {
      const failure = this.#failure;
      this.#failure = undefined;
      return Promise.resolve(failure ? { done: false, value: failed(failure) } : DONE);
    }
    if (this.#waiting.length === 0) {
      const result = this.#nextQueued(take);
      if (result) return Promise.resolve(result);
    }
    return new Promise((resolve) => {
      this.#waiting.push({ take, failed, resolve } as Waiting);
      this.#serve();
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.#stop();
    return Promise.resolve(DONE);
  }

  /** Ends the stream: its failure goes to the call waiting first, or to the next one. */
  #fail(failure: StreamFailure): void {
    if (this.#stopped) return;
    const first = this.#waiting.shift();
    if (first) first.resolve({ done: false, value: first.failed(failure) });
    else this.#failure = failure;
    this.#stop();
  }

  #stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#counts.open--;
    clearTimeout(this.#retry);
    this.#unsubscribe();
    this.#unregister();
    this.#queue.batches = [];
    for (const { resolve } of this.#waiting.splice(0)) resolve(DONE);
  }

  #added(rows: readonly StoredMetric[]): void {
    // The next read gets these rows, and queueing them after a full read would skip those between.
    if (this.#more) return;
    if (this.#queued + rows.length > MAX_QUEUED) {
      this.#queue.batches = [];
      this.#queue.offset = 0;
      this.#queued = 0;
      this.#catchUp = true;
    } else {
      this.#queue.batches.push(rows);
      this.#queued += rows.length;
    }
    this.#serve();
  }

  /** The next queued item, unless the stream must first read from the database. */
  #nextQueued<I>(take: Take<I>): IteratorResult<I> | undefined {
    if (this.#catchUp || this.#reading) return undefined;
    const taken = take(this.#queue);
    if (!taken) {
      this.#queued = 0;
      if (this.#more) {
        this.#more = false;
        this.#catchUp = true;
      }
      return undefined;
    }
    this.#queued = Math.max(0, this.#queued - taken.consumed);
    this.#delivered = taken.last.id;
    this.#counts.delivered += taken.rows;
    return { done: false, value: taken.item };
  }

  /** Hands queued items to waiting next() and nextBatch() calls, reading from the database first when it must. */
  #serve(): void {
    for (let waiting = this.#waiting[0]; waiting; waiting = this.#waiting[0]) {
      const result = this.#nextQueued(waiting.take);
      if (!result) {
        if (this.#catchUp && !this.#reading) this.#read();
        return;
      }
      this.#waiting.shift();
      waiting.resolve(result);
    }
  }

  #read(): void {
    this.#catchUp = false;
    this.#reading = true;
    this.#queue.batches = [];
    this.#queue.offset = 0;
    this.#queued = 0;
    const { store, permits } = this.#reads;
    const after = this.#delivered;
    // A stream that ended while it waited for its turn reads nothing.
    permits
      .run(async () => (this.#stopped ? [] : store.addedSince(after, READ_BATCH, this.#only)))
      .then(
        (rows) => {
          this.#reading = false;
          if (this.#stopped) return;
          this.#failures = 0;
          if (rows.length === READ_BATCH) {
            // There may be more than one read's worth: what was queued meanwhile comes with the next read.
            this.#more = true;
            this.#queue.batches = [rows];
            this.#queued = rows.length;
          } else {
            this.#queue.batches.unshift(rows);
            this.#queued += rows.length;
          }
          this.#queue.offset = 0;
          this.#serve();
        },
        (error: unknown) => {
          if (this.#stopped) return;
          const failures = ++this.#failures;
          const { logger } = this.#reads;
          if (failures >= FAILED_READS_BEFORE_GIVING_UP) {
            logger.warn({ err: error, failures }, 'A live stream could not catch up on samples; ending it');
            this.#fail(new StreamFailure(error));
            return;
          }
          const retryInMs = retryDelayMs(failures);
          if (failures === 1) {
            logger.warn({ err: error, retryInMs }, 'A live stream could not catch up on samples; retrying');
          }
          // Still reading, as far as the queue is concerned: nothing queued may go out before the rows it missed.
          this.#catchUp = true;
          this.#retry = setTimeout(() => {
            this.#reading = false;
            this.#serve();
          }, retryInMs);
        },
      );
  }
}

/**
 * A stream of samples, which can also hand over the rest of a feed read in one step: with an event
 * per sample, what each step costs between here and the socket is then paid per write, not per
 * sample (graphql/plugins/shared-events.ts).
 */
class SampleStream extends AddedStream<StoredMetric> implements RowBatches {
  nextBatch(): Promise<IteratorResult<readonly StoredMetric[] | readonly [StreamFailure]>> {
    return this.nextTaken(takeBatch, failureAsBatch);
  }
}
