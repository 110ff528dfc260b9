import type { StoredMetric } from '../domain/metric.js';
import type { OperationScope } from '../observability/operation-scope.js';
import { fastTimestamptzTypes } from './pg-timestamptz.js';
import { arrays, type Server } from './server.js';
import { METRICS } from './tables.js';

/** The columns of a stored sample, selected in StoredMetric's order. */
export const METRIC_COLUMNS = 'id, source_id, "timestamp", cpu_load, concurrency';

/** A row of `SELECT ${METRIC_COLUMNS}`, as arrays (rowMode: 'array'). */
type MetricRow = [
  id: string,
  sourceId: number,
  timestamp: Date,
  cpuLoad: number | null,
  concurrency: number | null,
];

function storedMetric([id, sourceId, timestamp, cpuLoad, concurrency]: MetricRow): StoredMetric {
  return { id: BigInt(id), sourceId, timestamp, cpuLoad, concurrency };
}

/**
 * Stored samples as `SELECT ${METRIC_COLUMNS} FROM ${from}` and `rest` (its WHERE, ORDER BY and
 * LIMIT, with `values`) reads them on `on`: the one statement shape of pages, lookups by id and the
 * change feed's reads. `from` is metrics, or a relation of its rows (a page of a few sources).
 */
export async function selectMetrics(
  on: Server,
  rest: string,
  values: unknown[],
  scope: OperationScope | undefined,
  from: string = METRICS,
): Promise<StoredMetric[]> {
  const { rows } = await arrays<MetricRow>(
    on,
    'SELECT metrics',
    `SELECT ${METRIC_COLUMNS} FROM ${from}${rest}`,
    values,
    scope,
    fastTimestamptzTypes,
  );
  return rows.map(storedMetric);
}
