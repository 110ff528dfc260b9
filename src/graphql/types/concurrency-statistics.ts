import type { MetricBucket } from '../../domain/series.js';
import { builder } from '../builder.js';

export const ConcurrencyStatistics = builder
  .objectRef<MetricBucket['concurrency']>('ConcurrencyStatistics')
  .implement({
    description:
      'Concurrency over the samples of one bucket that hold one; null when none does (samples may carry CPU load alone).',
    fields: (t) => ({
      count: t.exposeInt('count', { description: 'Samples of the bucket holding a concurrency.' }),
      min: t.exposeInt('min', { nullable: true }),
      max: t.exposeInt('max', { nullable: true }),
      avg: t.exposeFloat('avg', { nullable: true, description: 'Arithmetic mean.' }),
    }),
  });
