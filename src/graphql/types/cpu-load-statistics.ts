import { builder } from '../builder.js';
import type { MetricBucketRow } from '../metrics/queries.js';

export const CpuLoadStatistics = builder
  .objectRef<MetricBucketRow['cpuLoad']>('CpuLoadStatistics')
  .implement({
    description: 'CPU load over the samples of one bucket.',
    fields: (t) => ({
      min: t.exposeFloat('min'),
      max: t.exposeFloat('max'),
      avg: t.exposeFloat('avg', { description: 'Arithmetic mean.' }),
    }),
  });
