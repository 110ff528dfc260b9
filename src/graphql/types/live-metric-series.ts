import { seriesBucketCount } from '../../domain/series.js';
import type { LiveSeries } from '../../live/live-aggregates.js';
import { unlessFailed } from '../../live/stream-failure.js';
import { builder } from '../builder.js';
import { badUserInput } from '../errors.js';
import { SHARED_EVENTS } from '../plugins/shared-events.js';
import { MetricBucket } from './metric-bucket.js';
import { sourceFilterArguments, sourceFilterOf } from './source-arguments.js';

const LiveMetricSeries = builder.objectRef<LiveSeries>('LiveMetricSeries').implement({
  description: 'The series of a window that ends when it was computed.',
  fields: (t) => ({
    start: t.expose('start', { type: 'DateTime', description: 'Inclusive: `end` minus the window.' }),
    end: t.expose('end', { type: 'DateTime', description: 'Exclusive: when this answer was computed.' }),
    bucket: t.expose('bucket', { type: 'Duration', description: 'Bucket length.' }),
    buckets: t.field({
      type: [MetricBucket],
      description: 'As metricSeries: epoch-aligned, empty buckets omitted.',
      resolve: (series) => series.buckets,
    }),
  }),
});

builder.subscriptionField('metricSeriesUpdated', (t) =>
  t.field({
    type: LiveMetricSeries,
    description:
      'The series of the last `window`, ending now, in buckets of `bucket`: first at once, then whenever a ' +
      'write changes samples in the window, at most once per LIVE_THROTTLE_MS (500 ms by default). Computed ' +
      'once per replica for every subscriber asking the same window and bucket of the same sources. With ' +
      '`source`, `sources` or `labels`, over the samples of the sources they select (as metricSeries), ' +
      'computed again when samples of those sources are inserted in the window (and on any update or delete ' +
      'there).',
    args: {
      window: t.arg({ type: 'Duration', required: true, description: 'How far back from now, e.g. "15m".' }),
      bucket: t.arg({ type: 'Duration', required: true, description: 'Bucket length, e.g. "10s".' }),
      ...sourceFilterArguments,
    },
    extensions: { [SHARED_EVENTS]: true },
    subscribe: (_root, { window, bucket, ...sources }, { config, live }) => {
      const filter = sourceFilterOf(sources);
      const end = new Date();
      const buckets = seriesBucketCount(new Date(end.getTime() - window * 1000), end, bucket);
      if (buckets > config.maxSeriesBuckets) {
        throw badUserInput(
          'bucket',
          `a ${window}-second window in ${bucket}-second buckets spans ${buckets} buckets; ` +
            `the limit is ${config.maxSeriesBuckets}: use a longer bucket or a shorter window`,
        );
      }
      return live.aggregates.series(window, bucket, filter);
    },
    resolve: (series) => unlessFailed(series),
  }),
);
