import { Repeater } from 'graphql-yoga';
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
 * One subscriber's stream of added samples, exactly once each, in commit order.
 *
 * It hears the feed from the moment it subscribes and delivers a row only if its id is above the
 * last one delivered. When it has to catch up (a resume with `after`, or a client so slow that
 * MAX_QUEUED rows piled up) it drops what it queued and reads from the database after its last
 * delivered id: every row the feed published before that read committed before it, so the read
 * sees it, and every row published after it is queued again. Nothing is skipped, nothing repeats,
 * and a slow client costs bounded memory.
 */
export class LiveSamples {
  readonly #feed: ChangeFeed;
  readonly #store: Pick<MetricStore, 'addedSince'>;
  /** Streams open now, and events pushed to them so far (the service's metrics). */
  readonly counts = { open: 0, delivered: 0 };

  constructor(feed: ChangeFeed, store: Pick<MetricStore, 'addedSince'>) {
    this.#feed = feed;
    this.#store = store;
  }

  /** Resolves once the feed listens (or rejects, the database being away) so the stream opens on solid ground. */
  async subscribe({ after, start }: AddedSubscription): Promise<AsyncIterable<StoredMetric>> {
    await this.#feed.ready();
    const feed = this.#feed;
    const store = this.#store;
    const from = after ?? feed.position;
    const counts = this.counts;
    return new Repeater<StoredMetric>(async (push, stop) => {
      counts.open++;
      let delivered = from;
      let catchUp = after !== undefined;
      let queue: StoredMetric[] = [];
      let head = 0;
      let wake: (() => void) | undefined;
      let stopped = false;
      const unsubscribe = feed.onAdded((rows) => {
        if (queue.length - head + rows.length > MAX_QUEUED) {
          queue = [];
          head = 0;
          catchUp = true;
        } else {
          for (const row of rows) queue.push(row);
        }
        wake?.();
      });
      const unregister = feed.onClose(stop);
      stop.then(() => {
        stopped = true;
        counts.open--;
        unsubscribe();
        unregister();
        wake?.();
      });
      const pause = (ms?: number) =>
        new Promise<void>((resolve) => {
          wake = resolve;
          if (ms !== undefined) setTimeout(resolve, ms);
        }).then(() => {
          wake = undefined;
        });

      while (!stopped) {
        if (catchUp) {
          catchUp = false;
          queue = [];
          head = 0;
          let rows: StoredMetric[];
          try {
            rows = await store.addedSince(delivered, READ_BATCH, start);
          } catch {
            catchUp = true;
            await pause(RETRY_MS);
            continue;
          }
          if (rows.length === READ_BATCH) catchUp = true;
          for (const row of rows) {
            if (stopped) break;
            if (row.id <= delivered) continue;
            delivered = row.id;
            counts.delivered++;
            await push(row);
          }
          continue;
        }
        const row = queue[head];
        if (row === undefined) {
          queue = [];
          head = 0;
          await pause();
          continue;
        }
        head++;
        if (row.id <= delivered || (start && row.timestamp < start)) continue;
        delivered = row.id;
        counts.delivered++;
        await push(row);
      }
    });
  }
}
