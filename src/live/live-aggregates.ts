import { Repeater, SlidingBuffer } from 'graphql-yoga';
import type { MetricBucket } from '../domain/series.js';
import type { SourceFilter } from '../domain/source.js';
import type { MetricSummary } from '../domain/summary.js';
import type { Logger } from '../observability/logger.js';
import type { MetricStore } from '../store/metric-store.js';
import { ALL_SOURCES, type SourceSelection } from '../store/source-filter.js';
import type { ChangeFeed, ChangeNotice } from './change-feed.js';
import { sourceFilterKey } from './source-filter-key.js';
import { FAILED_READS_BEFORE_GIVING_UP, retryDelayMs, StreamFailure } from './stream-failure.js';

/** A window that ends when it was computed. */
interface Window {
  start: Date;
  end: Date;
}

export interface LiveSeries extends Window {
  /** Bucket length in seconds. */
  bucket: number;
  buckets: MetricBucket[];
}

export interface LiveSummary extends Window {
  summary: MetricSummary;
}

/** A subscriber of a question: each answer, or the failure that ends its stream. */
interface Subscriber<T> {
  next(value: T): void;
  fail(failure: StreamFailure): void;
}

/** One distinct question and everyone on this replica asking it. */
class Question<T> {
  readonly subscribers = new Set<Subscriber<T>>();
  latest: T | undefined;
  computedAt = Number.NEGATIVE_INFINITY;
  computing = false;
  /** A change came while computing: compute once more afterwards. */
  stale = false;
  /** Computations failed in a row. */
  failures = 0;
  timer: NodeJS.Timeout | undefined;
  stopListening: () => void = () => {};

  constructor(
    readonly windowSeconds: number,
    readonly compute: (window: Window) => Promise<T>,
  ) {}
}

/** The store as live aggregates read it. */
type AggregateReads = Pick<MetricStore, 'series' | 'summary' | 'selectSources' | 'checkEvaluable'>;

/**
 * Series and summaries of the last `window` ending now, pushed to subscribers whenever a change
 * touches the window, at most once per `throttleMs` per distinct question, and computed once per
 * replica for all subscribers asking the same question. A computation that fails is tried again
 * after a growing delay; after FAILED_READS_BEFORE_GIVING_UP failures in a row its subscribers'
 * streams end with the error (a StreamFailure, coded for them).
 *
 * A question about some sources (a source filter, part of what makes it distinct) is over the
 * sources its filter selects at each computation, and is computed again only when rows of those
 * sources were inserted in its window: it hears of inserts from the change feed's rows sorted by
 * source, not from their notifications, which do not say whose rows they hold. An update, a
 * delete or a truncate, whose notification does not say it either, recomputes every question
 * whose window it touches.
 */
export class LiveAggregates {
  readonly #feed: ChangeFeed;
  readonly #store: AggregateReads;
  readonly #throttleMs: number;
  readonly #logger: Logger;
  readonly #questions = new Map<string, Question<unknown>>();

  constructor(feed: ChangeFeed, store: AggregateReads, options: { throttleMs: number; logger: Logger }) {
    this.#feed = feed;
    this.#store = store;
    this.#throttleMs = options.throttleMs;
    this.#logger = options.logger;
  }

  /** Distinct questions being answered now. */
  get questions(): number {
    return this.#questions.size;
  }

  /** Subscribers of all questions together. */
  get subscribers(): number {
    let total = 0;
    for (const question of this.#questions.values()) total += question.subscribers.size;
    return total;
  }

  /** With a `filter`, over the samples of the sources it selects; else over every sample. */
  series(
    windowSeconds: number,
    bucketSeconds: number,
    filter?: SourceFilter,
  ): Promise<AsyncIterable<LiveSeries | StreamFailure>> {
    return this.#watch(
      `series:${windowSeconds}:${bucketSeconds}`,
      windowSeconds,
      filter,
      async (window, sources) => ({
        ...window,
        bucket: bucketSeconds,
        buckets: (await this.#store.series(window, bucketSeconds, sources)).value,
      }),
    );
  }

  /** With a `filter`, over the samples of the sources it selects; else over every sample. */
  summary(windowSeconds: number, filter?: SourceFilter): Promise<AsyncIterable<LiveSummary | StreamFailure>> {
    return this.#watch(`summary:${windowSeconds}`, windowSeconds, filter, async (window, sources) => ({
      ...window,
      summary: (await this.#store.summary(window, sources)).value,
    }));
  }

  /**
   * The stream of one question: `kind` and the filter's key tell it apart. Its answers are computed
   * over the sources the filter selects at each computation (a source created meanwhile counts).
   */
  async #watch<T>(
    kind: string,
    windowSeconds: number,
    filter: SourceFilter | undefined,
    computeOver: (window: Window, sources: SourceSelection) => Promise<T>,
  ): Promise<AsyncIterable<T | StreamFailure>> {
    const filterKey = sourceFilterKey(filter);
    // A filter that selects every source (labels: []) asks the question without one.
    const narrowed = filterKey === undefined ? undefined : filter;
    const key = filterKey === undefined ? kind : `${kind}:${filterKey}`;
    // Refused before the stream opens, rather than failing every computation.
    if (narrowed) await this.#store.checkEvaluable(narrowed);
    const compute = narrowed
      ? async (window: Window) => computeOver(window, await this.#store.selectSources(narrowed))
      : (window: Window) => computeOver(window, ALL_SOURCES);
    // Listening first: a change after this point is heard, one before it is in the first answer.
    await this.#feed.ready();
    return new Repeater<T | StreamFailure>(async (push, stop) => {
      let question = this.#questions.get(key) as Question<T> | undefined;
      if (!question) {
        question = new Question<T>(windowSeconds, compute);
        question.stopListening = this.#listen(question, narrowed);
        this.#questions.set(key, question as Question<unknown>);
      }
      const subscriber: Subscriber<T> = {
        next: (value) => void push(value),
        // Pushed before the stop, the failure is the stream's last event.
        fail: (failure) => {
          void push(failure);
          stop();
        },
      };
      question.subscribers.add(subscriber);
      if (question.latest !== undefined && performance.now() - question.computedAt < this.#throttleMs) {
        subscriber.next(question.latest);
      } else {
        this.#schedule(question);
      }
      const unregister = this.#feed.onClose((error) => {
        if (error === undefined) stop();
        else subscriber.fail(new StreamFailure(error));
      });
      await stop;
      unregister();
      question.subscribers.delete(subscriber);
      if (question.subscribers.size === 0) {
        clearTimeout(question.timer);
        question.stopListening();
        this.#questions.delete(key);
      }
      // Only the latest answer matters: a slow client skips the ones it had no time for.
    }, new SlidingBuffer(1));
  }

  /**
   * Schedules `question` whenever a change can alter its answer; returns the unsubscribe. Without a
   * filter, any change that touches its window; with one, inserts only when rows of its sources
   * in its window were read.
   */
  #listen<T>(question: Question<T>, filter: SourceFilter | undefined): () => void {
    const { windowSeconds } = question;
    const stopChanges = this.#feed.onChanged((notice) => {
      if (filter && notice.op === 'INSERT') return;
      if (touches(notice, windowSeconds)) this.#schedule(question);
    });
    if (!filter) return stopChanges;
    const stopRows = this.#feed.onAdded((rows) => {
      const windowStart = Date.now() - windowSeconds * 1000;
      if (rows.some((row) => row.timestamp.getTime() >= windowStart)) this.#schedule(question);
    }, filter);
    return () => {
      stopChanges();
      stopRows();
    };
  }

  /** Computes soon: now if the last answer is older than the throttle, else when it is. */
  #schedule<T>(question: Question<T>): void {
    if (question.computing) {
      question.stale = true;
      return;
    }
    if (question.timer) return;
    this.#computeIn(question, Math.max(0, question.computedAt + this.#throttleMs - performance.now()));
  }

  #computeIn<T>(question: Question<T>, ms: number): void {
    question.timer = setTimeout(() => {
      question.timer = undefined;
      void this.#compute(question);
    }, ms);
  }

  async #compute<T>(question: Question<T>): Promise<void> {
    if (question.subscribers.size === 0) return;
    question.computing = true;
    question.stale = false;
    const end = new Date();
    const start = new Date(end.getTime() - question.windowSeconds * 1000);
    try {
      const value = await question.compute({ start, end });
      question.latest = value;
      question.computedAt = performance.now();
      question.failures = 0;
      for (const subscriber of question.subscribers) subscriber.next(value);
    } catch (error) {
      question.computing = false;
      const failures = ++question.failures;
      if (failures >= FAILED_READS_BEFORE_GIVING_UP) {
        this.#logger.warn(
          { err: error, failures, subscribers: question.subscribers.size },
          'Could not compute a live aggregate; ending its streams',
        );
        const failure = new StreamFailure(error);
        for (const subscriber of [...question.subscribers]) subscriber.fail(failure);
        return;
      }
      const retryInMs = retryDelayMs(failures);
      if (failures === 1) {
        this.#logger.warn({ err: error, retryInMs }, 'Could not compute a live aggregate; retrying');
      }
      if (question.subscribers.size > 0) this.#computeIn(question, retryInMs);
      return;
    }
    question.computing = false;
    if (question.stale) this.#schedule(question);
  }
}

/** Whether a change can alter the window of the last `windowSeconds` (which ends now). */
function touches(notice: ChangeNotice, windowSeconds: number): boolean {
  if (!notice.to) return true;
  return notice.to.getTime() >= Date.now() - windowSeconds * 1000;
}
