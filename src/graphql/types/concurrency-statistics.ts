import type { MetricBucket } from '../../domain/series.js';
import { builder } from '../builder.js';

export const ConcurrencyStatistics = builder
  .objectRef<MetricBucket['concurrency']>('ConcurrencyStatistics')
  .implement({
    description: 'Concurrency over the samples of one bucket.',
    fields: (t) => ({
      min: t.exposeInt('min'),
      max: t.exposeInt('max'),
      avg: t.exposeFloat('avg', { description: 'Arithmetic mean.' }),
    }),
  });
