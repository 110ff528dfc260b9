import type { Meter } from '@opentelemetry/api';
import type { Config } from '../config.js';
import type { ChangeListener } from '../database/change-listener.js';
import type { Logger } from '../observability/logger.js';
import type { MetricStore } from '../store/metric-store.js';
import { ChangeFeed } from './change-feed.js';
import { LiveAggregates } from './live-aggregates.js';
import { LiveSamples } from './live-samples.js';
import { ReadPermits } from './read-permits.js';

/** The live side of one replica: its change feed and what the subscriptions read from it. */
export interface LiveUpdates {
  feed: ChangeFeed;
  samples: LiveSamples;
  aggregates: LiveAggregates;
  /** Ends every open stream, then stops listening. */
  close(): Promise<void>;
}

/** The live updates' settings as the service's configuration gives them. */
export interface LiveSettings {
  /** LIVE_THROTTLE_MS: the least time between two answers of a live series or summary. */
  throttleMs: number;
  /** How long a subscription waits for the listener to be ready (DATABASE_CONNECT_TIMEOUT_MS). */
  readyTimeoutMs: number;
  /** LIVE_MAX_CATCHUP_READS: resuming streams' reads from the database at once. */
  maxCatchUpReads: number;
  /** LIVE_READ_INTERVAL_MS: the change feed's least time between reads. */
  readIntervalMs: number;
}

export function liveSettings(config: Config): LiveSettings {
  return {
    throttleMs: config.liveThrottleMs,
    readyTimeoutMs: config.databaseConnectTimeoutMs,
    maxCatchUpReads: config.live.maxCatchUpReads,
    readIntervalMs: config.live.readIntervalMs,
  };
}

export function createLiveUpdates(
  store: MetricStore,
  listener: ChangeListener,
  options: LiveSettings & { logger: Logger; meter?: Meter },
): LiveUpdates {
  const feed = new ChangeFeed(store, listener, options);
  const permits = new ReadPermits(options.maxCatchUpReads);
  const samples = new LiveSamples(feed, store, { permits, logger: options.logger });
  const aggregates = new LiveAggregates(feed, store, options);
  if (options.meter) observe(options.meter, feed, samples, aggregates, permits);
  return { feed, samples, aggregates, close: () => feed.close() };
}

/** Subscriptions, questions, the listener and the feed's work, read at each scrape (nothing per event). */
function observe(
  meter: Meter,
  feed: ChangeFeed,
  samples: LiveSamples,
  aggregates: LiveAggregates,
  permits: ReadPermits,
): void {
  meter
    .createObservableUpDownCounter('metrics_api.live.subscriptions', {
      unit: '{subscription}',
      description: 'Open subscriptions: metricsAdded streams, and subscribers of live series and summaries.',
    })
    .addCallback((result) => {
      result.observe(samples.counts.open, { kind: 'added' });
      result.observe(aggregates.subscribers, { kind: 'aggregate' });
    });
  meter
    .createObservableUpDownCounter('metrics_api.live.questions', {
      unit: '{question}',
      description: 'Distinct live series and summaries being computed for their subscribers.',
    })
    .addCallback((result) => result.observe(aggregates.questions));
  meter
    .createObservableUpDownCounter('metrics_api.live.catch_up_reads', {
      unit: '{read}',
      description:
        'Catch-up reads of resuming streams: running (at most LIVE_MAX_CATCHUP_READS) and waiting their turn.',
    })
    .addCallback((result) => {
      result.observe(permits.counts.running, { state: 'running' });
      result.observe(permits.counts.waiting, { state: 'waiting' });
    });
  meter
    .createObservableGauge('metrics_api.live.listening', {
      description: '1 while the connection listening for changes is up, else 0.',
    })
    .addCallback((result) => result.observe(feed.listening ? 1 : 0));
  const counter = (name: string, unit: string, description: string, read: () => number) =>
    meter
      .createObservableCounter(name, { unit, description })
      .addCallback((result) => result.observe(read()));
  counter(
    'metrics_api.live.reads',
    '{read}',
    'Reads of new samples by the change feed.',
    () => feed.counts.reads,
  );
  counter('metrics_api.live.rows', '{row}', 'New samples the change feed published.', () => feed.counts.rows);
  counter(
    'metrics_api.live.reconnects',
    '{reconnect}',
    'Times the listening connection came back after being lost.',
    () => feed.counts.reconnects,
  );
  counter(
    'metrics_api.live.events',
    '{sample}',
    'Samples sent to subscribers of metricsAdded (an event each) and metricsAddedBatch.',
    () => samples.counts.delivered,
  );
}
