import type { MetricSummary } from '../../domain/summary.js';
import { builder } from '../builder.js';

export const CpuLoadSummary = builder.objectRef<MetricSummary['cpuLoad']>('CpuLoadSummary').implement({
  description: 'CPU load statistics over the samples of a window that hold one; each null when none does.',
  fields: (t) => ({
    count: t.exposeInt('count', { description: 'Samples of the window holding a CPU load.' }),
    min: t.exposeFloat('min', { nullable: true }),
    max: t.exposeFloat('max', { nullable: true }),
    avg: t.exposeFloat('avg', { nullable: true, description: 'Arithmetic mean.' }),
    p50: t.exposeFloat('p50', { nullable: true, description: 'Median (linear interpolation).' }),
    p95: t.exposeFloat('p95', { nullable: true, description: '95th percentile (linear interpolation).' }),
    p99: t.exposeFloat('p99', { nullable: true, description: '99th percentile (linear interpolation).' }),
  }),
});
