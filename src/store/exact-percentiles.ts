import { percentileSelection, type QuantileSketch } from '../domain/quantile-sketch.js';
import type { TimeRange } from '../domain/time.js';
import { Prisma } from '../generated/prisma/client.js';
import type { OperationScope } from '../observability/operation-scope.js';
import type { Partition } from './metric-partitions.js';
import type { SnapshotQuery } from './server.js';
import type { SourceSelection } from './source-filter.js';
import { rowsOf } from './window-sql.js';

/** The percentiles of cpu_load a summary gives, in this order: p50, p95, p99. */
export const CPU_PERCENTILES = [0.5, 0.95, 0.99] as const;
/** The percentile of concurrency a summary gives: p95. */
export const CONCURRENCY_PERCENTILE = 0.95;

/**
 * `value` cast to real and read back as pg reads a real: PostgreSQL prints the shortest decimal
 * that reads back as the same float4.
 */
function asReal(value: number): number {
  const real = Math.fround(value);
  for (let digits = 1; digits < 9; digits++) {
    const shortest = Number(real.toPrecision(digits));
    if (Math.fround(shortest) === real) return shortest;
  }
  return Number(real.toPrecision(9));
}

const FLOAT4 = new Float32Array(1);
const FLOAT4_BITS = new Int32Array(FLOAT4.buffer);

/**
 * The largest float4 at or below `value`. For every float4 x, x > value exactly when
 * x > realAtOrBelow(value), and x <= value exactly when x <= realAtOrBelow(value).
 */
function realAtOrBelow(value: number): number {
  FLOAT4[0] = value;
  const rounded = FLOAT4[0] as number;
  if (rounded <= value) return rounded;
  // One float4 step towards -Infinity: the bit pattern's magnitude down for a positive value, up for a negative one.
  FLOAT4_BITS[0] = (FLOAT4_BITS[0] as number) + (rounded > 0 ? -1 : 1);
  return FLOAT4[0] as number;
}

/**
 * `column` inside any of `ranges` (`above` exclusive, `upTo` inclusive), as nested conditions in
 * ascending order: a value below the first range is refused by one comparison, and each range
 * passed costs one more, instead of two comparisons per range for every value.
 */
function withinAny(
  column: string,
  ranges: readonly { above: number; upTo: number }[],
  bound: (value: number) => Prisma.Sql,
): Prisma.Sql {
  const name = Prisma.raw(column);
  // Built from the highest range down, so that the lowest is tested first.
  const descending = [...ranges].sort((a, b) => b.above - a.above);
  let condition: Prisma.Sql = Prisma.sql`false`;
  for (const { above, upTo } of descending) {
    condition = Prisma.sql`(${name} > ${bound(above)} AND (${name} <= ${bound(upTo)} OR ${condition}))`;
  }
  return condition;
}

/**
 * Exact percentiles (as percentile_cont gives them) without sorting the window: the window's
 * `sketches` tell which bucket holds each rank percentile_cont reads and how many values lie below
 * it (domain/quantile-sketch.ts), so one scan of the raw rows collects only the values inside
 * those buckets, and counts the rows (of `sources`); `partitions` wholly inside the window are
 * read by name (windowSources). Undefined when the raw rows are not all there (fewer than `count`, retention)
 * or the sketches do not describe them: the caller then sorts.
 */
export async function selectedPercentiles(
  query: SnapshotQuery,
  range: TimeRange,
  sketches: { cpu: QuantileSketch; concurrency: QuantileSketch },
  count: number,
  partitions: readonly Partition[],
  sources: SourceSelection,
  scope: OperationScope | undefined,
): Promise<
  { count: number; cpu_percentiles: (number | null)[]; concurrency_p95: number | null } | undefined
> {
  const cpu = percentileSelection(sketches.cpu, CPU_PERCENTILES);
  const concurrency = percentileSelection(sketches.concurrency, [CONCURRENCY_PERCENTILE]);
  // cpu_load is real and concurrency integer: bounds of their own types compare without a cast
  // per row (a third of the scan), and equal the float8 ranges on every value of those types.
  const cpuBounds = (value: number) => Prisma.sql`${realAtOrBelow(value)}::real`;
  const concurrencyBounds = (value: number) => Prisma.sql`${Math.floor(value)}::bigint`;
  const [row] = await query<{
    count: number;
    cpu_values: number[] | null;
    concurrency_values: number[] | null;
  }>(
    Prisma.sql`
    SELECT count(*)::int AS count,
           array_agg(cpu_load::float8) FILTER (WHERE ${withinAny('cpu_load', cpu.ranges, cpuBounds)}) AS cpu_values,
           array_agg(concurrency) FILTER (WHERE ${withinAny('concurrency', concurrency.ranges, concurrencyBounds)}) AS concurrency_values
      FROM (${rowsOf(range, partitions, sources)}) AS window_rows`,
    scope,
  );
  if (!row || row.count !== count) return undefined;
  const cpuPercentiles = cpu.percentiles(row.cpu_values ?? []);
  const [concurrencyP95] = concurrency.percentiles(row.concurrency_values ?? []) ?? [];
  if (!cpuPercentiles || concurrencyP95 === undefined) return undefined;
  // percentile_cont over cpu_load is cast to real, as the sorting statement does.
  return {
    count: row.count,
    cpu_percentiles: cpuPercentiles.map((value) => (value === null ? null : asReal(value))),
    concurrency_p95: concurrencyP95,
  };
}
