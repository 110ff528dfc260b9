import { encodeGlobalID } from '@pothos/plugin-relay';
import { builder } from '../builder.js';

/**
 * A Node whose global id is encoded synchronously: Pothos' own node id resolver is async, so every
 * node of a page would complete through a promise, 20% of a 100-row page's CPU (bench/PROFILE.md).
 * types/node.ts loads it by id.
 */
export const Metric = builder.prismaObject('Metric', {
  description: 'One sample of machine load.',
  interfaces: [builder.nodeInterfaceRef()],
  fields: (t) => ({
    id: t.field({ type: 'ID', resolve: (metric) => encodeGlobalID('Metric', String(metric.id)) }),
    timestamp: t.expose('timestamp', {
      type: 'DateTime',
      description: 'When the sample was taken (unique per source).',
    }),
    unixTime: t.float({
      description:
        'The timestamp as Unix epoch seconds, with milliseconds as the fraction (for chart libraries).',
      resolve: (metric) => metric.timestamp.getTime() / 1000,
    }),
    cpuLoad: t.exposeFloat('cpuLoad', {
      nullable: true,
      description: 'CPU load average, >= 0; null when the sample carries concurrency alone.',
    }),
    concurrency: t.exposeInt('concurrency', {
      nullable: true,
      description: 'Concurrent tasks, >= 0; null when the sample carries CPU load alone.',
    }),
  }),
});
