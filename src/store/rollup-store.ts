import type pg from 'pg';
import type { RollupLevel } from '../domain/rollup-plan.js';
import type { TimeRange } from '../domain/time.js';
import { METRICS, REVISION, ROLLUPS } from './tables.js';
import { withTransaction } from './transaction.js';

const DAY_MS = 86_400_000;
const WIDTHS: Record<RollupLevel, string> = { minute: '1 minute', hour: '1 hour', day: '1 day' };

/** A rollup row that differs from what the raw rows give. */
export interface RollupDifference {
  level: RollupLevel;
  sourceId: number;
  bucket: Date;
  /** The columns that differ, or `missing` (raw rows but no rollup) or `unexpected` (a rollup but no raw rows). */
  columns: string[];
}

/** How many rows rollup retention dropped, per level. */
export interface DroppedRollups {
  minute: number;
  hour: number;
}

/**
 * The rollups' maintenance statements: check and rebuild against raw rows, and retention. Both
 * check and rebuild work on whole UTC days within the days raw rows are stored for: rollups of
 * days whose raw rows are gone (RETENTION) are what is left of them, and are kept as they are.
 */
export class RollupStore {
  readonly #pool: pg.Pool;

  constructor({ pool }: { pool: pg.Pool }) {
    this.#pool = pool;
  }

  /** The UTC days of `range` (widened to whole days) that raw rows are stored for, in order. */
  async rawDays(range: TimeRange): Promise<Date[]> {
    const { rows } = await this.#pool.query<[first: Date | null, last: Date | null]>({
      text: `SELECT min("timestamp"), max("timestamp") FROM ${METRICS}`,
      rowMode: 'array',
    });
    const [first, last] = rows[0] ?? [null, null];
    if (!first || !last) return [];
    const from = Math.max(
      floorDay(first.getTime()),
      range.start ? floorDay(range.start.getTime()) : -Infinity,
    );
    const to = Math.min(
      floorDay(last.getTime()) + DAY_MS,
      range.end ? ceilDay(range.end.getTime()) : Infinity,
    );
    const days: Date[] = [];
    for (let day = from; day < to; day += DAY_MS) days.push(new Date(day));
    return days;
  }

  /**
   * Runs `work` in one transaction that first locks the revision row, as every writer of metrics
   * does before it touches a rollup row (so the two queue instead of deadlocking).
   */
  #lockingRevision<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return withTransaction(this.#pool, `BEGIN; SELECT 1 FROM ${REVISION} FOR UPDATE`, work);
  }

  /**
   * Recomputes one day's (source, minute) keys from its raw rows, their hours from those and the
   * day from the hours, and renews the revision: remembered answers were read from the rollups.
   * The keys are those of the day's raw rows and of its stored rollup rows at every level (a
   * coarser row is keyed by its first minute), so a stored row with no raw rows left is dropped.
   */
  rebuildDay(day: Date): Promise<void> {
    return this.#lockingRevision(async (client) => {
      await client.query(
        `SELECT metric_rollups_recompute(keys.sources, keys.minutes)
           FROM (SELECT array_agg(source_id) AS sources, array_agg(bucket) AS minutes
                   FROM (SELECT DISTINCT source_id, date_bin(INTERVAL '1 minute', "timestamp", TIMESTAMPTZ 'epoch') AS bucket
                           FROM ${METRICS} WHERE "timestamp" >= $1 AND "timestamp" < $1::timestamptz + INTERVAL '1 day'
                          UNION
                         ${Object.values(ROLLUPS)
                           .map(
                             (table) =>
                               `SELECT source_id, bucket FROM ${table} WHERE bucket >= $1 AND bucket < $1::timestamptz + INTERVAL '1 day'`,
                           )
                           .join(' UNION ')}) AS day_keys) AS keys`,
        [day],
      );
      await client.query(`UPDATE ${REVISION} SET revision = gen_random_uuid()`);
    });
  }

  /**
   * Merges every hour and day key's parts into its one row (the migration rollup_parts): answers
   * are the same before and after, so the revision stays.
   */
  fold(): Promise<void> {
    return this.#lockingRevision(async (client) => {
      await client.query('SELECT metric_rollups_fold()');
    });
  }

  /**
   * The rollup rows of one day, at every level, that differ from the raw rows (a key's parts merged
   * as it is read, as every reader adds them up): exactly, but for
   * the float8 sum of cpu_load, whose summation order differs (a relative 1e-9 is allowed: a sum
   * of up to 2^24 float4 values in float8 is within 2^-29 of exact).
   */
  async checkDay(day: Date): Promise<RollupDifference[]> {
    const differences: RollupDifference[] = [];
    for (const level of Object.keys(ROLLUPS) as RollupLevel[]) {
      const { rows } = await this.#pool.query<[sourceId: number, bucket: Date, columns: string[]]>({
        text: `
          WITH raw_keys AS (
            SELECT array_agg(source_id) AS sources, array_agg(bucket) AS buckets
              FROM (SELECT DISTINCT source_id, date_bin($2::interval, "timestamp", TIMESTAMPTZ 'epoch') AS bucket
                      FROM ${METRICS} WHERE "timestamp" >= $1 AND "timestamp" < $1::timestamptz + INTERVAL '1 day') AS keys
          ), expected AS (
            SELECT e.* FROM raw_keys, metric_rollups_of_raw($2::interval, raw_keys.sources, raw_keys.buckets) AS e
          ), stored_keys AS (
            SELECT array_agg(source_id) AS sources, array_agg(bucket) AS buckets
              FROM (SELECT DISTINCT source_id, bucket FROM ${ROLLUPS[level]}
                     WHERE bucket >= $1 AND bucket < $1::timestamptz + INTERVAL '1 day') AS keys
          ), stored AS (
            -- Each key's rows merged into one (an hour or day may be in parts), in this statement's
            -- snapshot: writers adding parts meanwhile change nothing it compares.
            SELECT s.* FROM stored_keys,
                   metric_rollups_of_rollups('${ROLLUPS[level]}', $2::interval, stored_keys.sources, stored_keys.buckets) AS s
          )
          SELECT coalesce(e.source_id, s.source_id) AS source_id, coalesce(e.bucket, s.bucket) AS bucket,
                 CASE WHEN s.bucket IS NULL THEN ARRAY['missing']
                      WHEN e.bucket IS NULL THEN ARRAY['unexpected']
                      ELSE array_remove(ARRAY[
                        CASE WHEN e.row_count <> s.row_count THEN 'row_count' END,
                        CASE WHEN e.cpu_load_count <> s.cpu_load_count THEN 'cpu_load_count' END,
                        CASE WHEN e.concurrency_count <> s.concurrency_count THEN 'concurrency_count' END,
                        CASE WHEN e.first_timestamp <> s.first_timestamp THEN 'first_timestamp' END,
                        CASE WHEN e.last_timestamp <> s.last_timestamp THEN 'last_timestamp' END,
                        CASE WHEN (e.cpu_load_sum IS NULL) <> (s.cpu_load_sum IS NULL)
                               OR abs(e.cpu_load_sum - s.cpu_load_sum) > 1e-9 * abs(e.cpu_load_sum) THEN 'cpu_load_sum' END,
                        CASE WHEN e.cpu_load_min IS DISTINCT FROM s.cpu_load_min THEN 'cpu_load_min' END,
                        CASE WHEN e.cpu_load_max IS DISTINCT FROM s.cpu_load_max THEN 'cpu_load_max' END,
                        CASE WHEN e.cpu_load_sketch_keys IS DISTINCT FROM s.cpu_load_sketch_keys
                               OR e.cpu_load_sketch_counts IS DISTINCT FROM s.cpu_load_sketch_counts THEN 'cpu_load_sketch' END,
                        CASE WHEN e.concurrency_sum IS DISTINCT FROM s.concurrency_sum THEN 'concurrency_sum' END,
                        CASE WHEN e.concurrency_min IS DISTINCT FROM s.concurrency_min THEN 'concurrency_min' END,
                        CASE WHEN e.concurrency_max IS DISTINCT FROM s.concurrency_max THEN 'concurrency_max' END,
                        CASE WHEN e.concurrency_sketch_keys IS DISTINCT FROM s.concurrency_sketch_keys
                               OR e.concurrency_sketch_counts IS DISTINCT FROM s.concurrency_sketch_counts THEN 'concurrency_sketch' END
                      ], NULL) END AS columns
            FROM expected AS e FULL JOIN stored AS s ON s.source_id = e.source_id AND s.bucket = e.bucket
           ORDER BY 2, 1`,
        values: [day, WIDTHS[level]],
        rowMode: 'array',
      });
      for (const [sourceId, bucket, columns] of rows) {
        if (columns.length > 0) differences.push({ level, sourceId, bucket, columns });
      }
    }
    return differences;
  }

  /**
   * Drops minute rollups older than `minutesBefore` and hour rollups older than `hoursBefore`,
   * but never those of a day raw rows are still stored for (an update of a raw row recomputes its
   * minute and hour and then its day from the day's hours, which must all be there). Renews the
   * revision when it drops any.
   */
  dropOld({
    minutesBefore,
    hoursBefore,
  }: {
    minutesBefore: Date;
    hoursBefore?: Date;
  }): Promise<DroppedRollups> {
    return this.#lockingRevision(async (client) => {
      const { rows } = await client.query<[minute: number, hour: number]>({
        text: `
          WITH raw_kept_from AS (
            SELECT coalesce(date_bin(INTERVAL '1 day', min("timestamp"), TIMESTAMPTZ 'epoch'), 'infinity') AS day
              FROM ${METRICS}
          ), minutes AS (
            DELETE FROM ${ROLLUPS.minute} WHERE bucket < least($1::timestamptz, (SELECT day FROM raw_kept_from)) RETURNING 1
          ), hours AS (
            DELETE FROM ${ROLLUPS.hour} WHERE bucket < least($2::timestamptz, (SELECT day FROM raw_kept_from)) RETURNING 1
          )
          SELECT (SELECT count(*) FROM minutes)::int, (SELECT count(*) FROM hours)::int`,
        values: [minutesBefore, hoursBefore ?? '-infinity'],
        rowMode: 'array',
      });
      const [minute = 0, hour = 0] = rows[0] ?? [];
      if (minute + hour > 0) await client.query(`UPDATE ${REVISION} SET revision = gen_random_uuid()`);
      return { minute, hour };
    });
  }
}

function floorDay(ms: number): number {
  return Math.floor(ms / DAY_MS) * DAY_MS;
}

function ceilDay(ms: number): number {
  return Math.ceil(ms / DAY_MS) * DAY_MS;
}
