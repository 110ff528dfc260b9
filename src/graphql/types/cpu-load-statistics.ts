import type { MetricBucket } from '../../domain/series.js';
import { builder } from '../builder.js';

export const CpuLoadStatistics = builder.objectRef<MetricBucket['cpuLoad']>('CpuLoadStatistics').implement({
  description: 'CPU load over the samples of one bucket.',
  fields: (t) => ({
    min: t.exposeFloat('min'),
    max: t.exposeFloat('max'),
    avg: t.exposeFloat('avg', { description: 'Arithmetic mean.' }),
  }),
});
