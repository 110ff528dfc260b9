import type { TimeRange } from '../domain/time.js';
import { Prisma } from '../generated/prisma/client.js';
import { type Partition, quoteIdentifier } from './metric-partitions.js';
import { type SourceSelection, sourceCondition } from './source-filter.js';
import { METRICS } from './tables.js';

const METRICS_SQL = Prisma.raw(METRICS);

/**
 * The condition `sources` puts on a statement, as ` AND ...`: nothing for every source, so that a
 * question over all of them is the very statement it was before sources.
 */
export function andSources(sources: SourceSelection, column?: string): Prisma.Sql {
  return sources.all ? Prisma.empty : Prisma.sql` AND ${sourceCondition(sources, column)}`;
}

/** `condition`, and `sources`' condition when some sources are asked for. */
export function withinSources(condition: Prisma.Sql, sources: SourceSelection, column?: string): Prisma.Sql {
  return sources.all ? condition : Prisma.sql`(${condition}) AND ${sourceCondition(sources, column)}`;
}

/** The WHERE clause of `range` and `sources`, none when both bounds are open and every source is asked for. */
export function rangeCondition(range: TimeRange, sources: SourceSelection): Prisma.Sql {
  if (!(range.start || range.end)) {
    return sources.all ? Prisma.empty : Prisma.sql`WHERE ${sourceCondition(sources)}`;
  }
  return Prisma.sql`WHERE ${rangeConditions(range)}${andSources(sources)}`;
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

/**
 * The statement reading cpu_load and concurrency of `sources`' raw rows in a window, from
 * `windowSources`.
 */
export function rowsOf(
  range: TimeRange,
  partitions: readonly Partition[],
  sources: SourceSelection,
): Prisma.Sql {
  const { whole, rest } = windowSources(partitions, range);
  return Prisma.join(
    [
      ...whole.map(
        (partition) =>
          Prisma.sql`SELECT cpu_load, concurrency FROM ${Prisma.raw(quoteIdentifier(partition.name))}${
            sources.all ? Prisma.empty : Prisma.sql` WHERE ${sourceCondition(sources)}`
          }`,
      ),
      ...(rest.length > 0
        ? [
            Prisma.sql`SELECT cpu_load, concurrency FROM ${METRICS_SQL} WHERE ${withinSources(
              Prisma.join(
                rest.map((part) => Prisma.sql`(${rangeConditions(part)})`),
                ' OR ',
              ),
              sources,
            )}`,
          ]
        : []),
    ],
    ' UNION ALL ',
  );
}
