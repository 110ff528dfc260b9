import { builder } from '../builder.js';
import type { MetricBucketRow } from '../metrics/queries.js';

export const ConcurrencyStatistics = builder
  .objectRef<MetricBucketRow['concurrency']>('ConcurrencyStatistics')
  .implement({
    description: 'Concurrency over the samples of one bucket.',
    fields: (t) => ({
      min: t.exposeInt('min'),
      max: t.exposeInt('max'),
      avg: t.exposeFloat('avg', { description: 'Arithmetic mean.' }),
    }),
  });
