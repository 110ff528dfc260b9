import type { RollupLevel, WindowPart } from '../domain/rollup-plan.js';
import { Prisma } from '../generated/prisma/client.js';
import type { SourceSelection } from './source-filter.js';
import { METRICS, ROLLUPS } from './tables.js';
import { withinSources } from './window-sql.js';

/** `column` within the part's bounds; an open bound adds no condition. */
function within(column: string, { start, end }: WindowPart): Prisma.Sql {
  const conditions = [
    start ? Prisma.sql`${Prisma.raw(column)} >= ${start}` : undefined,
    end ? Prisma.sql`${Prisma.raw(column)} < ${end}` : undefined,
  ].filter((condition) => condition !== undefined);
  return conditions.length > 0 ? Prisma.join(conditions, ' AND ') : Prisma.sql`true`;
}

function anyOf(column: string, parts: readonly WindowPart[]): Prisma.Sql {
  return Prisma.join(
    parts.map((part) => Prisma.sql`(${within(column, part)})`),
    ' OR ',
  );
}

/**
 * The raw rows of `sources` in the window's raw parts: source_id, "timestamp", cpu_load,
 * concurrency (none if it has none). A statement per part, joined by UNION ALL (the parts do not
 * overlap): with its parts' bounds ORed in one condition, PostgreSQL scanned one source's rows of
 * the whole partition through metrics_source_reads_idx and filtered them (8,640 rows of a day for
 * the 360 of two partial hours), where each part alone is a range of that index.
 */
export function rawRowsOf(parts: readonly WindowPart[], sources: SourceSelection): Prisma.Sql {
  const raw = parts.filter(({ source }) => source === 'raw');
  const rowsOf = (condition: Prisma.Sql) =>
    Prisma.sql`SELECT source_id, "timestamp", cpu_load, concurrency FROM ${Prisma.raw(METRICS)} WHERE ${condition}`;
  return raw.length > 0
    ? Prisma.join(
        raw.map((part) => rowsOf(withinSources(within('"timestamp"', part), sources))),
        ' UNION ALL ',
      )
    : rowsOf(Prisma.sql`false`);
}

/**
 * The columns of a rollup row at each level: a minute row's, which hours and days have too, but for
 * their `part`. An hour or day key may be in several rows (its parts: the migration rollup_parts),
 * each a partial aggregate that every reader adds up.
 */
const HOUR_AND_DAY_COLUMNS = Prisma.raw(
  'source_id, bucket, row_count, first_timestamp, last_timestamp, cpu_load_count, cpu_load_sum, cpu_load_min, ' +
    'cpu_load_max, cpu_load_sketch_keys, cpu_load_sketch_counts, concurrency_count, concurrency_sum, ' +
    'concurrency_min, concurrency_max, concurrency_sketch_keys, concurrency_sketch_counts',
);
const ROLLUP_COLUMNS: Record<RollupLevel, Prisma.Sql> = {
  minute: Prisma.raw('*'),
  hour: HOUR_AND_DAY_COLUMNS,
  day: HOUR_AND_DAY_COLUMNS,
};

/** The rollup rows of `sources` in the window's rollup parts, all levels together (none if it has none). */
export function rollupRowsOf(parts: readonly WindowPart[], sources: SourceSelection): Prisma.Sql {
  const levels = (Object.keys(ROLLUPS) as RollupLevel[]).flatMap((level) => {
    const ofLevel = parts.filter(({ source }) => source === level);
    return ofLevel.length > 0
      ? [
          Prisma.sql`SELECT ${ROLLUP_COLUMNS[level]} FROM ${Prisma.raw(ROLLUPS[level])} WHERE ${withinSources(anyOf('bucket', ofLevel), sources)}`,
        ]
      : [];
  });
  return levels.length > 0
    ? Prisma.join(levels, ' UNION ALL ')
    : Prisma.sql`SELECT * FROM ${Prisma.raw(ROLLUPS.minute)} WHERE false`;
}

/**
 * The sketch tails of `column` (the migration rollup_sketch_tails) of the hour and day rows of
 * `sources` in the window's parts at those levels, with a value: source_id, weight (given), tail.
 * A part not folded yet has none: it comes as [its count, its maximum's key, 0], which bounds it
 * as its maximum does.
 */
export function sketchTailsOf(
  parts: readonly WindowPart[],
  sources: SourceSelection,
  column: 'cpu_load' | 'concurrency',
  weight: number,
): Prisma.Sql[] {
  const [tail, count, max] = ['sketch_tail', 'count', 'max'].map((suffix) =>
    Prisma.raw(`${column}_${suffix}`),
  );
  return (['hour', 'day'] as const).flatMap((level) => {
    const ofLevel = parts.filter(({ source }) => source === level);
    return ofLevel.length > 0
      ? [
          Prisma.sql`SELECT source_id, ${weight}::int AS weight, coalesce(${tail}, ARRAY[${count}::integer, metric_sketch_key(${max}), 0]) AS tail
             FROM ${Prisma.raw(ROLLUPS[level])} WHERE ${withinSources(anyOf('bucket', ofLevel), sources)} AND ${count} > 0`,
        ]
      : [];
  });
}

/**
 * Rollup rows and raw rows as one relation of partial aggregates: source_id, `at` (bucket start or
 * sample time), n (samples), first, last, cpu_n, cpu_sum, cpu_min, cpu_max, concurrency_n,
 * concurrency_sum, concurrency_min, concurrency_max. Each value's statistics are over the samples
 * that hold it (cpu_n, concurrency_n). Sums are float8 for cpu_load (what avg(real) sums in) and
 * bigint for concurrency (what avg(integer) sums in), so means merged from them are the raw means.
 */
export function partialAggregates(rolled: Prisma.Sql, raw: Prisma.Sql): Prisma.Sql {
  return Prisma.sql`
    SELECT source_id, bucket AS at, row_count AS n, first_timestamp AS first, last_timestamp AS last,
           cpu_load_count AS cpu_n, cpu_load_sum AS cpu_sum, cpu_load_min AS cpu_min, cpu_load_max AS cpu_max,
           concurrency_count AS concurrency_n, concurrency_sum, concurrency_min, concurrency_max
      FROM (${rolled}) AS rolled
    UNION ALL
    SELECT source_id, "timestamp", 1, "timestamp", "timestamp", (cpu_load IS NOT NULL)::int, cpu_load::float8, cpu_load, cpu_load,
           (concurrency IS NOT NULL)::int, concurrency::bigint, concurrency, concurrency
      FROM (${raw}) AS raw`;
}
