import { encodeGlobalID } from '@pothos/plugin-relay';
import { assertValidSchema, isObjectType, lexicographicSortSchema } from 'graphql';
import { builder } from '../builder.js';
import './date-time.js';
import './duration.js';
import './sort-order.js';
import './metric.js';
import './cpu-load-summary.js';
import './concurrency-summary.js';
import './metric-summary.js';
import './cpu-load-statistics.js';
import './concurrency-statistics.js';
import './metric-bucket.js';
import './ingest-result.js';

builder.queryType({ description: 'Reads are public.' });
builder.mutationType({ description: 'Writes require `Authorization: Bearer <INGEST_TOKEN>`.' });

export const schema = builder.toSchema();

// Pothos' relay plugin resolves every global id through an async function, so each node of a page
// completes through a promise: 20% of a 100-row page's CPU (bench/PROFILE.md). The same encoding,
// synchronously.
const metricId = (() => {
  const metric = schema.getType('Metric');
  return isObjectType(metric) ? metric.getFields().id : undefined;
})();
if (!metricId) throw new Error('Metric.id is missing from the schema');
metricId.resolve = (metric: { id: bigint }) => encodeGlobalID('Metric', String(metric.id));
// Fail at start-up, not on the first request, if the types do not form a valid schema.
assertValidSchema(schema);

/** The SDL committed as `schema.graphql`, sorted so that it diffs cleanly. */
export const sortedSchema = lexicographicSortSchema(schema);
