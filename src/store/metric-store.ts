import { type PrismaClient, pgPoolOf } from '../database.js';
import type { Metric } from '../generated/prisma/client.js';
import { Prisma } from '../generated/prisma/client.js';
import type { AtRevision } from './aggregate-cache.js';
import { fastTimestamptzTypes } from './pg-timestamptz.js';

export type SortDirection = 'asc' | 'desc';

export interface KeysetPage {
  timestamp: Prisma.DateTimeFilter;
  direction: SortDirection;
  take: number;
}

const OPERATORS = [
  ['gt', '>'],
  ['gte', '>='],
  ['lt', '<'],
  ['lte', '<='],
] as const;

/**
 * The SQL of a keyset page: rows matching `timestamp`, in `direction`, at most `take`. Callers
 * express the cursor as another bound on `timestamp`, so Postgres answers every page, however
 * deep, with one range scan of the unique timestamp index.
 */
export function keysetPageQuery({ timestamp, direction, take }: KeysetPage): {
  text: string;
  values: unknown[];
} {
  const values: unknown[] = [take];
  const conditions: string[] = [];
  for (const [key, operator] of OPERATORS) {
    const bound = timestamp[key];
    if (bound === undefined) continue;
    values.push(bound);
    conditions.push(`"timestamp" ${operator} $${values.length}`);
  }
  const where = conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : '';
  const order = direction === 'asc' ? 'ASC' : 'DESC';
  return {
    text: `SELECT id, "timestamp", cpu_load, concurrency FROM metrics${where} ORDER BY "timestamp" ${order} LIMIT $1`,
    values,
  };
}

/** Runs a keyset page on the client's pg pool (see `pgPoolOf` for why not through Prisma). */
export async function findMetricsPage(prisma: PrismaClient, page: KeysetPage): Promise<Metric[]> {
  // Rows as arrays: pg would otherwise build an object per row only for it to be mapped here.
  const { rows } = await pgPoolOf(prisma).query<
    [id: string, timestamp: Date, cpuLoad: number, concurrency: number]
  >({
    ...keysetPageQuery(page),
    rowMode: 'array',
    types: fastTimestamptzTypes,
  });
  return rows.map(([id, timestamp, cpuLoad, concurrency]) => ({
    id: BigInt(id),
    timestamp,
    cpuLoad,
    concurrency,
  }));
}

/** The current revision of the data in metrics (see the metrics_revision migration). */
export async function metricsRevision(prisma: PrismaClient): Promise<string> {
  const { rows } = await pgPoolOf(prisma).query<[revision: string]>({
    text: 'SELECT revision FROM metrics_revision',
    rowMode: 'array',
  });
  const [row] = rows;
  if (!row) throw new Error('metrics_revision has no row: apply the migrations');
  return row[0];
}

export function countMetrics(prisma: PrismaClient, timestamp: Prisma.DateTimeFilter): Promise<number> {
  return prisma.metric.count({ where: { timestamp } });
}

export interface TimeWindow {
  /** Inclusive. */
  start?: Date | undefined;
  /** Exclusive. */
  end?: Date | undefined;
}

function windowCondition({ start, end }: TimeWindow): Prisma.Sql {
  const conditions = [
    start ? Prisma.sql`"timestamp" >= ${start}` : undefined,
    end ? Prisma.sql`"timestamp" < ${end}` : undefined,
  ].filter((condition) => condition !== undefined);
  return conditions.length > 0 ? Prisma.sql`WHERE ${Prisma.join(conditions, ' AND ')}` : Prisma.empty;
}

export interface MetricSummaryRow {
  count: number;
  firstTimestamp: Date | null;
  lastTimestamp: Date | null;
  cpuLoad: {
    min: number | null;
    max: number | null;
    avg: number | null;
    p50: number | null;
    p95: number | null;
    p99: number | null;
  };
  concurrency: { min: number | null; max: number | null; avg: number | null; p95: number | null };
}

/**
 * Count, extremes, means and percentiles (linear interpolation, `percentile_cont`) in one query.
 * cpu_load is stored as `real`, so its aggregates are returned at `real` precision: a double
 * would print float4 noise such as 0.30000001192092896 for a stored 0.3.
 */
export async function summarizeMetrics(
  prisma: PrismaClient,
  window: TimeWindow,
): Promise<AtRevision<MetricSummaryRow>> {
  const [row] = await prisma.$queryRaw<
    {
      revision: string;
      count: number;
      first: Date | null;
      last: Date | null;
      cpu_min: number | null;
      cpu_max: number | null;
      cpu_avg: number | null;
      cpu_percentiles: number[] | null;
      concurrency_min: number | null;
      concurrency_max: number | null;
      concurrency_avg: number | null;
      concurrency_p95: number | null;
    }[]
  >`
    -- The revision in the same snapshot as the aggregates (see aggregate-cache.ts).
    SELECT (SELECT revision FROM metrics_revision)::text AS revision,
           count(*)::int AS count,
           min("timestamp") AS first,
           max("timestamp") AS last,
           min(cpu_load) AS cpu_min,
           max(cpu_load) AS cpu_max,
           avg(cpu_load)::real AS cpu_avg,
           (percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY cpu_load))::real[] AS cpu_percentiles,
           min(concurrency) AS concurrency_min,
           max(concurrency) AS concurrency_max,
           avg(concurrency)::float8 AS concurrency_avg,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY concurrency) AS concurrency_p95
      FROM metrics ${windowCondition(window)}`;
  if (!row) throw new Error('An aggregate query returned no row');
  const [p50 = null, p95 = null, p99 = null] = row.cpu_percentiles ?? [];
  return {
    revision: row.revision,
    value: {
      count: row.count,
      firstTimestamp: row.first,
      lastTimestamp: row.last,
      cpuLoad: { min: row.cpu_min, max: row.cpu_max, avg: row.cpu_avg, p50, p95, p99 },
      concurrency: {
        min: row.concurrency_min,
        max: row.concurrency_max,
        avg: row.concurrency_avg,
        p95: row.concurrency_p95,
      },
    },
  };
}

export interface MetricBucketRow {
  start: Date;
  count: number;
  cpuLoad: { min: number; max: number; avg: number };
  concurrency: { min: number; max: number; avg: number };
}

/** Buckets of `bucketSeconds` aligned to the Unix epoch; empty buckets are absent. One query. */
export async function metricSeries(
  prisma: PrismaClient,
  window: Required<TimeWindow>,
  bucketSeconds: number,
): Promise<AtRevision<MetricBucketRow[]>> {
  const rows = await prisma.$queryRaw<
    {
      revision: string;
      bucket: Date | null;
      count: number;
      cpu_min: number;
      cpu_max: number;
      cpu_avg: number;
      concurrency_min: number;
      concurrency_max: number;
      concurrency_avg: number;
    }[]
  >`
    SELECT current.revision::text AS revision, buckets.*
      FROM metrics_revision AS current
      -- A left join, so an empty series still returns its revision (one row with no bucket).
      LEFT JOIN LATERAL (
        SELECT date_bin(make_interval(secs => ${bucketSeconds}::int), "timestamp", TIMESTAMPTZ 'epoch') AS bucket,
               count(*)::int AS count,
               min(cpu_load) AS cpu_min,
               max(cpu_load) AS cpu_max,
               avg(cpu_load)::real AS cpu_avg,
               min(concurrency) AS concurrency_min,
               max(concurrency) AS concurrency_max,
               avg(concurrency)::float8 AS concurrency_avg
          FROM metrics ${windowCondition(window)}
         GROUP BY bucket
      ) AS buckets ON true
     ORDER BY buckets.bucket`;
  const [first] = rows;
  if (!first) throw new Error('metrics_revision has no row: apply the migrations');
  return {
    revision: first.revision,
    value: rows.flatMap(({ bucket, ...row }) =>
      bucket === null
        ? []
        : [
            {
              start: bucket,
              count: row.count,
              cpuLoad: { min: row.cpu_min, max: row.cpu_max, avg: row.cpu_avg },
              concurrency: { min: row.concurrency_min, max: row.concurrency_max, avg: row.concurrency_avg },
            },
          ],
    ),
  };
}
