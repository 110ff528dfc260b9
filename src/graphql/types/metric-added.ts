import { decodeAddedCursor, encodeAddedCursor } from '../../domain/cursor.js';
import type { StoredMetric } from '../../domain/metric.js';
import type { AddedSubscription } from '../../live/live-samples.js';
import { unlessFailed } from '../../live/stream-failure.js';
import { builder } from '../builder.js';
import { badUserInput } from '../errors.js';
import { SHARED_EVENTS } from '../plugins/shared-events.js';
import { Metric } from './metric.js';
import { sourceFilterArguments, sourceFilterOf } from './source-arguments.js';

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

const MetricsAddedBatch = builder.objectRef<readonly StoredMetric[]>('MetricsAddedBatch').implement({
  description: 'Samples stored one after the other, in the order they were stored in; never empty.',
  fields: (t) => ({
    cursor: t.string({
      description:
        "The last sample's place in the order samples were stored in: pass it as `after` to resume right after this batch.",
      resolve: (batch) => {
        const last = batch.at(-1);
        if (!last) throw new Error('A batch of added samples cannot be empty');
        return encodeAddedCursor(last.id);
      },
    }),
    nodes: t.field({ type: [Metric], resolve: (batch) => batch }),
  }),
});

const streamArgs = {
  ...builder.args((t) => ({
    after: t.string({ description: 'The cursor of an earlier event.' }),
    start: t.field({ type: 'DateTime', description: 'Only samples taken at or after this instant.' }),
  })),
  ...sourceFilterArguments,
};

function subscription(
  args: { after?: string | null; start?: Date | null } & Parameters<typeof sourceFilterOf>[0],
): AddedSubscription {
  let after: bigint | undefined;
  if (args.after != null) {
    after = decodeAddedCursor(args.after);
    if (after === undefined) throw badUserInput('after', 'is not a cursor of metricsAdded');
  }
  return { after, start: args.start ?? undefined, filter: sourceFilterOf(args) };
}

builder.subscriptionField('metricsAdded', (t) =>
  t.field({
    type: MetricAdded,
    description:
      'Every sample stored from now on, once each, in the order their transactions committed (whatever their ' +
      'timestamps: a back-filled sample arrives when it is written), whoever wrote it. With `after`, first ' +
      'every sample stored since that event, then live, with no gap and no repeat: a reconnecting client ' +
      'resumes with the cursor of the last event it received. A cursor stays valid as long as the samples ' +
      'after it are kept. Updated values of stored samples are not repeated here. With `source`, `sources` ' +
      'or `labels`, only the samples of the sources they select, with the same guarantees (resume with the ' +
      'same filter): a source that appears later is in from its first sample if it matches.',
    args: streamArgs,
    extensions: { [SHARED_EVENTS]: true },
    subscribe: (_root, args, { live }) => live.samples.subscribe(subscription(args)),
    resolve: (metric) => unlessFailed(metric),
  }),
);

builder.subscriptionField('metricsAddedBatch', (t) =>
  t.field({
    type: MetricsAddedBatch,
    description:
      "The samples of metricsAdded, with the same guarantees and arguments (its cursors and the batches' " +
      'are interchangeable), several per event: those one read of new samples found, that is what a write ' +
      'stored (or a few writes close together), up to 1,000 samples. For consumers of high rates: an event ' +
      'per write instead of one per sample.',
    args: streamArgs,
    extensions: { [SHARED_EVENTS]: true },
    subscribe: (_root, args, { live }) => live.samples.subscribeBatches(subscription(args)),
    resolve: (batch) => unlessFailed(batch),
  }),
);
