import type { MetricBucket } from '../../domain/series.js';
import { builder } from '../builder.js';

export const CpuLoadStatistics = builder.objectRef<MetricBucket['cpuLoad']>('CpuLoadStatistics').implement({
  description:
    'CPU load over the samples of one bucket that hold one; null when none does (samples may carry concurrency alone).',
  fields: (t) => ({
    count: t.exposeInt('count', { description: 'Samples of the bucket holding a CPU load.' }),
    min: t.exposeFloat('min', { nullable: true }),
    max: t.exposeFloat('max', { nullable: true }),
    avg: t.exposeFloat('avg', { nullable: true, description: 'Arithmetic mean.' }),
  }),
});
