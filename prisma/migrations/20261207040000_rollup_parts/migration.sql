-- Rollup parts: a statement's additions to the hour and day rollups are appended as rows of their
-- own (parts) instead of being merged into the stored row of their key at once. Merging re-reads
-- and rewrites a key's whole sketch (hundreds of keys for an hour, more for a day), so it cost in
-- proportion to the sketches a statement touched, not to the samples it wrote: a writer of one
-- sample per source, or a load interleaving 1,000 sources, paid for 2,000 sketches a statement
-- (measured on this project's 2-core machine: 200 writers of one sample each, 1.9 ms of the 8 ms of
-- each group's COPY in each of the hour and day merges; bench/results/2026-12-07-rollup-parts.md).
--
-- Part 0 of a key is its merged row; parts above 0 are additions not merged yet, numbered from a
-- sequence. Every reader adds up a key's rows anyway (a rollup row is a partial aggregate, its
-- sketch counts by key), so a key in parts answers exactly as the merged row would. A key is
-- folded (its parts merged into part 0, in one merge) about every 16 statements that add to it
-- (below), so a merge is paid once per 16 statements instead of at each;
-- metric_rollups_fold() folds every key (the maintenance pass).
-- Parts are written only by writers of metrics, which hold the revision row's lock (the
-- metrics_revision migration), and by metric_rollups_fold(), which callers run under that lock:
-- no two sessions merge one key at once. Minute rollups carry no sketch and stay merged.

ALTER TABLE "metric_rollups_hour" ADD COLUMN "part" BIGINT NOT NULL DEFAULT 0;
ALTER TABLE "metric_rollups_day" ADD COLUMN "part" BIGINT NOT NULL DEFAULT 0;
ALTER TABLE "metric_rollups_hour" DROP CONSTRAINT "metric_rollups_hour_pkey",
  ADD CONSTRAINT "metric_rollups_hour_pkey" PRIMARY KEY ("source_id", "bucket", "part");
ALTER TABLE "metric_rollups_day" DROP CONSTRAINT "metric_rollups_day_pkey",
  ADD CONSTRAINT "metric_rollups_day_pkey" PRIMARY KEY ("source_id", "bucket", "part");
-- Owned by a column of the tables it numbers, so it goes with them.
CREATE SEQUENCE "metric_rollups_part_seq" OWNED BY "metric_rollups_hour"."part";

-- The merges (as the sources migration made them), of hours and days reading and writing part 0
-- only, each reading the stored rows of the added keys by a probe per key: the semi-join it had
-- was planned, for thousands of keys, as a hash join over the whole level (a batch of 30,000
-- samples of 1,000 sources spent 165 ms of its 475 in the minute merge once 10 M samples were in).
DO $do$
DECLARE
  level TEXT;
  part_column TEXT;
BEGIN
  FOREACH level IN ARRAY ARRAY['minute', 'hour', 'day'] LOOP
    part_column := CASE WHEN level = 'minute' THEN '' ELSE ', part' END;
    EXECUTE format($create$
      CREATE OR REPLACE FUNCTION %1$I(additions metric_rollups_minute[]) RETURNS void
        LANGUAGE plpgsql SET search_path FROM CURRENT SET plan_cache_mode = force_custom_plan AS $function$
      BEGIN
        WITH added AS MATERIALIZED (
          SELECT * FROM unnest(additions)
        ), both_rows AS MATERIALIZED (
          SELECT * FROM added
          UNION ALL
          -- An addition may hold several rows of one key (a day's hours, a key's parts). A probe of
          -- the key's merged row each: LIMIT keeps the planner from flattening it into a hash join.
          SELECT stored.* FROM (SELECT DISTINCT source_id, bucket FROM added) AS k
            CROSS JOIN LATERAL (
              SELECT source_id, bucket, row_count, first_timestamp, last_timestamp, cpu_load_count, cpu_load_sum,
                     cpu_load_min, cpu_load_max, cpu_load_sketch_keys, cpu_load_sketch_counts, concurrency_count,
                     concurrency_sum, concurrency_min, concurrency_max, concurrency_sketch_keys, concurrency_sketch_counts
                FROM %2$I AS r WHERE r.source_id = k.source_id AND r.bucket = k.bucket%3$s LIMIT 1
            ) AS stored
        ), keyed AS (
          -- Each stored and added row's totals (kind 0), and its sketches' keys (1: cpu_load,
          -- 2: concurrency), summed by key; then each key's row from them in one aggregation,
          -- joining nothing, so no misjudged row count can make a plan loop over every key.
          SELECT source_id, bucket, 0 AS kind, NULL::integer AS key, NULL::bigint AS n,
                 sum(row_count)::bigint AS row_count, min(first_timestamp) AS first_timestamp,
                 max(last_timestamp) AS last_timestamp, sum(cpu_load_count)::bigint AS cpu_load_count,
                 sum(cpu_load_sum) AS cpu_load_sum, min(cpu_load_min) AS cpu_load_min, max(cpu_load_max) AS cpu_load_max,
                 sum(concurrency_count)::bigint AS concurrency_count, sum(concurrency_sum)::bigint AS concurrency_sum,
                 min(concurrency_min) AS concurrency_min, max(concurrency_max) AS concurrency_max
            FROM both_rows GROUP BY 1, 2
          UNION ALL
          SELECT source_id, bucket, 1, s.key, sum(s.n)::bigint, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
            FROM both_rows, unnest(cpu_load_sketch_keys, cpu_load_sketch_counts) AS s(key, n)
           GROUP BY 1, 2, 4
          UNION ALL
          SELECT source_id, bucket, 2, s.key, sum(s.n)::bigint, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
            FROM both_rows, unnest(concurrency_sketch_keys, concurrency_sketch_counts) AS s(key, n)
           GROUP BY 1, 2, 4
        )
        INSERT INTO %2$I AS stored
          SELECT source_id, bucket, sum(row_count)::bigint, min(first_timestamp), max(last_timestamp),
                 sum(cpu_load_count)::bigint, sum(cpu_load_sum), min(cpu_load_min), max(cpu_load_max),
                 array_agg(key ORDER BY key) FILTER (WHERE kind = 1),
                 array_agg(n::integer ORDER BY key) FILTER (WHERE kind = 1),
                 sum(concurrency_count)::bigint, sum(concurrency_sum)::bigint, min(concurrency_min),
                 max(concurrency_max), array_agg(key ORDER BY key) FILTER (WHERE kind = 2),
                 array_agg(n::integer ORDER BY key) FILTER (WHERE kind = 2)
            FROM keyed GROUP BY 1, 2
        ON CONFLICT (source_id, bucket%4$s) DO UPDATE SET
          row_count = excluded.row_count, first_timestamp = excluded.first_timestamp,
          last_timestamp = excluded.last_timestamp, cpu_load_count = excluded.cpu_load_count,
          cpu_load_sum = excluded.cpu_load_sum, cpu_load_min = excluded.cpu_load_min,
          cpu_load_max = excluded.cpu_load_max, cpu_load_sketch_keys = excluded.cpu_load_sketch_keys,
          cpu_load_sketch_counts = excluded.cpu_load_sketch_counts, concurrency_count = excluded.concurrency_count,
          concurrency_sum = excluded.concurrency_sum, concurrency_min = excluded.concurrency_min,
          concurrency_max = excluded.concurrency_max, concurrency_sketch_keys = excluded.concurrency_sketch_keys,
          concurrency_sketch_counts = excluded.concurrency_sketch_counts;
      END
      $function$
    $create$, 'metric_rollups_merge_' || level, 'metric_rollups_' || level,
      CASE WHEN level = 'minute' THEN '' ELSE ' AND r.part = 0' END, part_column);
  END LOOP;
END
$do$;

-- Folds the given keys of a level: their parts merged into part 0, in one merge. Appends additions to a level as parts, then folds the keys whose new part is due: a part is
-- due when the hash of its number falls in one sixteenth, so a key folds every 16 parts on
-- average, deterministically, without reading how many parts it has (counting each added key's
-- parts cost a writer of 1,000 sources 43 of its 179 ms a batch), and sources written in step (a
-- fleet's agents on one interval) fold at different statements (72 keys in one: 35 ms). The
-- maintenance pass folds every key (metric_rollups_fold), so no key keeps parts for longer.
-- Their statements probe the primary key by the given keys, whatever their number: plpgsql may
-- keep one plan for them (planning each call cost more than running it, 0.2 of 0.3 ms).
DO $do$
DECLARE
  level TEXT;
BEGIN
  FOREACH level IN ARRAY ARRAY['hour', 'day'] LOOP
    EXECUTE format($create$
      CREATE FUNCTION %1$I(source_ids INTEGER[], buckets TIMESTAMPTZ[]) RETURNS void
        LANGUAGE plpgsql SET search_path FROM CURRENT AS $function$
      DECLARE
        folded metric_rollups_minute[];
      BEGIN
        WITH moved AS (
          DELETE FROM %2$I AS r USING unnest(source_ids, buckets) AS k(source_id, bucket)
           WHERE r.source_id = k.source_id AND r.bucket = k.bucket AND r.part > 0
          RETURNING r.source_id, r.bucket, r.row_count, r.first_timestamp, r.last_timestamp, r.cpu_load_count, r.cpu_load_sum,
              r.cpu_load_min, r.cpu_load_max, r.cpu_load_sketch_keys, r.cpu_load_sketch_counts, r.concurrency_count,
              r.concurrency_sum, r.concurrency_min, r.concurrency_max, r.concurrency_sketch_keys, r.concurrency_sketch_counts
        )
        SELECT array_agg(ROW(moved.*)::metric_rollups_minute) INTO folded FROM moved;
        IF folded IS NOT NULL THEN
          PERFORM %3$I(folded);
        END IF;
      END
      $function$
    $create$, 'metric_rollups_fold_' || level, 'metric_rollups_' || level, 'metric_rollups_merge_' || level);
    EXECUTE format($create$
      CREATE FUNCTION %1$I(additions metric_rollups_minute[]) RETURNS void
        LANGUAGE plpgsql SET search_path FROM CURRENT AS $function$
      DECLARE
        due_sources INTEGER[];
        due_buckets TIMESTAMPTZ[];
      BEGIN
        WITH appended AS (
          INSERT INTO %2$I SELECT a.*, nextval('metric_rollups_part_seq') FROM unnest(additions) AS a
          RETURNING source_id, bucket, part
        )
        SELECT array_agg(source_id), array_agg(bucket) INTO due_sources, due_buckets
          FROM appended WHERE hashint8(part) & 15 = 0;
        IF due_sources IS NOT NULL THEN
          PERFORM %3$I(due_sources, due_buckets);
        END IF;
      END
      $function$
    $create$, 'metric_rollups_append_' || level, 'metric_rollups_' || level, 'metric_rollups_fold_' || level);
  END LOOP;
END
$do$;

-- Folds every key of both levels. Run under the revision row's lock (src/store/rollup-store.ts),
-- as writers are.
CREATE FUNCTION "metric_rollups_fold"() RETURNS void
  LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  PERFORM metric_rollups_fold_hour(array_agg(source_id), array_agg(bucket))
     FROM (SELECT DISTINCT source_id, bucket FROM metric_rollups_hour WHERE part > 0) AS keys;
  PERFORM metric_rollups_fold_day(array_agg(source_id), array_agg(bucket))
     FROM (SELECT DISTINCT source_id, bucket FROM metric_rollups_day WHERE part > 0) AS keys;
END
$$;

-- The INSERT trigger (as the sources migration made it) appends hours and days as parts.
CREATE OR REPLACE FUNCTION "metric_rollups_insert"() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT SET plan_cache_mode = force_custom_plan AS $$
DECLARE
  recomputed_sources INTEGER[] := coalesce(nullif(current_setting('metric_rollups.recomputed_sources', true), ''), '{}');
  recomputed_minutes TIMESTAMPTZ[] := coalesce(nullif(current_setting('metric_rollups.recomputed_minutes', true), ''), '{}');
  recomputed_hours TIMESTAMPTZ[] := ARRAY(
    SELECT date_bin(INTERVAL '1 hour', m, TIMESTAMPTZ 'epoch') FROM unnest(recomputed_minutes) AS m);
  minutes metric_rollups_minute[];
  hours metric_rollups_minute[];
  days metric_rollups_minute[];
BEGIN
  -- An insert of no rows (a writer taking the revision lock) has nothing to roll up.
  IF NOT EXISTS (SELECT FROM new_rows) THEN
    RETURN NULL;
  END IF;
  WITH counted AS (
    SELECT * FROM new_rows
     WHERE cardinality(recomputed_sources) = 0
        OR (source_id, date_bin(INTERVAL '1 minute', "timestamp", TIMESTAMPTZ 'epoch'))
           NOT IN (SELECT * FROM unnest(recomputed_sources, recomputed_minutes))
  ), minute_totals AS (
    SELECT source_id, date_bin(INTERVAL '1 minute', "timestamp", TIMESTAMPTZ 'epoch') AS bucket,
           count(*) AS row_count, min("timestamp") AS first_timestamp, max("timestamp") AS last_timestamp,
           count(cpu_load) AS cpu_load_count, sum(cpu_load::float8) AS cpu_load_sum,
           min(cpu_load) AS cpu_load_min, max(cpu_load) AS cpu_load_max,
           count(concurrency) AS concurrency_count, sum(concurrency)::bigint AS concurrency_sum,
           min(concurrency) AS concurrency_min, max(concurrency) AS concurrency_max
      FROM counted
     GROUP BY 1, 2
  )
  SELECT array_agg(ROW(t.source_id, t.bucket, t.row_count, t.first_timestamp, t.last_timestamp,
                       t.cpu_load_count, t.cpu_load_sum, t.cpu_load_min, t.cpu_load_max, NULL, NULL,
                       t.concurrency_count, t.concurrency_sum, t.concurrency_min, t.concurrency_max,
                       NULL, NULL)::metric_rollups_minute)
    INTO minutes
    FROM minute_totals AS t;
  -- One hash aggregation gives each (source, hour)'s totals and its counts by cpu_load key and by
  -- concurrency key; GROUPING tells the three apart (a key is NULL for a missing value too).
  WITH grouped AS MATERIALIZED (
    SELECT source_id, date_bin(INTERVAL '1 hour', "timestamp", TIMESTAMPTZ 'epoch') AS bucket,
           metric_sketch_key(cpu_load) AS cpu_key, metric_sketch_key(concurrency) AS concurrency_key,
           GROUPING(metric_sketch_key(cpu_load), metric_sketch_key(concurrency)) AS ungrouped,
           count(*) AS row_count, min("timestamp") AS first_timestamp, max("timestamp") AS last_timestamp,
           count(cpu_load) AS cpu_load_count, sum(cpu_load::float8) AS cpu_load_sum,
           min(cpu_load) AS cpu_load_min, max(cpu_load) AS cpu_load_max,
           count(concurrency) AS concurrency_count, sum(concurrency)::bigint AS concurrency_sum,
           min(concurrency) AS concurrency_min, max(concurrency) AS concurrency_max
      FROM new_rows
     WHERE cardinality(recomputed_sources) = 0
        OR (source_id, date_bin(INTERVAL '1 hour', "timestamp", TIMESTAMPTZ 'epoch'))
           NOT IN (SELECT * FROM unnest(recomputed_sources, recomputed_hours))
     GROUP BY GROUPING SETS ((1, 2), (1, 2, metric_sketch_key(cpu_load)), (1, 2, metric_sketch_key(concurrency)))
  )
  -- Each (source, hour) from its three kinds of group in one aggregation, joining nothing: a plan
  -- that joined them misjudged as one row (see plan_cache_mode above) looped over 1,000 sources'
  -- hours once for each of them.
  SELECT array_agg(ROW(t.source_id, t.bucket, t.row_count, t.first_timestamp, t.last_timestamp,
                       t.cpu_load_count, t.cpu_load_sum, t.cpu_load_min, t.cpu_load_max, t.cpu_keys, t.cpu_counts,
                       t.concurrency_count, t.concurrency_sum, t.concurrency_min, t.concurrency_max,
                       t.concurrency_keys, t.concurrency_counts)::metric_rollups_minute)
    INTO hours
    FROM (SELECT source_id, bucket,
                 sum(row_count) FILTER (WHERE ungrouped = 3)::bigint AS row_count,
                 min(first_timestamp) FILTER (WHERE ungrouped = 3) AS first_timestamp,
                 max(last_timestamp) FILTER (WHERE ungrouped = 3) AS last_timestamp,
                 sum(cpu_load_count) FILTER (WHERE ungrouped = 3)::bigint AS cpu_load_count,
                 sum(cpu_load_sum) FILTER (WHERE ungrouped = 3) AS cpu_load_sum,
                 min(cpu_load_min) FILTER (WHERE ungrouped = 3) AS cpu_load_min,
                 max(cpu_load_max) FILTER (WHERE ungrouped = 3) AS cpu_load_max,
                 array_agg(cpu_key ORDER BY cpu_key) FILTER (WHERE ungrouped = 1 AND cpu_key IS NOT NULL) AS cpu_keys,
                 array_agg(row_count::integer ORDER BY cpu_key)
                   FILTER (WHERE ungrouped = 1 AND cpu_key IS NOT NULL) AS cpu_counts,
                 sum(concurrency_count) FILTER (WHERE ungrouped = 3)::bigint AS concurrency_count,
                 sum(concurrency_sum) FILTER (WHERE ungrouped = 3)::bigint AS concurrency_sum,
                 min(concurrency_min) FILTER (WHERE ungrouped = 3) AS concurrency_min,
                 max(concurrency_max) FILTER (WHERE ungrouped = 3) AS concurrency_max,
                 array_agg(concurrency_key ORDER BY concurrency_key)
                   FILTER (WHERE ungrouped = 2 AND concurrency_key IS NOT NULL) AS concurrency_keys,
                 array_agg(row_count::integer ORDER BY concurrency_key)
                   FILTER (WHERE ungrouped = 2 AND concurrency_key IS NOT NULL) AS concurrency_counts
            FROM grouped GROUP BY 1, 2) AS t;
  IF minutes IS NOT NULL THEN
    PERFORM metric_rollups_merge_minute(minutes);
  END IF;
  IF hours IS NOT NULL THEN
    -- A day's addition is its hours' additions, merged by the same grouping as any other.
    SELECT array_agg(ROW(h.source_id, date_bin(INTERVAL '1 day', h.bucket, TIMESTAMPTZ 'epoch'), h.row_count,
                         h.first_timestamp, h.last_timestamp, h.cpu_load_count, h.cpu_load_sum, h.cpu_load_min,
                         h.cpu_load_max, h.cpu_load_sketch_keys, h.cpu_load_sketch_counts, h.concurrency_count,
                         h.concurrency_sum, h.concurrency_min, h.concurrency_max, h.concurrency_sketch_keys,
                         h.concurrency_sketch_counts)::metric_rollups_minute)
      INTO days
      FROM unnest(hours) AS h;
    PERFORM metric_rollups_append_hour(hours);
    PERFORM metric_rollups_append_day(days);
  END IF;
  RETURN NULL;
END
$$;
