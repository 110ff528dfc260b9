import type { ChangeListener } from '../database/change-listener.js';
import type { Logger } from '../observability/logger.js';
import type { MetricStore } from '../store/metric-store.js';
import { ChangeFeed } from './change-feed.js';
import { LiveAggregates } from './live-aggregates.js';
import { LiveSamples } from './live-samples.js';

/** The live side of one replica: its change feed and what the subscriptions read from it. */
export interface LiveUpdates {
  feed: ChangeFeed;
  samples: LiveSamples;
  aggregates: LiveAggregates;
  /** Ends every open stream, then stops listening. */
  close(): Promise<void>;
}

export function createLiveUpdates(
  store: MetricStore,
  listener: ChangeListener,
  options: { logger: Logger; throttleMs: number; readyTimeoutMs: number },
): LiveUpdates {
  const feed = new ChangeFeed(store, listener, options);
  return {
    feed,
    samples: new LiveSamples(feed, store),
    aggregates: new LiveAggregates(feed, store, options),
    close: () => feed.close(),
  };
}
