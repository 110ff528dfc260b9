import type { MetricStore, StoredMetric } from '../store/metric-store.js';
import { type ChangeFeed, READ_BATCH } from './change-feed.js';

/** Rows a subscriber may fall behind the feed by before it reads from the database instead. */
const MAX_QUEUED = 10_000;
/** After a failed read, a subscriber tries again this much later. */
const RETRY_MS = 1000;

export interface AddedSubscription {
  /** Resume after this position (an earlier event's id): replay what was stored since, then go on live. */
  after?: bigint;
  /** Only samples taken at or after this instant. */
  start?: Date;
}

/**
 * Subscribers' streams of added samples, exactly once each, in commit order: sample by sample
 * (`subscribe`) or batch by batch (`subscribeBatches`). See AddedStream for how.
 */
export class LiveSamples {
  readonly #feed: ChangeFeed;
  readonly #store: Pick<MetricStore, 'addedSince'>;
  /** Streams open now, and samples delivered to them so far (the service's metrics). */
  readonly counts = { open: 0, delivered: 0 };

  constructor(feed: ChangeFeed, store: Pick<MetricStore, 'addedSince'>) {
    this.#feed = feed;
    this.#store = store;
  }

  /**
   * Resolves once the feed listens (or rejects, the database being away) so the stream opens on solid ground.
   * Its nextBatch() takes every sample queued from the next feed read at once.
   */
  async subscribe(
    subscription: AddedSubscription,
  ): Promise<AsyncIterableIterator<StoredMetric> & RowBatches> {
    await this.#feed.ready();
    return new SampleStream(this.#feed, this.#store, this.counts, subscription, takeSample);
  }

  /** As subscribe, a batch of rows at a time: at most one per feed read (up to READ_BATCH rows), never empty. */
  async subscribeBatches(
    subscription: AddedSubscription,
  ): Promise<AsyncIterableIterator<readonly StoredMetric[]>> {
    await this.#feed.ready();
    return new AddedStream(this.#feed, this.#store, this.counts, subscription, takeBatch);
  }
}

/** A stream of rows that can also hand over several at once: one step per feed read instead of per row. */
export interface RowBatches {
  /** The rows next() would give next, up to the end of their feed read (at least one), in one step. */
  nextBatch(): Promise<IteratorResult<readonly StoredMetric[]>>;
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

/** A waiting call: how it takes from the queue, and its promise's resolve for what it took. */
interface Waiting {
  take: Take<unknown>;
  resolve: (result: IteratorResult<unknown>) => void;
}

/**
 * One subscriber's stream. It hears the feed from the moment it subscribes and delivers a row only
 * if its id is above the last one delivered. When it has to catch up (a resume with `after`, or a
 * client so slow that MAX_QUEUED rows piled up) it drops what it queued and reads from the
 * database after its last delivered id: every row the feed published before that read committed
 * before it, so the read sees it, and every row published after it is queued again. Nothing is
 * skipped, nothing repeats, and a slow client costs bounded memory.
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
class AddedStream<T> implements AsyncIterableIterator<T> {
  readonly #store: Pick<MetricStore, 'addedSince'>;
  readonly #counts: LiveSamples['counts'];
  readonly #start: Date | undefined;
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
  #stopped = false;
  /** next() and nextBatch() calls waiting for an item, in order, each with how it takes from the queue. */
  readonly #waiting: Waiting[] = [];
  readonly #unsubscribe: () => void;
  readonly #unregister: () => void;

  constructor(
    feed: ChangeFeed,
    store: Pick<MetricStore, 'addedSince'>,
    counts: LiveSamples['counts'],
    { after, start }: AddedSubscription,
    take: Take<T>,
  ) {
    this.#store = store;
    this.#counts = counts;
    this.#start = start;
    this.#take = take;
    this.#delivered = after ?? feed.position;
    this.#catchUp = after !== undefined;
    this.#queue = {
      batches: [],
      offset: 0,
      wanted: (row) => row.id > this.#delivered && (!start || row.timestamp >= start),
    };
    counts.open++;
    this.#unsubscribe = feed.onAdded((rows) => this.#added(rows));
    this.#unregister = feed.onClose(() => void this.return());
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<T>> {
    return this.nextTaken(this.#take);
  }

  /** The next item as `take` takes it from the queue. */
  protected nextTaken<I>(take: Take<I>): Promise<IteratorResult<I>> {
    if (this.#stopped) return Promise.resolve({ done: true, value: undefined });
    if (this.#waiting.length === 0) {
      const result = this.#nextQueued(take);
      if (result) return Promise.resolve(result);
    }
    return new Promise((resolve) => {
      this.#waiting.push({ take, resolve } as Waiting);
      this.#serve();
    });
  }

  return(): Promise<IteratorResult<T>> {
    if (!this.#stopped) {
      this.#stopped = true;
      this.#counts.open--;
      clearTimeout(this.#retry);
      this.#unsubscribe();
      this.#unregister();
      this.#queue.batches = [];
      for (const { resolve } of this.#waiting.splice(0)) resolve({ done: true, value: undefined });
    }
    return Promise.resolve({ done: true, value: undefined });
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
    this.#store.addedSince(this.#delivered, READ_BATCH, this.#start).then(
      (rows) => {
        this.#reading = false;
        if (this.#stopped) return;
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
      () => {
        // Still reading, as far as the queue is concerned: nothing queued may go out before the rows it missed.
        this.#catchUp = true;
        this.#retry = setTimeout(() => {
          this.#reading = false;
          this.#serve();
        }, RETRY_MS);
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
  nextBatch(): Promise<IteratorResult<readonly StoredMetric[]>> {
    return this.nextTaken(takeBatch);
  }
}
