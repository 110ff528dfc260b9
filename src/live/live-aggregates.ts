import { Repeater, SlidingBuffer } from 'graphql-yoga';
import type { MetricBucket } from '../domain/series.js';
import type { MetricSummary } from '../domain/summary.js';
import type { Logger } from '../observability/logger.js';
import type { MetricStore } from '../store/metric-store.js';
import type { ChangeFeed, ChangeNotice } from './change-feed.js';
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

/**
 * Series and summaries of the last `window` ending now, pushed to subscribers whenever a change
 * touches the window, at most once per `throttleMs` per distinct question, and computed once per
 * replica for all subscribers asking the same question. A computation that fails is tried again
 * after a growing delay; after FAILED_READS_BEFORE_GIVING_UP failures in a row its subscribers'
 * streams end with the error (a StreamFailure, coded for them).
 */
export class LiveAggregates {
  readonly #feed: ChangeFeed;
  readonly #store: Pick<MetricStore, 'series' | 'summary'>;
  readonly #throttleMs: number;
  readonly #logger: Logger;
  readonly #questions = new Map<string, Question<unknown>>();

  constructor(
    feed: ChangeFeed,
    store: Pick<MetricStore, 'series' | 'summary'>,
    options: { throttleMs: number; logger: Logger },
  ) {
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

  series(windowSeconds: number, bucketSeconds: number): Promise<AsyncIterable<LiveSeries | StreamFailure>> {
    return this.#watch(`series:${windowSeconds}:${bucketSeconds}`, windowSeconds, async (window) => ({
      ...window,
      bucket: bucketSeconds,
      buckets: (await this.#store.series(window, bucketSeconds)).value,
    }));
  }

  summary(windowSeconds: number): Promise<AsyncIterable<LiveSummary | StreamFailure>> {
    return this.#watch(`summary:${windowSeconds}`, windowSeconds, async (window) => ({
      ...window,
      summary: (await this.#store.summary(window)).value,
    }));
  }

  async #watch<T>(
    key: string,
    windowSeconds: number,
    compute: (window: Window) => Promise<T>,
  ): Promise<AsyncIterable<T | StreamFailure>> {
    // Listening first: a change after this point is heard, one before it is in the first answer.
    await this.#feed.ready();
    return new Repeater<T | StreamFailure>(async (push, stop) => {
      let question = this.#questions.get(key) as Question<T> | undefined;
      if (!question) {
        const created = new Question<T>(windowSeconds, compute);
        created.stopListening = this.#feed.onChanged((notice) => {
          if (touches(notice, created.windowSeconds)) this.#schedule(created);
        });
        this.#questions.set(key, created as Question<unknown>);
        question = created;
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
