import { builder } from '../builder.js';

export const MetricInput = builder.inputType('MetricInput', {
  description: 'One sample to store.',
  fields: (t) => ({
    timestamp: t.field({
      type: 'DateTime',
      required: true,
      description:
        'When the sample was taken: the natural key, one sample per instant (millisecond precision). ' +
        'At most MAX_FUTURE (1 day by default) ahead of now.',
    }),
    cpuLoad: t.float({
      required: true,
      description: 'CPU load, finite and >= 0 (stored as a 32-bit float).',
    }),
    concurrency: t.int({ required: true, description: 'Concurrent tasks, >= 0.' }),
  }),
});
