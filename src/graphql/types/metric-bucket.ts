import type { MetricBucket as MetricBucketValue } from '../../domain/series.js';
import { seriesBucketCount, seriesWindow } from '../../domain/series.js';
import type { SourceSelection } from '../../store/source-filter.js';
import { builder, type Context } from '../builder.js';
import { assertStartNotAfterEnd, badUserInput } from '../errors.js';
import { expensiveAggregates } from '../expensive-work.js';
import { ConcurrencyStatistics } from './concurrency-statistics.js';
import { CpuLoadStatistics } from './cpu-load-statistics.js';
import { selectedSources, sourceFilterArguments } from './source-arguments.js';

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

/** The window and bucket of a series. */
export const seriesArguments = builder.args((t) => ({
  start: t.field({
    type: 'DateTime',
    description:
      'Inclusive. Default: the earliest bucket boundary within MAX_SERIES_BUCKETS buckets of `end` ' +
      '(empty buckets are omitted, so this is the same as starting at the first sample when that is later).',
  }),
  end: t.field({
    type: 'DateTime',
    description: 'Exclusive. Default: now, rounded up to a bucket boundary (the current bucket included).',
  }),
  bucket: t.field({
    type: 'Duration',
    required: true,
    description: 'Bucket length, e.g. "1m", "15m", "1h" or 60.',
  }),
}));

/**
 * The window a series' arguments ask for, with its bucket; refused when it spans more than
 * MAX_SERIES_BUCKETS buckets.
 */
export function seriesWindowOf(
  args: { start?: Date | null; end?: Date | null; bucket: number },
  maxSeriesBuckets: number,
): { start: Date; end: Date } {
  const { bucket } = args;
  const window = seriesWindow(
    args.start ?? undefined,
    args.end ?? undefined,
    bucket,
    maxSeriesBuckets,
    new Date(),
  );
  assertStartNotAfterEnd(window);
  const buckets = seriesBucketCount(window.start, window.end, bucket);
  if (buckets > maxSeriesBuckets) {
    throw badUserInput(
      'bucket',
      `${window.start.toISOString()}..${window.end.toISOString()} in ${bucket}-second buckets spans ${buckets} buckets; ` +
        `the limit is ${maxSeriesBuckets}: use a longer bucket or a shorter window`,
    );
  }
  return window;
}

/**
 * The series of `sources`' samples the arguments ask for, remembered until the data changes:
 * Query.metricSeries and Source.series.
 */
export async function seriesOf(
  args: { start?: Date | null; end?: Date | null; bucket: number },
  sources: () => SourceSelection | Promise<SourceSelection>,
  context: Context,
): Promise<MetricBucketValue[]> {
  const window = seriesWindowOf(args, context.config.maxSeriesBuckets);
  return context.aggregates.series(
    window,
    args.bucket,
    await sources(),
    context.scope,
    expensiveAggregates(context, context.store),
  );
}

builder.queryField('metricSeries', (t) =>
  t.field({
    type: [MetricBucket],
    description:
      'A downsampled series for charts: samples with start <= timestamp < end grouped into buckets of `bucket` ' +
      'length aligned to the Unix epoch (so "1h" buckets start on the hour in UTC). Empty buckets are omitted. ' +
      'Requests spanning more than MAX_SERIES_BUCKETS buckets (10,000 by default) are refused. ' +
      '`source`, `sources` or `labels` narrow it to some sources; without them it covers every source.',
    args: { ...seriesArguments, ...sourceFilterArguments },
    resolve: (_root, args, context) => seriesOf(args, () => selectedSources(args, context), context),
  }),
);
