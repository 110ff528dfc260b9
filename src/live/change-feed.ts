// The LISTEN connection is the database room's own, not the store's (no statement on metrics runs on
// it): the feed, below presentation, takes it and the bound on waiting for it from there.
import { setTimeout as delay } from 'node:timers/promises';
import { within } from '../database/availability.js';
import type { ChangeListener } from '../database/change-listener.js';
import type { AnnouncedRows, StoredMetric } from '../domain/metric.js';
import type { SourceFilter } from '../domain/source.js';
import type { Logger } from '../observability/logger.js';
import { DatabaseUnavailableError } from '../store/errors.js';
import type { MetricStore } from '../store/metric-store.js';
import { sourceFilterKey } from './source-filter-key.js';
import { FAILED_READS_BEFORE_GIVING_UP, retryDelayMs } from './stream-failure.js';

/** What changed in `metrics`, as far as a notification tells: rows with timestamps in [from, to]. */
export interface ChangeNotice {
  /** RESYNC: the listener was away and cannot tell what it missed; anything may have changed. */
  op: 'INSERT' | 'UPDATE' | 'DELETE' | 'TRUNCATE' | 'RESYNC';
  from?: Date;
  to?: Date;
  /** The largest id among the statement's rows. */
  maxId?: bigint;
}

/** Rows to read: those notifications announced, or, after the listener was away, every row. */
type Unread = AnnouncedRows | 'everything';

/** The shares of a read when no subscriber filters by source. */
const NO_SHARES: ReadonlyMap<FilteredHandlers, readonly StoredMetric[]> = new Map();

/** Rows read per statement when catching up. */
export const READ_BATCH = 1000;

type AddedHandler = (rows: readonly StoredMetric[]) => void;
/** The handlers of one source filter (of every stream and question with that filter), and the filter. */
interface FilteredHandlers {
  filter: SourceFilter;
  handlers: Set<AddedHandler>;
}
/** The store as the feed reads it. */
type FeedReads = Pick<MetricStore, 'addedSince' | 'announcedSince' | 'lastId' | 'sourcesSelectedBy'>;
type ChangedHandler = (notice: ChangeNotice) => void;
/** Ends one subscriber's stream: with `error` when the feed could not read what it must deliver. */
type StreamEnd = (error?: unknown) => void;

/** `unread` widened by one INSERT notice; a notice that does not say which rows it wrote widens it to every row. */
function withNotice(unread: Unread | undefined, notice: ChangeNotice): Unread {
  const { maxId, from, to } = notice;
  if (unread === 'everything' || maxId === undefined || !from || !to) return 'everything';
  const widened = unread ? { ...unread } : { lastId: maxId, from, to };
  if (maxId > widened.lastId) widened.lastId = maxId;
  if (from < widened.from) widened.from = from;
  if (to > widened.to) widened.to = to;
  return widened;
}

function withUnread(unread: Unread | undefined, more: Unread): Unread {
  if (unread === 'everything' || more === 'everything') return 'everything';
  return withNotice(unread, { op: 'INSERT', maxId: more.lastId, from: more.from, to: more.to });
}

function parseNotice(payload: string): ChangeNotice | undefined {
  try {
    const parsed = JSON.parse(payload) as { op?: unknown; from?: unknown; to?: unknown; maxId?: unknown };
    if (
      parsed.op !== 'INSERT' &&
      parsed.op !== 'UPDATE' &&
      parsed.op !== 'DELETE' &&
      parsed.op !== 'TRUNCATE'
    ) {
      return undefined;
    }
    const date = (value: unknown) => (typeof value === 'string' ? new Date(value) : undefined);
    const maxId =
      typeof parsed.maxId === 'string' && /^\d+$/.test(parsed.maxId) ? BigInt(parsed.maxId) : undefined;
    return { op: parsed.op, from: date(parsed.from), to: date(parsed.to), maxId };
  } catch {
    return undefined;
  }
}

/**
 * The samples added to `metrics`, in commit order, for every subscriber of this replica, read
 * once per notification whatever the number of subscribers.
 *
 * Commit order is id order. Every writing statement first takes the lock on the one row of
 * `metrics_revision` (its BEFORE STATEMENT trigger updates it) and holds it until its transaction
 * ends, and ids are drawn from the sequence only after that, row by row. So a transaction draws
 * its ids only once every earlier writer has committed or rolled back: any row with a larger id
 * than a committed row commits later. Reading `id > position` therefore never skips a row that
 * commits afterwards. (Inserting an explicit id, bypassing the sequence, would break this; the
 * service never does.)
 *
 * Each INSERT notification carries its statement's largest id and the range of its timestamps.
 * Once the notification of a transaction has arrived, every row with an id up to its largest is
 * committed (or never will be), and notifications arrive in commit order: so the rows after the
 * position and up to the largest id announced are exactly the announced statements' rows, and the
 * feed reads only there, within the announced time range (on a table of hundreds of partitions,
 * the partitions written to instead of every one). A burst of notifications costs one read plus at
 * most one more. After a reconnect, when notifications may have been lost, it reads every row
 * after its position.
 *
 * Subscribers filtered by source get their share of the same read: one statement on `sources`
 * tells, for every distinct filter at once, which of the read's sources it selects now
 * (sourcesSelectedBy), so a source created after a subscription started, or whose labels came to
 * match, is in from its next row. That is one statement more per read while some subscriber
 * filters, whatever their number: no subscriber reads on its own, and the feed holds no list of
 * sources, so its memory does not grow with them.
 *
 * A read that fails is tried again after a growing delay (stream-failure.ts). After
 * FAILED_READS_BEFORE_GIVING_UP failures in a row, every stream open then is ended with the error
 * (each subscriber gets it coded, and resumes with its cursor once the database is back), and the
 * feed goes on trying, at the longest delay, for the streams to come: its position stays where
 * its last read left it, so nothing is skipped.
 */
export class ChangeFeed {
  readonly #store: FeedReads;
  readonly #listener: ChangeListener;
  readonly #logger: Logger;
  readonly #readyTimeoutMs: number;
  readonly #readIntervalMs: number;
  /** When the next read may start (performance.now()). */
  #nextReadAt = 0;
  readonly #added = new Set<AddedHandler>();
  /** Handlers of rows of some sources only, by sourceFilterKey. */
  readonly #filtered = new Map<string, FilteredHandlers>();
  readonly #changed = new Set<ChangedHandler>();
  readonly #streams = new Set<StreamEnd>();
  #position: bigint | undefined;
  #listenerStarted = false;
  /** Subscribers waiting for the first position. */
  readonly #waiting: (() => void)[] = [];
  #reading = false;
  #readAgain = false;
  /** What the notifications since the last read announced. */
  #unread: Unread | undefined;
  /** A failed read's retry, while it is scheduled. */
  #retry: NodeJS.Timeout | undefined;
  /** Reads (or, before the first position, locates) failed in a row. */
  #failures = 0;
  #closed = false;
  /** Counts for the service's metrics (see live-updates.ts). */
  readonly counts = { reads: 0, rows: 0, reconnects: 0 };

  /**
   * `readyTimeoutMs`: how long a first subscriber waits for the listener before the database counts
   * as away. `readIntervalMs`: the least time between the starts of two reads (LIVE_READ_INTERVAL_MS).
   * Many writers committing small transactions notify hundreds of times a second; a read per
   * notification was an event written to every subscriber's socket per commit, the service's largest
   * cost (a third of its CPU in socket writes with 100 subscribers of 200 writers). Spaced reads take
   * every commit of the interval at once; after a quiet interval, a notification is read at once.
   */
  constructor(
    store: FeedReads,
    listener: ChangeListener,
    options: { logger: Logger; readyTimeoutMs: number; readIntervalMs: number },
  ) {
    this.#store = store;
    this.#listener = listener;
    this.#logger = options.logger;
    this.#readyTimeoutMs = options.readyTimeoutMs;
    this.#readIntervalMs = options.readIntervalMs;
  }

  /**
   * Starts listening on first use (an instance nobody subscribes to holds no connection) and
   * resolves once the feed knows where "now" is: the largest id stored after `LISTEN` began. While
   * the listener cannot connect it rejects, after `readyTimeoutMs`, with DatabaseUnavailableError.
   */
  async ready(): Promise<void> {
    if (this.#position !== undefined) return;
    await within(
      this.#start(),
      this.#readyTimeoutMs,
      () => new DatabaseUnavailableError(new Error('not listening for changes')),
    );
  }

  #start(): Promise<void> {
    if (!this.#listenerStarted) {
      this.#listenerStarted = true;
      this.#listener.start({
        notification: (payload) => this.#notified(payload),
        listening: () => {
          if (this.#position === undefined) {
            this.#locate();
            return;
          }
          // Whatever was written meanwhile: rows are read from the position, the rest recomputed.
          // Listening again is the sign that the database is back: no retry's wait holds the read.
          clearTimeout(this.#retry);
          this.#retry = undefined;
          this.#failures = 0;
          this.counts.reconnects++;
          this.#unread = 'everything';
          this.#emitChanged({ op: 'RESYNC' });
          this.#read();
        },
      });
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** Where "now" is, read once the listener listens: nothing after it can go unheard. */
  #locate(): void {
    this.#store.lastId().then(
      (id) => {
        this.#failures = 0;
        this.#position = id;
        for (const resolve of this.#waiting.splice(0)) resolve();
        // Rows that arrived between LISTEN and that read were notified and are read now.
        this.#read();
      },
      (error: unknown) => {
        // Subscribers waiting for it time out on their own (ready()).
        const retryInMs = this.#failed(error, 'Could not read the latest sample id');
        if (!this.#closed) {
          this.#retry = setTimeout(() => {
            this.#retry = undefined;
            this.#locate();
          }, retryInMs);
        }
      },
    );
  }

  /** The id of the last row published; "from now on" starts after it. Call after ready(). */
  get position(): bigint {
    if (this.#position === undefined) throw new Error('The change feed is not ready');
    return this.#position;
  }

  get listening(): boolean {
    return this.#listener.listening;
  }

  /** Handlers registered now (subscribers' streams and live questions): 0 once every client has gone. */
  get handlers(): number {
    let filtered = 0;
    for (const { handlers } of this.#filtered.values()) filtered += handlers.size;
    return this.#added.size + filtered + this.#changed.size + this.#streams.size;
  }

  /**
   * `handler` gets every row added from now on, in commit order, in batches; with a `filter`, only
   * the rows of the sources it selects when they are read (a batch with none is not handed over).
   * Every handler of one filter gets the same arrays, and a batch whose rows all match is the
   * unfiltered handlers' own. Returns the unsubscribe.
   */
  onAdded(handler: AddedHandler, filter?: SourceFilter): () => void {
    const key = sourceFilterKey(filter);
    if (key === undefined || filter === undefined) {
      this.#added.add(handler);
      return () => this.#added.delete(handler);
    }
    let filtered = this.#filtered.get(key);
    if (!filtered) {
      filtered = { filter, handlers: new Set() };
      this.#filtered.set(key, filtered);
    }
    const { handlers } = filtered;
    handlers.add(handler);
    return () => {
      handlers.delete(handler);
      if (handlers.size === 0 && this.#filtered.get(key)?.handlers === handlers) this.#filtered.delete(key);
    };
  }

  /** `handler` hears of every change (inserts too); returns the unsubscribe. */
  onChanged(handler: ChangedHandler): () => void {
    this.#changed.add(handler);
    return () => this.#changed.delete(handler);
  }

  /**
   * `end` stops one subscriber's stream; the feed calls it when it closes (shutdown), and with the
   * error when it gives up reading. Returns the unregister.
   */
  onClose(end: StreamEnd): () => void {
    this.#streams.add(end);
    return () => this.#streams.delete(end);
  }

  #notified(payload: string): void {
    const notice = parseNotice(payload);
    if (!notice) {
      this.#logger.warn({ payload: payload.slice(0, 200) }, 'Ignored a malformed change notification');
      return;
    }
    if (notice.op === 'INSERT') {
      // A notification can arrive between a reconnect's LISTEN and the listener saying it listens
      // again: notifications before it may be lost, so the next read cannot trust the announced
      // ranges, and reads every row after the position.
      this.#unread = this.#listener.listening ? withNotice(this.#unread, notice) : 'everything';
      this.#read();
    }
    this.#emitChanged(notice);
  }

  #emitChanged(notice: ChangeNotice): void {
    for (const handler of this.#changed) handler(notice);
  }

  /**
   * Reads and publishes every row after the position; a call while reading schedules one more pass.
   * After a failed read, only the retry reads: notifications meanwhile do not cut the wait short.
   */
  #read(): void {
    if (this.#position === undefined || this.#closed || this.#retry !== undefined) return;
    if (this.#reading) {
      this.#readAgain = true;
      return;
    }
    this.#reading = true;
    void this.#drain().finally(() => {
      this.#reading = false;
    });
  }

  async #drain(): Promise<void> {
    do {
      const wait = this.#nextReadAt - performance.now();
      if (wait > 0) await delay(wait);
      if (this.#closed) return;
      this.#nextReadAt = performance.now() + this.#readIntervalMs;
      this.#readAgain = false;
      const unread = this.#unread;
      this.#unread = undefined;
      if (!unread) continue;
      let rows: StoredMetric[];
      let shares: ReadonlyMap<FilteredHandlers, readonly StoredMetric[]>;
      do {
        try {
          this.counts.reads++;
          rows =
            unread === 'everything'
              ? await this.#store.addedSince(this.position, READ_BATCH)
              : await this.#store.announcedSince(this.position, unread, READ_BATCH);
          // Without filtered subscribers, handed over as before: no statement, no wait between.
          shares = this.#filtered.size > 0 ? await this.#sharesOf(rows) : NO_SHARES;
        } catch (error) {
          const retryInMs = this.#failed(error, 'Could not read new samples');
          if (this.#failures >= FAILED_READS_BEFORE_GIVING_UP && this.#streams.size > 0) {
            this.#logger.warn(
              { err: error, failures: this.#failures, streams: this.#streams.size },
              'Could not read new samples; ending every live stream (subscribers resume with their cursors)',
            );
            for (const end of [...this.#streams]) end(error);
          }
          this.#unread = withUnread(this.#unread, unread);
          clearTimeout(this.#retry);
          this.#retry = setTimeout(() => {
            this.#retry = undefined;
            this.#read();
          }, retryInMs);
          return;
        }
        this.#failures = 0;
        const last = rows.at(-1);
        if (!last || this.#closed) break;
        this.#position = last.id;
        this.counts.rows += rows.length;
        for (const handler of this.#added) handler(rows);
        for (const [{ handlers }, share] of shares) for (const handler of handlers) handler(share);
      } while (rows.length === READ_BATCH);
      // Every row up to the largest id announced has been read: no later read needs to look there.
      if (unread !== 'everything' && !this.#closed && unread.lastId > this.position) {
        this.#position = unread.lastId;
      }
    } while (this.#readAgain && !this.#closed);
  }

  /**
   * Each source filter's share of a read, for the filters with any: the rows of the sources it
   * selects, sorted by one statement for every filter (sourcesSelectedBy), never one per
   * subscriber. A filter first subscribed to while the read was under way is sorted by one more.
   */
  async #sharesOf(rows: readonly StoredMetric[]): Promise<Map<FilteredHandlers, readonly StoredMetric[]>> {
    const shares = new Map<FilteredHandlers, readonly StoredMetric[]>();
    if (rows.length === 0) return shares;
    const sourceIds = [...new Set(rows.map((row) => row.sourceId))];
    const sorted = new Set<FilteredHandlers>();
    for (;;) {
      const unsorted = [...this.#filtered.values()].filter((filtered) => !sorted.has(filtered));
      if (unsorted.length === 0) return shares;
      const selected = await this.#store.sourcesSelectedBy(
        sourceIds,
        unsorted.map(({ filter }) => filter),
      );
      unsorted.forEach((filtered, index) => {
        sorted.add(filtered);
        const sources = selected[index];
        if (!sources || sources.size === 0) return;
        shares.set(
          filtered,
          sources.size === sourceIds.length ? rows : rows.filter((row) => sources.has(row.sourceId)),
        );
      });
    }
  }

  /** Counts a failure, logs the first of a run (the database layer logs the outage itself); the wait before the next try. */
  #failed(error: unknown, what: string): number {
    const retryInMs = retryDelayMs(++this.#failures);
    if (this.#failures === 1) this.#logger.warn({ err: error, retryInMs }, `${what}; retrying`);
    else this.#logger.debug({ err: error, failures: this.#failures, retryInMs }, `${what}; retrying`);
    return retryInMs;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retry);
    // Open streams end first, so that their HTTP responses finish and the server can close.
    for (const end of this.#streams) end();
    this.#streams.clear();
    this.#added.clear();
    this.#filtered.clear();
    this.#changed.clear();
    await this.#listener.close();
  }
}
