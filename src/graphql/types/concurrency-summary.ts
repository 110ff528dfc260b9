import type { MetricSummary } from '../../domain/summary.js';
import { builder } from '../builder.js';

export const ConcurrencySummary = builder
  .objectRef<MetricSummary['concurrency']>('ConcurrencySummary')
  .implement({
    description:
      'Concurrency statistics over the samples of a window that hold one; each null when none does.',
    fields: (t) => ({
      count: t.exposeInt('count', { description: 'Samples of the window holding a concurrency.' }),
      min: t.exposeInt('min', { nullable: true }),
      max: t.exposeInt('max', { nullable: true }),
      avg: t.exposeFloat('avg', { nullable: true, description: 'Arithmetic mean.' }),
      p95: t.exposeFloat('p95', { nullable: true, description: '95th percentile (linear interpolation).' }),
    }),
  });
