import type { MetricBucket as MetricBucketValue } from '../../domain/series.js';
import {
  MAX_SOURCE_SERIES,
  MAX_SOURCE_SUMMARIES,
  type MetricSummary as MetricSummaryValue,
  type SourceRanking,
  type SourceStatistic as SourceStatisticValue,
} from '../../domain/summary.js';
import type { OfSource } from '../../store/source-aggregates.js';
import { builder, type Context } from '../builder.js';
import { assertStartNotAfterEnd, badUserInput } from '../errors.js';
import { expensiveAggregates } from '../expensive-work.js';
import { loadSource } from '../source-loader.js';
import { MetricBucket, seriesArguments, seriesWindowOf } from './metric-bucket.js';
import { MetricSummary, summaryArguments } from './metric-summary.js';
import { SortOrder } from './sort-order.js';
import { Source } from './source.js';
import { selectedSources, sourceFilterArguments } from './source-arguments.js';

export const SourceStatistic = builder.enumType('SourceStatistic', {
  description:
    "A statistic of a source's samples over a window, to rank sources by. Percentiles are the rollups' " +
    'sketches (within 1%).',
  values: {
    SAMPLES: { value: 'samples', description: 'The number of samples.' },
    LAST_SEEN: { value: 'lastSeen', description: 'The latest sample in the window.' },
    CPU_LOAD_AVG: { value: 'cpuLoadAvg', description: 'The mean CPU load.' },
    CPU_LOAD_MAX: { value: 'cpuLoadMax', description: 'The highest CPU load.' },
    CPU_LOAD_P50: { value: 'cpuLoadP50', description: 'The median CPU load.' },
    CPU_LOAD_P95: { value: 'cpuLoadP95', description: 'The 95th percentile of CPU load.' },
    CPU_LOAD_P99: { value: 'cpuLoadP99', description: 'The 99th percentile of CPU load.' },
    CONCURRENCY_AVG: { value: 'concurrencyAvg', description: 'The mean concurrency.' },
    CONCURRENCY_MAX: { value: 'concurrencyMax', description: 'The highest concurrency.' },
    CONCURRENCY_P95: { value: 'concurrencyP95', description: 'The 95th percentile of concurrency.' },
  } as const satisfies Record<string, { value: SourceStatisticValue; description: string }>,
});

export const SourceSummary = builder.objectRef<OfSource<MetricSummaryValue>>('SourceSummary').implement({
  description: "A source's summary over a window.",
  fields: (t) => ({
    // The sources of every answer are read together, in one statement (source-loader.ts).
    source: t.field({
      type: Source,
      resolve: ({ sourceId }, _args, context) => loadSource(context, sourceId),
    }),
    summary: t.field({ type: MetricSummary, resolve: ({ value }) => value }),
  }),
});

export const SourceSeries = builder.objectRef<OfSource<MetricBucketValue[]>>('SourceSeries').implement({
  description: "A source's series over a window: one line of a chart.",
  fields: (t) => ({
    source: t.field({
      type: Source,
      resolve: ({ sourceId }, _args, context) => loadSource(context, sourceId),
    }),
    buckets: t.field({ type: [MetricBucket], resolve: ({ value }) => value }),
  }),
});

/** How sources are ranked: by which statistic, in which order, and how many. */
const rankingArguments = builder.args((t) => ({
  orderBy: t.field({
    type: SourceStatistic,
    required: true,
    defaultValue: 'cpuLoadP95',
    description: 'The statistic sources are ranked by; sources without it come last.',
  }),
  order: t.field({
    type: SortOrder,
    required: true,
    defaultValue: 'desc',
    description: 'DESC: the highest first (ties to the oldest source).',
  }),
  first: t.int({ required: true, defaultValue: 10, description: 'How many sources.' }),
}));

function rankingOf(
  args: { orderBy: SourceStatisticValue; order: 'asc' | 'desc'; first: number },
  max: number,
): SourceRanking {
  if (args.first < 0) throw badUserInput('first', 'must not be negative');
  if (args.first > max) throw badUserInput('first', `must be at most ${max}`);
  return { statistic: args.orderBy, direction: args.order, first: args.first };
}

builder.queryField('sourceSummaries', (t) =>
  t.field({
    type: [SourceSummary],
    description:
      'The summaries of the first `first` sources by a statistic over a window ("the 10 sources with the highest ' +
      'CPU p95 over the last hour"), in that order, among the sources `source`, `sources` or `labels` select ' +
      `(every source without them) that have samples in the window; at most ${MAX_SOURCE_SUMMARIES}. ` +
      "Percentiles are the rollups' sketches' (percentilesExact false, within 1%). Remembered until the data changes.",
    args: { ...summaryArguments, ...sourceFilterArguments, ...rankingArguments },
    resolve: async (_root, args, context) => {
      const range = { start: args.start ?? undefined, end: args.end ?? undefined };
      assertStartNotAfterEnd(range);
      const ranking = rankingOf(args, MAX_SOURCE_SUMMARIES);
      return context.aggregates.sourceSummaries(
        range,
        await selectedSources(args, context),
        ranking,
        context.scope,
        expensiveAggregates(context, context.store),
      );
    },
  }),
);

builder.queryField('sourceSeries', (t) =>
  t.field({
    type: [SourceSeries],
    description:
      "The series of the first `first` sources by a statistic over the series' window, in that order (a chart with " +
      'one line per source), among the sources `source`, `sources` or `labels` select that have samples in the ' +
      `window; at most ${MAX_SOURCE_SERIES}, and each series counts towards MAX_QUERY_COST. Buckets as metricSeries' ` +
      'are. Remembered until the data changes.',
    args: { ...seriesArguments, ...sourceFilterArguments, ...rankingArguments },
    resolve: async (_root, args, context: Context) => {
      const window = seriesWindowOf(args, context.config.maxSeriesBuckets);
      const ranking = rankingOf(args, MAX_SOURCE_SERIES);
      return context.aggregates.sourceSeries(
        window,
        args.bucket,
        await selectedSources(args, context),
        ranking,
        context.scope,
        expensiveAggregates(context, context.store),
      );
    },
  }),
);
