import type { MetricSummary as MetricSummaryValue } from '../../domain/summary.js';
import type { SourceSelection } from '../../store/source-filter.js';
import { builder, type Context } from '../builder.js';
import { assertStartNotAfterEnd } from '../errors.js';
import { expensiveAggregates } from '../expensive-work.js';
import { ConcurrencySummary } from './concurrency-summary.js';
import { CpuLoadSummary } from './cpu-load-summary.js';
import { selectedSources, sourceFilterArguments } from './source-arguments.js';

export const MetricSummary = builder.objectRef<MetricSummaryValue>('MetricSummary').implement({
  description: 'Aggregates over the samples in a window.',
  fields: (t) => ({
    count: t.exposeInt('count', { description: 'Number of samples.' }),
    firstTimestamp: t.expose('firstTimestamp', {
      type: 'DateTime',
      nullable: true,
      description: 'Earliest sample.',
    }),
    lastTimestamp: t.expose('lastTimestamp', {
      type: 'DateTime',
      nullable: true,
      description: 'Latest sample.',
    }),
    cpuLoad: t.field({ type: CpuLoadSummary, resolve: (summary) => summary.cpuLoad }),
    concurrency: t.field({ type: ConcurrencySummary, resolve: (summary) => summary.concurrency }),
    percentilesExact: t.exposeBoolean('percentilesExact', {
      description:
        'Whether the percentiles are exact (percentile_cont over the samples), as they are for windows of at ' +
        "most EXACT_PERCENTILE_MAX_ROWS samples; otherwise they come from the rollups' percentile sketches.",
    }),
    percentileRelativeError: t.exposeFloat('percentileRelativeError', {
      description:
        'Bound on the relative error of each percentile against percentile_cont over the samples: ' +
        '|p - exact| <= percentileRelativeError * exact. 0 when percentilesExact.',
    }),
  }),
});

/** The window of a summary, `start` inclusive and `end` exclusive, each optional. */
export const summaryArguments = builder.args((t) => ({
  start: t.field({ type: 'DateTime', description: 'Inclusive.' }),
  end: t.field({ type: 'DateTime', description: 'Exclusive.' }),
}));

/**
 * The summary of `sources`' samples in the arguments' window, remembered until the data changes:
 * Query.metricsSummary and Source.summary.
 */
export async function summaryOf(
  args: { start?: Date | null; end?: Date | null },
  sources: () => SourceSelection | Promise<SourceSelection>,
  context: Context,
): Promise<MetricSummaryValue> {
  const range = { start: args.start ?? undefined, end: args.end ?? undefined };
  assertStartNotAfterEnd(range);
  return context.aggregates.summary(
    range,
    await sources(),
    context.scope,
    expensiveAggregates(context, context.store),
  );
}

builder.queryField('metricsSummary', (t) =>
  t.field({
    type: MetricSummary,
    description:
      'Count, first and last timestamp, and CPU load and concurrency statistics of the samples with ' +
      'start <= timestamp < end (each bound optional), computed in one SQL query and remembered until the data changes. ' +
      'Whole days, hours and minutes of the window are read from rollups, the unaligned edges from the samples. ' +
      '`source`, `sources` or `labels` narrow it to some sources; without them it covers every source.',
    args: { ...summaryArguments, ...sourceFilterArguments },
    resolve: (_root, args, context) => summaryOf(args, () => selectedSources(args, context), context),
  }),
);
