import { seriesBucketCount } from '../../domain/series.js';
import type { MetricBucket as MetricBucketValue } from '../../store/metric-store.js';
import { builder } from '../builder.js';
import { assertStartNotAfterEnd, badUserInput } from '../errors.js';
import { ConcurrencyStatistics } from './concurrency-statistics.js';
import { CpuLoadStatistics } from './cpu-load-statistics.js';

export const MetricBucket = builder.objectRef<MetricBucketValue>('MetricBucket').implement({
  description: 'The samples of one time bucket, aggregated.',
  fields: (t) => ({
    start: t.expose('start', { type: 'DateTime', description: 'Start of the bucket (inclusive).' }),
    count: t.exposeInt('count', {
      description: 'Samples in the bucket (never 0: empty buckets are omitted).',
    }),
    cpuLoad: t.field({ type: CpuLoadStatistics, resolve: (bucket) => bucket.cpuLoad }),
    concurrency: t.field({ type: ConcurrencyStatistics, resolve: (bucket) => bucket.concurrency }),
  }),
});

builder.queryField('metricSeries', (t) =>
  t.field({
    type: [MetricBucket],
    description:
      'A downsampled series for charts: samples with start <= timestamp < end grouped into buckets of `bucket` ' +
      'length aligned to the Unix epoch (so "1h" buckets start on the hour in UTC). Empty buckets are omitted. ' +
      'Requests spanning more than 10,000 buckets (by default) are refused.',
    args: {
      start: t.arg({ type: 'DateTime', required: true, description: 'Inclusive.' }),
      end: t.arg({ type: 'DateTime', required: true, description: 'Exclusive.' }),
      bucket: t.arg({
        type: 'Duration',
        required: true,
        description: 'Bucket length, e.g. "1m", "15m", "1h" or 60.',
      }),
    },
    resolve: (_root, { start, end, bucket }, { config, aggregates, store, scope }) => {
      assertStartNotAfterEnd({ start, end });
      const buckets = seriesBucketCount(start, end, bucket);
      if (buckets > config.maxSeriesBuckets) {
        throw badUserInput(
          'bucket',
          `${start.toISOString()}..${end.toISOString()} in ${bucket}-second buckets spans ${buckets} buckets; ` +
            `the limit is ${config.maxSeriesBuckets}: use a longer bucket or a shorter window`,
        );
      }
      return aggregates.series({ start, end }, bucket, scope, store);
    },
  }),
);
