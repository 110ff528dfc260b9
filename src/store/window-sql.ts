import type { TimeRange } from '../domain/time.js';
import { Prisma } from '../generated/prisma/client.js';
import { type Partition, quoteIdentifier } from './metric-partitions.js';
import { METRICS } from './tables.js';

const METRICS_SQL = Prisma.raw(METRICS);

/** The WHERE clause of `range`, none when both bounds are open. */
export function rangeCondition(range: TimeRange): Prisma.Sql {
  return range.start || range.end ? Prisma.sql`WHERE ${rangeConditions(range)}` : Prisma.empty;
}

/** `start <= "timestamp" < end`, an open bound no condition: `true` when both are open. */
function rangeConditions({ start, end }: TimeRange): Prisma.Sql {
  const conditions = [
    start ? Prisma.sql`"timestamp" >= ${start}` : undefined,
    end ? Prisma.sql`"timestamp" < ${end}` : undefined,
  ].filter((condition) => condition !== undefined);
  return conditions.length > 0 ? Prisma.join(conditions, ' AND ') : Prisma.sql`true`;
}

/**
 * Where a scan of a window's raw rows reads: the partitions that lie wholly inside the window,
 * each read whole by name, and what is left of the window (its edges, and any gap between those
 * partitions), read through metrics with the time bounds. PostgreSQL checks a window's time bounds
 * on every row of every partition it scans, even of one inside the window: on a day's partition
 * that check was a third of the scan. `partitions` in time order, as remembered at the last
 * refresh: one dropped since makes the statement fail with undefined_table (the caller reads
 * again through metrics), one made since is read through metrics, bounded.
 */
export function windowSources(
  partitions: readonly Partition[],
  { start, end }: TimeRange,
): { whole: Partition[]; rest: TimeRange[] } {
  const whole = partitions.filter(
    (partition) => (!start || partition.from >= start) && (!end || partition.to <= end),
  );
  const rest: TimeRange[] = [];
  let from = start;
  for (const partition of whole) {
    if (!from || from < partition.from) rest.push({ start: from, end: partition.from });
    from = partition.to;
  }
  if (!from || !end || from < end) rest.push({ start: from, end });
  return { whole, rest };
}

/** The statement reading cpu_load and concurrency of a window's raw rows from `windowSources`. */
export function rowsOf(range: TimeRange, partitions: readonly Partition[]): Prisma.Sql {
  const { whole, rest } = windowSources(partitions, range);
  return Prisma.join(
    [
      ...whole.map(
        (partition) =>
          Prisma.sql`SELECT cpu_load, concurrency FROM ${Prisma.raw(quoteIdentifier(partition.name))}`,
      ),
      ...(rest.length > 0
        ? [
            Prisma.sql`SELECT cpu_load, concurrency FROM ${METRICS_SQL} WHERE ${Prisma.join(
              rest.map((part) => Prisma.sql`(${rangeConditions(part)})`),
              ' OR ',
            )}`,
          ]
        : []),
    ],
    ' UNION ALL ',
  );
}
