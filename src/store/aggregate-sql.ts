import { type QuantileSketch, SKETCH_RELATIVE_ACCURACY, sketchQuantile } from '../domain/quantile-sketch.js';
import {
  levelsForBucket,
  levelWidthMs,
  ROLLUP_LEVELS,
  type RollupLevel,
  type WindowPart,
  windowParts,
} from '../domain/rollup-plan.js';
import type { MetricBucket } from '../domain/series.js';
import type { MetricSummary } from '../domain/summary.js';
import type { TimeRange } from '../domain/time.js';
import { Prisma } from '../generated/prisma/client.js';
import { CONCURRENCY_PERCENTILE, CPU_PERCENTILES } from './exact-percentiles.js';
import { partialAggregates, rawRowsOf, rollupRowsOf, sketchTailsOf } from './rollup-sql.js';
import type { SourceSelection } from './source-filter.js';

/**
 * The SQL summaries and series are made of, over all their sources together (Aggregates) or by
 * source (SourceAggregates): one way to read a window, total it, merge its sketches and bucket it.
 */

/** The rollup levels that keep percentile sketches (the migration 20261203000000_metric_rollups_hourly_sketches). */
const SKETCH_LEVELS: RollupLevel[] = ['day', 'hour'];

/**
 * Every sample of a window once, as partial aggregates: its whole days, hours and minutes from the
 * rollups, its edges from raw rows. Read straight from the tables, apart from the relations its
 * sketches are merged from (sketchRelations): a summary's totals by source over 65,000 rollup rows
 * took half the time of reading them from materialized copies with their sketches.
 */
export function windowPartials(range: TimeRange, sources: SourceSelection): Prisma.Sql {
  const parts = windowParts(
    range,
    ROLLUP_LEVELS.map(({ level }) => level),
  );
  return partialAggregates(rollupRowsOf(parts, sources), rawRowsOf(parts, sources));
}

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/**
 * The rollup rows whose sketches make a window's, as sketches to add and to take away: a run of
 * more than 12 whole hours within one day is its day's row less the day's other hours (a sketch
 * holds counts, which subtract exactly). Every other part as windowParts gives it. The 23 hours of
 * a day that a window from 00:17 to 00:17 the next day holds are 2 rows a source, not 23.
 */
function sketchRollups(range: TimeRange): { add: WindowPart[]; subtract: WindowPart[] } {
  const add: WindowPart[] = [];
  const subtract: WindowPart[] = [];
  for (const part of windowParts(range, SKETCH_LEVELS)) {
    const { start, end } = part;
    if (part.source !== 'hour' || !start || !end) {
      add.push(part);
      continue;
    }
    for (let from = start.getTime(); from < end.getTime(); ) {
      const day = Math.floor(from / DAY_MS) * DAY_MS;
      const to = Math.min(end.getTime(), day + DAY_MS);
      if (to - from > 12 * HOUR_MS) {
        add.push({ source: 'day', start: new Date(day), end: new Date(day + DAY_MS) });
        if (from > day) subtract.push({ source: 'hour', start: new Date(day), end: new Date(from) });
        if (to < day + DAY_MS)
          subtract.push({ source: 'hour', start: new Date(to), end: new Date(day + DAY_MS) });
      } else {
        add.push({ source: 'hour', start: new Date(from), end: new Date(to) });
      }
      from = to;
    }
  }
  return { add, subtract };
}

/**
 * The relations the sketches of a window are merged from, as WITH clauses: `sketch_raw`, the raw
 * rows of what whole days and hours leave (minutes carry no sketch); `rolled`, the hour and day
 * rows, with a whole day for a long run of hours; and `unrolled`, the hour rows to take away
 * (sketchRollups).
 */
export function sketchRelations(range: TimeRange, sources: SourceSelection): Prisma.Sql {
  const { add, subtract } = sketchRollups(range);
  return Prisma.sql`
      sketch_raw AS MATERIALIZED (${rawRowsOf(add, sources)}),
      rolled AS MATERIALIZED (${rollupRowsOf(add, sources)}),
      unrolled AS MATERIALIZED (${rollupRowsOf(subtract, sources)})`;
}

/**
 * The sketch tails (sketchTailsOf) of the rows holding every value a window's sketches merge
 * (sketchRelations), by weight: 1, the rows it adds (whole days and hours); 0, for its raw edges,
 * the hours they lie in, which hold more, unless a day it adds holds them; -1, the hours it takes
 * away from a day, which that day's row holds. The weighted sum of the rows' counts is the count
 * of the merged sketch less its raw edges', and the tails of the rows of weight 0 and 1 bound its
 * percentiles (quantileUpperBound): a row holding more values than the sketch bounds them still,
 * less tightly. These are the fewest rows holding the window's values (a day less an hour is two
 * rows, not 23): an hour row costs about as much to read as its tails save.
 */
export function sketchTails(range: TimeRange, sources: SourceSelection, column: SketchColumn): Prisma.Sql {
  const { add, subtract } = sketchRollups(range);
  const within = (inner: WindowPart, outer: WindowPart) =>
    !!(outer.start && outer.end && inner.start && inner.end) &&
    outer.start <= inner.start &&
    inner.end <= outer.end;
  const days = add.filter(({ source }) => source === 'day');
  const edgeHours = add
    .filter(({ source }) => source === 'raw')
    .map(
      ({ start, end }): WindowPart => ({
        source: 'hour',
        start: start && new Date(Math.floor(start.getTime() / HOUR_MS) * HOUR_MS),
        end: end && new Date(Math.ceil(end.getTime() / HOUR_MS) * HOUR_MS),
      }),
    )
    .filter((hour) => !days.some((day) => within(hour, day)));
  const rows = [
    ...sketchTailsOf(add, sources, column, 1),
    ...sketchTailsOf(edgeHours, sources, column, 0),
    ...sketchTailsOf(subtract, sources, column, -1),
  ];
  return rows.length > 0
    ? Prisma.join(rows, ' UNION ALL ')
    : Prisma.sql`SELECT 0 AS source_id, 0 AS weight, '{}'::integer[] AS tail WHERE false`;
}

/** A window's totals, as TOTALS reads them. */
export interface WindowTotals {
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
}

/**
 * The totals of partial aggregates: count, first and last, and each value's count, extremes and
 * mean over the samples holding it. cpu_load is stored as `real`, so its aggregates are returned at
 * `real` precision: a double would print float4 noise such as 0.30000001192092896 for a stored 0.3.
 */
export const TOTALS = Prisma.sql`
           coalesce(sum(n), 0)::int AS count, min(first) AS first, max(last) AS last,
           coalesce(sum(cpu_n), 0)::int AS cpu_count, min(cpu_min) AS cpu_min, max(cpu_max) AS cpu_max,
           (sum(cpu_sum) / nullif(sum(cpu_n), 0)::float8)::real AS cpu_avg,
           coalesce(sum(concurrency_n), 0)::int AS concurrency_count, min(concurrency_min) AS concurrency_min,
           max(concurrency_max) AS concurrency_max, (sum(concurrency_sum) / nullif(sum(concurrency_n), 0))::float8 AS concurrency_avg`;

export type SketchColumn = 'cpu_load' | 'concurrency';

/**
 * The sketch keys of `column` in sketchRelations' `rolled` and `sketch_raw`, less those of its
 * `unrolled`: source_id, key, n (how many values the key holds in that row; fewer when negative).
 * Summed by key, they are the window's sketch, and a key whose sum is 0 holds none of its values.
 */
export function sketchKeys(column: SketchColumn): Prisma.Sql {
  const keys = Prisma.raw(`${column}_sketch_keys`);
  const counts = Prisma.raw(`${column}_sketch_counts`);
  return Prisma.sql`
      SELECT source_id, s.key, s.n FROM rolled, unnest(${keys}, ${counts}) AS s(key, n)
      UNION ALL
      SELECT source_id, metric_sketch_key(${Prisma.raw(column)}), 1 FROM sketch_raw WHERE ${Prisma.raw(column)} IS NOT NULL
      UNION ALL
      SELECT source_id, s.key, -s.n FROM unrolled, unnest(${keys}, ${counts}) AS s(key, n)`;
}

/**
 * The window's merged sketch of `column`, keys and counts in key order: over every source, or
 * one row a source (with its source_id) when `bySource`. A key whose values were all subtracted
 * (its sum is 0) is left out.
 */
export function mergedSketch(column: SketchColumn, { bySource }: { bySource: boolean }): Prisma.Sql {
  const source = bySource ? Prisma.sql`source_id, ` : Prisma.empty;
  return Prisma.sql`
      SELECT ${source}array_agg(key ORDER BY key) AS keys, array_agg(n ORDER BY key) AS counts
        FROM (SELECT ${source}key, sum(n)::float8 AS n FROM (${sketchKeys(column)}) AS keyed
               GROUP BY ${source}key HAVING sum(n) > 0) AS merged
       ${bySource ? Prisma.sql`GROUP BY source_id` : Prisma.empty}`;
}

/** A window's sketches. */
export interface WindowSketches {
  cpu: QuantileSketch;
  concurrency: QuantileSketch;
}

/**
 * A summary from its totals and sketches, with `exact` percentiles when they were computed from
 * the raw rows (else the sketches').
 */
export function summaryOf(
  totals: WindowTotals,
  { cpu, concurrency }: WindowSketches,
  exact?: { cpu_percentiles: (number | null)[] | null; concurrency_p95: number | null },
): MetricSummary {
  const percentiles = exact
    ? { cpu: exact.cpu_percentiles ?? [], concurrencyP95: exact.concurrency_p95 }
    : {
        cpu: CPU_PERCENTILES.map((fraction) => sketchQuantile(cpu, fraction)),
        concurrencyP95: sketchQuantile(concurrency, CONCURRENCY_PERCENTILE),
      };
  const [p50 = null, p95 = null, p99 = null] = percentiles.cpu;
  return {
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
  };
}

/**
 * The buckets of a series of `bucketSeconds` aligned to the Unix epoch, as rows of BucketRow's
 * columns (`source_id` NULL unless `bySource`). A bucket that is a multiple
 * of a minute reads the coarsest rollups whose width divides it, and raw rows only for the
 * window's unaligned edges; count, extremes and means are those of the raw rows either way.
 */
export function seriesBuckets(
  range: Required<TimeRange>,
  bucketSeconds: number,
  sources: SourceSelection,
  bySource: boolean,
): Prisma.Sql {
  const parts = windowParts(range, levelsForBucket(bucketSeconds));
  // Rollup rows as wide as the bucket (one per source) are summed by bucket; the rest (finer
  // rollups and raw rows at the window's edges) is grouped into buckets.
  const whole = parts.filter(
    ({ source }) => source !== 'raw' && levelWidthMs(source) === bucketSeconds * 1000,
  );
  const grouped = parts.filter((part) => !whole.includes(part));
  const source = bySource ? Prisma.sql`source_id` : Prisma.sql`NULL::int`;
  // Summed even of one source: an hour or day may be in several rows (its parts).
  const wholeBuckets = Prisma.sql`
    SELECT ${source} AS source_id, bucket, sum(row_count)::int AS count, sum(cpu_load_count)::int AS cpu_count,
           min(cpu_load_min) AS cpu_min, max(cpu_load_max) AS cpu_max,
           (sum(cpu_load_sum) / nullif(sum(cpu_load_count), 0)::float8)::real AS cpu_avg,
           sum(concurrency_count)::int AS concurrency_count, min(concurrency_min) AS concurrency_min,
           max(concurrency_max) AS concurrency_max,
           (sum(concurrency_sum)::numeric / nullif(sum(concurrency_count), 0)::numeric)::float8 AS concurrency_avg
      FROM (${rollupRowsOf(whole, sources)}) AS whole
     GROUP BY ${bySource ? Prisma.sql`1, 2` : Prisma.sql`2`}`;
  return Prisma.sql`${wholeBuckets}
    UNION ALL
    SELECT ${source}, date_bin(make_interval(secs => ${bucketSeconds}::int), at, TIMESTAMPTZ 'epoch'),
           sum(n)::int, sum(cpu_n)::int, min(cpu_min), max(cpu_max), (sum(cpu_sum) / nullif(sum(cpu_n), 0)::float8)::real,
           sum(concurrency_n)::int, min(concurrency_min), max(concurrency_max),
           (sum(concurrency_sum) / nullif(sum(concurrency_n), 0))::float8
      FROM (${partialAggregates(rollupRowsOf(grouped, sources), rawRowsOf(grouped, sources))}) AS parts
     GROUP BY ${bySource ? Prisma.sql`1, 2` : Prisma.sql`2`}`;
}

/** A row of seriesBuckets, as arrays. */
export type BucketRow = [
  sourceId: number | null,
  bucket: Date,
  count: number,
  cpuCount: number,
  cpuMin: number | null,
  cpuMax: number | null,
  cpuAvg: number | null,
  concurrencyCount: number,
  concurrencyMin: number | null,
  concurrencyMax: number | null,
  concurrencyAvg: number | null,
];

export function bucketOf([
  ,
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
]: BucketRow): MetricBucket {
  return {
    start: bucket,
    count,
    cpuLoad: { count: cpuCount, min: cpuMin, max: cpuMax, avg: cpuAvg },
    concurrency: { count: concurrencyCount, min: concurrencyMin, max: concurrencyMax, avg: concurrencyAvg },
  };
}

/**
 * Buckets in time order. Whole rollup rows come mostly in bucket order and the edges' groups after
 * them: nearly sorted, which Array#sort (TimSort) takes in one pass.
 */
export function inTimeOrder(buckets: MetricBucket[]): MetricBucket[] {
  return buckets.sort((a, b) => a.start.getTime() - b.start.getTime());
}
