import { type QuantileSketch, SKETCH_RELATIVE_ACCURACY, sketchQuantile } from '../domain/quantile-sketch.js';
import {
  levelsForBucket,
  levelWidthMs,
  ROLLUP_LEVELS,
  type RollupLevel,
  windowParts,
} from '../domain/rollup-plan.js';
import type { MetricBucket } from '../domain/series.js';
import type { MetricSummary } from '../domain/summary.js';
import type { TimeRange } from '../domain/time.js';
import { Prisma } from '../generated/prisma/client.js';
import type { OperationScope } from '../observability/operation-scope.js';
import { CPU_PERCENTILES, selectedPercentiles } from './exact-percentiles.js';
import type { KnownPartitions } from './known-partitions.js';
import { fastTimestamptzTypes } from './pg-timestamptz.js';
import { partialAggregates, rawRowsOf, rollupRowsOf } from './rollup-sql.js';
import { arrays, inSnapshot, raw, type Server } from './server.js';
import type { SourceSelection } from './source-filter.js';
import { METRICS, REVISION } from './tables.js';
import { rangeCondition } from './window-sql.js';

const METRICS_SQL = Prisma.raw(METRICS);
const REVISION_SQL = Prisma.raw(REVISION);
/** The rollup levels that keep percentile sketches (the migration 20261203000000_metric_rollups_hourly_sketches). */
const SKETCH_LEVELS: RollupLevel[] = ['day', 'hour'];
/** PostgreSQL's SQLSTATE for a relation that does not exist. */
const UNDEFINED_TABLE = '42P01';

/** An answer and the revision of `metrics_revision` in the snapshot it was computed from. */
export interface AtRevision<T> {
  revision: string;
  value: T;
}

/** A window's totals and merged sketches, as one statement reads them. */
interface SummaryTotals {
  revision: string;
  count: number;
  first: Date | null;
  last: Date | null;
  cpu_count: number;
  cpu_min: number | null;
  cpu_max: number | null;
  cpu_avg: number | null;
  concurrency_count: number;
  concurrency_min: number | null;
  concurrency_max: number | null;
  concurrency_avg: number | null;
  cpu_keys: number[] | null;
  cpu_counts: number[] | null;
  concurrency_keys: number[] | null;
  concurrency_counts: number[] | null;
}

function sketchesOf(totals: SummaryTotals): { cpu: QuantileSketch; concurrency: QuantileSketch } {
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
    const parts = windowParts(
      range,
      ROLLUP_LEVELS.map(({ level }) => level),
    );
    // Minutes carry no sketch: the sketches come from whole hours and days, and the raw rows of
    // the rest of the window (under an hour at either end). The whole hours and days are the same
    // with minutes as a level or without (windowParts), so they are read once, for both.
    const sketchParts = windowParts(range, SKETCH_LEVELS);
    const window = Prisma.sql`
      raw AS MATERIALIZED (${rawRowsOf(parts, sources)}),
      sketch_raw AS MATERIALIZED (${rawRowsOf(sketchParts, sources)}),
      rolled AS MATERIALIZED (${rollupRowsOf(sketchParts, sources)}),
      minutes AS MATERIALIZED (${rollupRowsOf(
        parts.filter(({ source }) => source === 'minute'),
        sources,
      )})`;
    const windowTotals = Prisma.sql`
    SELECT (SELECT revision FROM ${REVISION_SQL})::text AS revision,
           coalesce(sum(n), 0)::int AS count, min(first) AS first, max(last) AS last,
           coalesce(sum(cpu_n), 0)::int AS cpu_count, min(cpu_min) AS cpu_min, max(cpu_max) AS cpu_max,
           (sum(cpu_sum) / nullif(sum(cpu_n), 0)::float8)::real AS cpu_avg,
           coalesce(sum(concurrency_n), 0)::int AS concurrency_count, min(concurrency_min) AS concurrency_min,
           max(concurrency_max) AS concurrency_max, (sum(concurrency_sum) / nullif(sum(concurrency_n), 0))::float8 AS concurrency_avg
      FROM (${partialAggregates(
        Prisma.sql`SELECT * FROM rolled UNION ALL SELECT * FROM minutes`,
        Prisma.sql`SELECT * FROM raw`,
      )}) AS parts`;
    const exactSql = Prisma.sql`
    SELECT count(*)::int AS count,
           (percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY cpu_load))::real[] AS cpu_percentiles,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY concurrency) AS concurrency_p95
      FROM ${METRICS_SQL} ${rangeCondition(range, sources)}`;
    const sketch = (column: 'cpu_load' | 'concurrency') => Prisma.sql`
      SELECT array_agg(key ORDER BY key) AS keys, array_agg(n ORDER BY key) AS counts
        FROM (SELECT key, sum(n)::float8 AS n
                FROM (SELECT s.key, s.n FROM rolled, unnest(${Prisma.raw(`${column}_sketch_keys`)}, ${Prisma.raw(`${column}_sketch_counts`)}) AS s(key, n)
                      UNION ALL
                      SELECT metric_sketch_key(${Prisma.raw(column)}), 1 FROM sketch_raw
                       WHERE ${Prisma.raw(column)} IS NOT NULL) AS keyed
               GROUP BY key) AS merged`;
    // Totals and sketches in one statement: one round trip, one snapshot.
    const totalsSql = Prisma.sql`
    WITH ${window}
    SELECT * FROM (${windowTotals}) AS totals,
           (SELECT keys AS cpu_keys, counts AS cpu_counts FROM (${sketch('cpu_load')}) AS merged) AS cpu,
           (SELECT keys AS concurrency_keys, counts AS concurrency_counts FROM (${sketch('concurrency')}) AS merged) AS concurrency`;

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
    let percentiles: { cpu: (number | null)[]; concurrencyP95: number | null };
    if (exact) {
      percentiles = { cpu: exact.cpu_percentiles ?? [], concurrencyP95: exact.concurrency_p95 };
    } else {
      const { cpu, concurrency } = sketchesOf(totals);
      percentiles = {
        cpu: CPU_PERCENTILES.map((fraction) => sketchQuantile(cpu, fraction)),
        concurrencyP95: sketchQuantile(concurrency, 0.95),
      };
    }
    const [p50 = null, p95 = null, p99 = null] = percentiles.cpu;
    return {
      revision: totals.revision,
      value: {
        count: totals.count,
        firstTimestamp: totals.first,
        lastTimestamp: totals.last,
        cpuLoad: {
          count: totals.cpu_count,
          min: totals.cpu_min,
          max: totals.cpu_max,
          avg: totals.cpu_avg,
          p50,
          p95,
          p99,
        },
        concurrency: {
          count: totals.concurrency_count,
          min: totals.concurrency_min,
          max: totals.concurrency_max,
          avg: totals.concurrency_avg,
          p95: percentiles.concurrencyP95,
        },
        percentilesExact: exact !== undefined,
        percentileRelativeError: exact ? 0 : SKETCH_RELATIVE_ACCURACY,
      },
    };
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
    const parts = windowParts(range, levelsForBucket(bucketSeconds));
    // Rollup rows as wide as the bucket (one per source) are summed by bucket; the rest (finer
    // rollups and raw rows at the window's edges) is grouped into buckets.
    const whole = parts.filter(
      ({ source }) => source !== 'raw' && levelWidthMs(source) === bucketSeconds * 1000,
    );
    const grouped = parts.filter((part) => !whole.includes(part));
    // Of one source, a whole rollup row is its bucket: nothing to sum.
    const wholeBuckets =
      !sources.all && sources.ids.length === 1
        ? Prisma.sql`
    SELECT NULL, bucket, row_count::int, cpu_load_count::int, cpu_load_min, cpu_load_max,
           (cpu_load_sum / nullif(cpu_load_count, 0)::float8)::real, concurrency_count::int,
           concurrency_min, concurrency_max,
           (concurrency_sum::numeric / nullif(concurrency_count, 0)::numeric)::float8
      FROM (${rollupRowsOf(whole, sources)}) AS whole`
        : Prisma.sql`
    SELECT NULL, bucket, sum(row_count)::int, sum(cpu_load_count)::int, min(cpu_load_min), max(cpu_load_max),
           (sum(cpu_load_sum) / nullif(sum(cpu_load_count), 0)::float8)::real, sum(concurrency_count)::int,
           min(concurrency_min), max(concurrency_max),
           (sum(concurrency_sum)::numeric / nullif(sum(concurrency_count), 0)::numeric)::float8
      FROM (${rollupRowsOf(whole, sources)}) AS whole
     GROUP BY bucket`;
    const sql = Prisma.sql`
    -- The revision in a row of its own, so that an empty series still has it.
    SELECT (SELECT revision FROM ${REVISION_SQL})::text AS revision, NULL::timestamptz AS bucket,
           NULL::int AS count, NULL::int AS cpu_count, NULL::real AS cpu_min, NULL::real AS cpu_max,
           NULL::real AS cpu_avg, NULL::int AS concurrency_count, NULL::int AS concurrency_min,
           NULL::int AS concurrency_max, NULL::float8 AS concurrency_avg
    UNION ALL${wholeBuckets}
    UNION ALL
    SELECT NULL, date_bin(make_interval(secs => ${bucketSeconds}::int), at, TIMESTAMPTZ 'epoch'),
           sum(n)::int, sum(cpu_n)::int, min(cpu_min), max(cpu_max), (sum(cpu_sum) / nullif(sum(cpu_n), 0)::float8)::real,
           sum(concurrency_n)::int, min(concurrency_min), max(concurrency_max),
           (sum(concurrency_sum) / nullif(sum(concurrency_n), 0))::float8
      FROM (${partialAggregates(rollupRowsOf(grouped, sources), rawRowsOf(grouped, sources))}) AS parts
     GROUP BY 2`;
    // As arrays, through pg: a year by hour is 8,760 rows, and Prisma's raw mapping of each cost
    // more than the query.
    const { rows } = await arrays<
      [
        revision: string | null,
        bucket: Date | null,
        count: number,
        cpuCount: number,
        cpuMin: number | null,
        cpuMax: number | null,
        cpuAvg: number | null,
        concurrencyCount: number,
        concurrencyMin: number | null,
        concurrencyMax: number | null,
        concurrencyAvg: number | null,
      ]
    >(this.reads, 'SELECT', sql.text, sql.values, scope, fastTimestamptzTypes);
    let revision: string | null = null;
    const value: MetricBucket[] = [];
    for (const [
      rowRevision,
      bucket,
      count,
      cpuCount,
      cpuMin,
      cpuMax,
      cpuAvg,
      concurrencyCount,
      concurrencyMin,
      concurrencyMax,
      concurrencyAvg,
    ] of rows) {
      if (bucket === null) {
        revision = rowRevision;
        continue;
      }
      value.push({
        start: bucket,
        count,
        cpuLoad: { count: cpuCount, min: cpuMin, max: cpuMax, avg: cpuAvg },
        concurrency: {
          count: concurrencyCount,
          min: concurrencyMin,
          max: concurrencyMax,
          avg: concurrencyAvg,
        },
      });
    }
    if (revision === null) throw new Error(`${REVISION} has no row: apply the migrations`);
    // Whole rollup rows come mostly in bucket order and the edges' groups after them: nearly
    // sorted, which Array#sort (TimSort) takes in one pass.
    value.sort((a, b) => a.start.getTime() - b.start.getTime());
    return { revision, value };
  }
}
