import type { MetricBucket } from '../domain/series.js';
import type { MetricSummary } from '../domain/summary.js';
import type { TimeRange } from '../domain/time.js';
import { Prisma } from '../generated/prisma/client.js';
import type { OperationScope } from '../observability/operation-scope.js';
import {
  type BucketRow,
  bucketOf,
  inTimeOrder,
  mergedSketch,
  seriesBuckets,
  sketchRelations,
  summaryOf,
  TOTALS,
  type WindowSketches,
  type WindowTotals,
  windowPartials,
} from './aggregate-sql.js';
import { CONCURRENCY_PERCENTILE, CPU_PERCENTILES, selectedPercentiles } from './exact-percentiles.js';
import type { KnownPartitions } from './known-partitions.js';
import { fastTimestamptzTypes } from './pg-timestamptz.js';
import { arrays, inSnapshot, raw, type Server } from './server.js';
import type { SourceSelection } from './source-filter.js';
import { METRICS, REVISION } from './tables.js';
import { rangeCondition } from './window-sql.js';

const METRICS_SQL = Prisma.raw(METRICS);
export const REVISION_SQL = Prisma.raw(REVISION);
/** PostgreSQL's SQLSTATE for a relation that does not exist. */
const UNDEFINED_TABLE = '42P01';

/** An answer and the revision of `metrics_revision` in the snapshot it was computed from. */
export interface AtRevision<T> {
  revision: string;
  value: T;
}

/** A window's totals and merged sketches, as one statement reads them. */
interface SummaryTotals extends WindowTotals {
  revision: string;
  cpu_keys: number[] | null;
  cpu_counts: number[] | null;
  concurrency_keys: number[] | null;
  concurrency_counts: number[] | null;
}

function sketchesOf(totals: SummaryTotals): WindowSketches {
  return {
    cpu: { keys: totals.cpu_keys ?? [], counts: totals.cpu_counts ?? [] },
    concurrency: { keys: totals.concurrency_keys ?? [], counts: totals.concurrency_counts ?? [] },
  };
}

/**
 * Counts, the revision, summaries and series, read on `reads` (the primary, or the standby reads
 * go to). `exactPercentileMaxRows`: summaries of at most this many rows get exact percentiles.
 */
export class Aggregates {
  constructor(
    private readonly reads: Server,
    private readonly known: KnownPartitions,
    private readonly exactPercentileMaxRows: number,
  ) {}

  /** The samples of `sources` in a window. */
  async count(range: TimeRange, sources: SourceSelection, scope?: OperationScope): Promise<number> {
    if (!sources.all && sources.ids.length === 0) return 0;
    const [row] = await raw<{ count: number }>(
      this.reads,
      'SELECT metrics',
      Prisma.sql`SELECT count(*)::int AS count FROM ${METRICS_SQL} ${rangeCondition(range, sources)}`,
      scope,
    );
    return row?.count ?? 0;
  }

  /** The current revision of the data in metrics (see the metrics_revision migration). */
  async revision(scope?: OperationScope): Promise<string> {
    const { rows } = await arrays<[revision: string]>(
      this.reads,
      'SELECT metrics_revision',
      `SELECT revision FROM ${REVISION}`,
      [],
      scope,
    );
    const [row] = rows;
    if (!row) throw new Error(`${REVISION} has no row: apply the migrations`);
    return row[0];
  }

  /**
   * Count, first and last, extremes, means and percentiles of `sources`' samples in a window, with the revision, all read
   * in one snapshot (a read-only REPEATABLE READ transaction; see aggregate-cache.ts). The window's
   * whole days, hours and minutes are read from the rollups and only its unaligned edges from raw
   * rows (see domain/rollup-plan.ts): count, extremes and means come out as a scan of raw rows
   * gives them. Percentiles are percentile_cont over raw rows when the window holds at most
   * `exactPercentileMaxRows` rows, all of them still stored; otherwise they come from the merged
   * sketches, within SKETCH_RELATIVE_ACCURACY (domain/quantile-sketch.ts). Each statement runs
   * only when the one before says it is needed: a query over the raw rows of a year is planned
   * over every partition, and its estimated cost alone made PostgreSQL JIT-compile it (5 s), so
   * JIT is off in this transaction too. cpu_load is stored as `real`, so its aggregates are
   * returned at `real` precision: a double would print float4 noise such as 0.30000001192092896
   * for a stored 0.3.
   */
  async summary(
    range: TimeRange,
    sources: SourceSelection,
    scope?: OperationScope,
  ): Promise<AtRevision<MetricSummary>> {
    const windowTotals = Prisma.sql`
    SELECT (SELECT revision FROM ${REVISION_SQL})::text AS revision, ${TOTALS}
      FROM (${windowPartials(range, sources)}) AS parts`;
    const exactSql = Prisma.sql`
    SELECT count(*)::int AS count,
           (percentile_cont(${[...CPU_PERCENTILES]}::float8[]) WITHIN GROUP (ORDER BY cpu_load))::real[] AS cpu_percentiles,
           percentile_cont(${CONCURRENCY_PERCENTILE}::float8) WITHIN GROUP (ORDER BY concurrency) AS concurrency_p95
      FROM ${METRICS_SQL} ${rangeCondition(range, sources)}`;
    // Totals and sketches in one statement: one round trip, one snapshot. The totals read the
    // window's rollups narrow, straight from the tables; the sketches read a run of more than 12
    // hours of a day as the day's row less its other hours (sketchRelations): 3 rows a source for
    // a day from an unaligned instant, where the totals read 22 hours.
    const totalsSql = Prisma.sql`
    WITH ${sketchRelations(range, sources)}
    SELECT * FROM (${windowTotals}) AS totals,
           (SELECT keys AS cpu_keys, counts AS cpu_counts FROM (${mergedSketch('cpu_load', { bySource: false })}) AS merged) AS cpu,
           (SELECT keys AS concurrency_keys, counts AS concurrency_counts FROM (${mergedSketch('concurrency', { bySource: false })}) AS merged) AS concurrency`;

    const read = (byName: boolean) =>
      inSnapshot(this.reads, async (query) => {
        const [totals] = await query<SummaryTotals>(totalsSql, scope);
        if (!totals) throw new Error('An aggregate query returned no row');
        if (totals.count === 0) {
          return { totals, exact: { count: 0, cpu_percentiles: [], concurrency_p95: null } };
        }
        if (totals.count > this.exactPercentileMaxRows) return { totals, exact: undefined };
        const selected = await selectedPercentiles(
          query,
          range,
          sketchesOf(totals),
          totals.count,
          byName ? this.known.ids : [],
          sources,
          scope,
        );
        if (selected) return { totals, exact: selected };
        const [exact] = await query<{
          count: number;
          cpu_percentiles: number[] | null;
          concurrency_p95: number | null;
        }>(exactSql, scope);
        // Fewer raw rows than the rollups count: some were dropped by retention.
        return { totals, exact: exact && exact.count === totals.count ? exact : undefined };
      });
    // A partition read by name was dropped since the last refresh (another instance's retention
    // pass): read again, through metrics only.
    const { totals, exact } = await read(true).catch((error: unknown) => {
      if ((error as { code?: unknown }).code === UNDEFINED_TABLE) return read(false);
      throw error;
    });
    return { revision: totals.revision, value: summaryOf(totals, sketchesOf(totals), exact) };
  }

  /**
   * Buckets of `bucketSeconds` aligned to the Unix epoch, of `sources`' samples; empty buckets are
   * absent. One query. A bucket that is a multiple of a minute reads the coarsest rollups whose
   * width divides it, and raw rows only for the window's unaligned edges; count, extremes and
   * means are those of the raw rows either way.
   */
  async series(
    range: Required<TimeRange>,
    bucketSeconds: number,
    sources: SourceSelection,
    scope?: OperationScope,
  ): Promise<AtRevision<MetricBucket[]>> {
    const sql = Prisma.sql`
    -- The revision in a row of its own, so that an empty series still has it.
    SELECT (SELECT revision FROM ${REVISION_SQL})::text AS revision, NULL::int AS source_id, NULL::timestamptz AS bucket,
           NULL::int AS count, NULL::int AS cpu_count, NULL::real AS cpu_min, NULL::real AS cpu_max,
           NULL::real AS cpu_avg, NULL::int AS concurrency_count, NULL::int AS concurrency_min,
           NULL::int AS concurrency_max, NULL::float8 AS concurrency_avg
    UNION ALL
    SELECT NULL, * FROM (${seriesBuckets(range, bucketSeconds, sources, false)}) AS buckets`;
    // As arrays, through pg: a year by hour is 8,760 rows, and Prisma's raw mapping of each cost
    // more than the query.
    const { rows } = await arrays<[revision: string | null, ...BucketRow]>(
      this.reads,
      'SELECT',
      sql.text,
      sql.values,
      scope,
      fastTimestamptzTypes,
    );
    let revision: string | null = null;
    const value: MetricBucket[] = [];
    for (const [rowRevision, ...bucket] of rows) {
      if (rowRevision !== null) revision = rowRevision;
      else value.push(bucketOf(bucket));
    }
    if (revision === null) throw new Error(`${REVISION} has no row: apply the migrations`);
    return { revision, value: inTimeOrder(value) };
  }
}
