import type { MetricSummary as MetricSummaryValue } from '../../store/metric-store.js';
import { builder } from '../builder.js';
import { assertStartNotAfterEnd } from '../errors.js';
import { ConcurrencySummary } from './concurrency-summary.js';
import { CpuLoadSummary } from './cpu-load-summary.js';

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
  }),
});

builder.queryField('metricsSummary', (t) =>
  t.field({
    type: MetricSummary,
    description:
      'Count, first and last timestamp, and CPU load and concurrency statistics of the samples with ' +
      'start <= timestamp < end (each bound optional), computed in one SQL query and remembered until the data changes.',
    args: {
      start: t.arg({ type: 'DateTime', description: 'Inclusive.' }),
      end: t.arg({ type: 'DateTime', description: 'Exclusive.' }),
    },
    resolve: (_root, args, { aggregates, store, scope }) => {
      const range = { start: args.start ?? undefined, end: args.end ?? undefined };
      assertStartNotAfterEnd(range);
      return aggregates.summary(range, scope, store);
    },
  }),
);
