import { assertValidSchema, lexicographicSortSchema } from 'graphql';
import { builder } from './builder.js';
import './types/query.js';
import './types/mutation.js';
import './types/subscription.js';
import './types/date-time.js';
import './types/duration.js';
import './types/sort-order.js';
import './types/metric.js';
import './types/node.js';
import './types/metric-connection.js';
import './types/cpu-load-summary.js';
import './types/concurrency-summary.js';
import './types/metric-summary.js';
import './types/cpu-load-statistics.js';
import './types/concurrency-statistics.js';
import './types/metric-bucket.js';
import './types/source-arguments.js';
import './types/source.js';
import './types/source-summaries.js';
import './types/ingest-conflict-policy.js';
import './types/metric-input.js';
import './types/ingest-rejection.js';
import './types/ingest-result.js';
import './types/ingest-metrics.js';
import './types/metric-added.js';
import './types/live-metric-series.js';
import './types/live-metrics-summary.js';

export const schema = builder.toSchema();

// Fail at start-up, not on the first request, if the types do not form a valid schema.
assertValidSchema(schema);

/** The SDL committed as `schema.graphql`, sorted so that it diffs cleanly. */
export const sortedSchema = lexicographicSortSchema(schema);
