import type { LiveSummary } from '../../live/live-aggregates.js';
import { unlessFailed } from '../../live/stream-failure.js';
import { builder } from '../builder.js';
import { SHARED_EVENTS } from '../plugins/shared-events.js';
import { MetricSummary } from './metric-summary.js';
import { sourceFilterArguments, sourceFilterOf } from './source-arguments.js';

const LiveMetricsSummary = builder.objectRef<LiveSummary>('LiveMetricsSummary').implement({
  description: 'The summary of a window that ends when it was computed.',
  fields: (t) => ({
    start: t.expose('start', { type: 'DateTime', description: 'Inclusive: `end` minus the window.' }),
    end: t.expose('end', { type: 'DateTime', description: 'Exclusive: when this answer was computed.' }),
    summary: t.field({ type: MetricSummary, resolve: (live) => live.summary }),
  }),
});

builder.subscriptionField('metricsSummaryUpdated', (t) =>
  t.field({
    type: LiveMetricsSummary,
    description:
      'metricsSummary over the last `window`, ending now: first at once, then whenever a write changes samples ' +
      'in the window, at most once per LIVE_THROTTLE_MS. Computed once per replica for every subscriber ' +
      'asking the same window of the same sources. With `source`, `sources` or `labels`, over the samples of ' +
      'the sources they select (as metricsSummary), computed again when samples of those sources are ' +
      'inserted in the window (and on any update or delete there).',
    args: {
      window: t.arg({ type: 'Duration', required: true, description: 'How far back from now, e.g. "1h".' }),
      ...sourceFilterArguments,
    },
    extensions: { [SHARED_EVENTS]: true },
    subscribe: (_root, { window, ...sources }, { live }) =>
      live.aggregates.summary(window, sourceFilterOf(sources)),
    resolve: (summary) => unlessFailed(summary),
  }),
);
