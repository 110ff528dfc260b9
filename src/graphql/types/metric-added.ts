import { decodeAddedCursor, encodeAddedCursor } from '../../domain/cursor.js';
import type { StoredMetric } from '../../store/metric-store.js';
import { builder } from '../builder.js';
import { badUserInput } from '../errors.js';
import { Metric } from './metric.js';

const MetricAdded = builder.objectRef<StoredMetric>('MetricAdded').implement({
  description: 'A sample, as it was stored.',
  fields: (t) => ({
    cursor: t.string({
      description:
        'Its place in the order samples were stored in: pass it as `after` to resume the stream right after it.',
      resolve: (metric) => encodeAddedCursor(metric.id),
    }),
    node: t.field({ type: Metric, resolve: (metric) => metric }),
  }),
});

builder.subscriptionField('metricsAdded', (t) =>
  t.field({
    type: MetricAdded,
    description:
      'Every sample stored from now on, once each, in the order their transactions committed (whatever their ' +
      'timestamps: a back-filled sample arrives when it is written), whoever wrote it. With `after`, first ' +
      'every sample stored since that event, then live, with no gap and no repeat: a reconnecting client ' +
      'resumes with the cursor of the last event it received. A cursor stays valid as long as the samples ' +
      'after it are kept. Updated values of stored samples are not repeated here.',
    args: {
      after: t.arg.string({ description: 'The cursor of an earlier event.' }),
      start: t.arg({ type: 'DateTime', description: 'Only samples taken at or after this instant.' }),
    },
    subscribe: (_root, args, { live }) => {
      let after: bigint | undefined;
      if (args.after != null) {
        after = decodeAddedCursor(args.after);
        if (after === undefined) throw badUserInput('after', 'is not a cursor of metricsAdded');
      }
      return live.samples.subscribe({ after, start: args.start ?? undefined });
    },
    resolve: (metric) => metric,
  }),
);
