-- Sources: every sample belongs to a host, pod or service instance (a row of `sources`), and the
-- natural key of a sample becomes (source, timestamp). Each value becomes optional (an agent may
-- report load and no concurrency), at least one present. The rollups are kept per source, with a
-- count per value that their statistics are over.
--
-- Every row already stored moves to the source `default`, id 1, which this migration creates:
-- no row is lost, doubled or renumbered (ids stay), and a page cursor issued before it (a
-- timestamp alone) names the row (default, timestamp) it named before. source_id defaults to 1,
-- so a writer that names no source (psql, an older script) still writes where it wrote before;
-- adding a column with a constant default changes the catalog only, not the rows stored. The new
-- primary key is built on each partition.

CREATE TABLE "sources" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,
    "labels" JSONB NOT NULL DEFAULT '{}',
    "first_seen" TIMESTAMPTZ(3),
    "last_seen" TIMESTAMPTZ(3),

    CONSTRAINT "sources_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "sources_name_key" ON "sources"("name");
CREATE INDEX "sources_last_seen_idx" ON "sources"("last_seen");
-- Labels are an object of strings (the store bounds their number and lengths).
ALTER TABLE "sources" ADD CONSTRAINT "sources_labels_object" CHECK (jsonb_typeof("labels") = 'object');

-- Seen bounds are NULL until the source's first sample.
INSERT INTO "sources" ("id", "name", "first_seen", "last_seen")
  SELECT 1, 'default', min("timestamp"), max("timestamp") FROM "metrics";
SELECT setval(pg_get_serial_sequence('sources', 'id'), 1);

ALTER TABLE "metrics" ADD COLUMN "source_id" INTEGER NOT NULL DEFAULT 1;
ALTER TABLE "metrics"
  DROP CONSTRAINT "metrics_pkey",
  ADD CONSTRAINT "metrics_pkey" PRIMARY KEY ("source_id", "timestamp"),
  ALTER COLUMN "cpu_load" DROP NOT NULL,
  ALTER COLUMN "concurrency" DROP NOT NULL,
  ADD CONSTRAINT "metrics_has_a_value" CHECK ("cpu_load" IS NOT NULL OR "concurrency" IS NOT NULL);
-- A page over every source orders by time, then source.
CREATE INDEX "metrics_timestamp_source_id_idx" ON "metrics"("timestamp", "source_id");

-- The rollup tables, made again with the source first and a count per value; their rows move to
-- the default source, where every value was present (each count is the row count).
DROP FUNCTION "metric_rollups_of_raw"(INTERVAL, TIMESTAMPTZ[]);
DROP FUNCTION "metric_rollups_of_rollups"(REGCLASS, INTERVAL, TIMESTAMPTZ[]);
DROP FUNCTION "metric_rollups_recompute"(TIMESTAMPTZ[]);
DROP FUNCTION "metric_rollups_merge"(REGCLASS, "metric_rollups_minute"[]);

ALTER TABLE "metric_rollups_minute" RENAME TO "metric_rollups_minute_unsourced";
ALTER TABLE "metric_rollups_hour" RENAME TO "metric_rollups_hour_unsourced";
ALTER TABLE "metric_rollups_day" RENAME TO "metric_rollups_day_unsourced";
ALTER TABLE "metric_rollups_minute_unsourced" RENAME CONSTRAINT "metric_rollups_minute_pkey" TO "metric_rollups_minute_unsourced_pkey";
ALTER TABLE "metric_rollups_hour_unsourced" RENAME CONSTRAINT "metric_rollups_hour_pkey" TO "metric_rollups_hour_unsourced_pkey";
ALTER TABLE "metric_rollups_day_unsourced" RENAME CONSTRAINT "metric_rollups_day_pkey" TO "metric_rollups_day_unsourced_pkey";

CREATE TABLE "metric_rollups_minute" (
    "source_id" INTEGER NOT NULL,
    "bucket" TIMESTAMPTZ(3) NOT NULL,
    "row_count" BIGINT NOT NULL,
    "first_timestamp" TIMESTAMPTZ(3) NOT NULL,
    "last_timestamp" TIMESTAMPTZ(3) NOT NULL,
    "cpu_load_count" BIGINT NOT NULL,
    "cpu_load_sum" DOUBLE PRECISION,
    "cpu_load_min" REAL,
    "cpu_load_max" REAL,
    "cpu_load_sketch_keys" INTEGER[],
    "cpu_load_sketch_counts" INTEGER[],
    "concurrency_count" BIGINT NOT NULL,
    "concurrency_sum" BIGINT,
    "concurrency_min" INTEGER,
    "concurrency_max" INTEGER,
    "concurrency_sketch_keys" INTEGER[],
    "concurrency_sketch_counts" INTEGER[],

    CONSTRAINT "metric_rollups_minute_pkey" PRIMARY KEY ("source_id", "bucket")
);
CREATE TABLE "metric_rollups_hour" (LIKE "metric_rollups_minute" INCLUDING ALL);
CREATE TABLE "metric_rollups_day" (LIKE "metric_rollups_minute" INCLUDING ALL);
-- A question over every source reads a window of buckets of all of them.
CREATE INDEX "metric_rollups_minute_bucket_idx" ON "metric_rollups_minute"("bucket");
CREATE INDEX "metric_rollups_hour_bucket_idx" ON "metric_rollups_hour"("bucket");
CREATE INDEX "metric_rollups_day_bucket_idx" ON "metric_rollups_day"("bucket");

INSERT INTO "metric_rollups_minute"
  SELECT 1, bucket, row_count, first_timestamp, last_timestamp, row_count, cpu_load_sum, cpu_load_min, cpu_load_max,
         cpu_load_sketch_keys, cpu_load_sketch_counts, row_count, concurrency_sum, concurrency_min, concurrency_max,
         concurrency_sketch_keys, concurrency_sketch_counts
    FROM "metric_rollups_minute_unsourced";
INSERT INTO "metric_rollups_hour"
  SELECT 1, bucket, row_count, first_timestamp, last_timestamp, row_count, cpu_load_sum, cpu_load_min, cpu_load_max,
         cpu_load_sketch_keys, cpu_load_sketch_counts, row_count, concurrency_sum, concurrency_min, concurrency_max,
         concurrency_sketch_keys, concurrency_sketch_counts
    FROM "metric_rollups_hour_unsourced";
INSERT INTO "metric_rollups_day"
  SELECT 1, bucket, row_count, first_timestamp, last_timestamp, row_count, cpu_load_sum, cpu_load_min, cpu_load_max,
         cpu_load_sketch_keys, cpu_load_sketch_counts, row_count, concurrency_sum, concurrency_min, concurrency_max,
         concurrency_sketch_keys, concurrency_sketch_counts
    FROM "metric_rollups_day_unsourced";
DROP TABLE "metric_rollups_minute_unsourced", "metric_rollups_hour_unsourced", "metric_rollups_day_unsourced";

-- Rollup rows of `width` recomputed from the raw rows of the given (source, bucket) keys, which
-- are distinct (a key with no rows gives no row); sketches for widths of an hour and more only.
CREATE FUNCTION "metric_rollups_of_raw"(width INTERVAL, source_ids INTEGER[], buckets TIMESTAMPTZ[])
  RETURNS SETOF "metric_rollups_minute"
  LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
  WITH keyed AS MATERIALIZED (
    SELECT k.source_id, k.bucket, m."timestamp", m.cpu_load, m.concurrency,
           metric_sketch_key(m.cpu_load) AS cpu_key, metric_sketch_key(m.concurrency) AS concurrency_key
      FROM unnest(source_ids, buckets) AS k(source_id, bucket)
      JOIN metrics AS m
        ON m.source_id = k.source_id AND m."timestamp" >= k.bucket AND m."timestamp" < k.bucket + width
  ), cpu AS (
    SELECT source_id, bucket, array_agg(key ORDER BY key) AS keys, array_agg(n ORDER BY key) AS counts
      FROM (SELECT source_id, bucket, cpu_key AS key, count(*)::integer AS n FROM keyed
             WHERE width >= INTERVAL '1 hour' AND cpu_key IS NOT NULL GROUP BY 1, 2, 3) AS c
     GROUP BY 1, 2
  ), concurrency AS (
    SELECT source_id, bucket, array_agg(key ORDER BY key) AS keys, array_agg(n ORDER BY key) AS counts
      FROM (SELECT source_id, bucket, concurrency_key AS key, count(*)::integer AS n FROM keyed
             WHERE width >= INTERVAL '1 hour' AND concurrency_key IS NOT NULL GROUP BY 1, 2, 3) AS c
     GROUP BY 1, 2
  )
  SELECT s.source_id, s.bucket, s.row_count, s.first_timestamp, s.last_timestamp,
         s.cpu_load_count, s.cpu_load_sum, s.cpu_load_min, s.cpu_load_max, cpu.keys, cpu.counts,
         s.concurrency_count, s.concurrency_sum, s.concurrency_min, s.concurrency_max, concurrency.keys, concurrency.counts
    FROM (SELECT source_id, bucket, count(*) AS row_count, min("timestamp") AS first_timestamp,
                 max("timestamp") AS last_timestamp, count(cpu_load) AS cpu_load_count,
                 sum(cpu_load::float8) AS cpu_load_sum, min(cpu_load) AS cpu_load_min, max(cpu_load) AS cpu_load_max,
                 count(concurrency) AS concurrency_count, sum(concurrency)::bigint AS concurrency_sum,
                 min(concurrency) AS concurrency_min, max(concurrency) AS concurrency_max
            FROM keyed GROUP BY 1, 2) AS s
    LEFT JOIN cpu USING (source_id, bucket)
    LEFT JOIN concurrency USING (source_id, bucket)
$$;

-- Rollup rows of `width` merged from the rows of the finer level `finer` within the given
-- distinct (source, bucket) keys: a day is 24 hour rows to merge.
CREATE FUNCTION "metric_rollups_of_rollups"(finer REGCLASS, width INTERVAL, source_ids INTEGER[], buckets TIMESTAMPTZ[])
  RETURNS SETOF "metric_rollups_minute"
  LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $$
BEGIN
  RETURN QUERY EXECUTE format($sql$
  WITH rows AS MATERIALIZED (
    SELECT k.bucket AS coarse, f.*
      FROM unnest($2, $3) AS k(source_id, bucket)
      JOIN %s AS f ON f.source_id = k.source_id AND f.bucket >= k.bucket AND f.bucket < k.bucket + $1
  ), cpu AS (
    SELECT source_id, coarse, array_agg(key ORDER BY key) AS keys, array_agg(n ORDER BY key) AS counts
      FROM (SELECT source_id, coarse, key, sum(n)::integer AS n
              FROM rows, unnest(cpu_load_sketch_keys, cpu_load_sketch_counts) AS c(key, n)
             GROUP BY 1, 2, 3) AS c
     GROUP BY 1, 2
  ), concurrency AS (
    SELECT source_id, coarse, array_agg(key ORDER BY key) AS keys, array_agg(n ORDER BY key) AS counts
      FROM (SELECT source_id, coarse, key, sum(n)::integer AS n
              FROM rows, unnest(concurrency_sketch_keys, concurrency_sketch_counts) AS c(key, n)
             GROUP BY 1, 2, 3) AS c
     GROUP BY 1, 2
  )
  SELECT s.source_id, s.coarse::timestamptz(3), s.row_count, s.first_timestamp::timestamptz(3),
         s.last_timestamp::timestamptz(3), s.cpu_load_count, s.cpu_load_sum, s.cpu_load_min, s.cpu_load_max,
         cpu.keys, cpu.counts, s.concurrency_count, s.concurrency_sum, s.concurrency_min, s.concurrency_max,
         concurrency.keys, concurrency.counts
    FROM (SELECT source_id, coarse, sum(row_count)::bigint AS row_count, min(first_timestamp) AS first_timestamp,
                 max(last_timestamp) AS last_timestamp, sum(cpu_load_count)::bigint AS cpu_load_count,
                 sum(cpu_load_sum) AS cpu_load_sum, min(cpu_load_min) AS cpu_load_min, max(cpu_load_max) AS cpu_load_max,
                 sum(concurrency_count)::bigint AS concurrency_count, sum(concurrency_sum)::bigint AS concurrency_sum,
                 min(concurrency_min) AS concurrency_min, max(concurrency_max) AS concurrency_max
            FROM rows GROUP BY 1, 2) AS s
    LEFT JOIN cpu USING (source_id, coarse)
    LEFT JOIN concurrency USING (source_id, coarse)
  $sql$, finer) USING width, source_ids, buckets;
END
$$;

-- Recomputes the (source, minute) keys given from raw rows, exactly (a minimum or maximum cannot
-- be subtracted), their hours from raw rows too (their sketches), and their days from the hours.
-- Rollup retention never drops a bucket whose raw rows are still stored, and a partition is at
-- least an hour: wherever a raw row can change, its hour's raw rows are all there.
CREATE FUNCTION "metric_rollups_recompute"(source_ids INTEGER[], minutes TIMESTAMPTZ[]) RETURNS void
  LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT SET plan_cache_mode = force_custom_plan AS $$
DECLARE
  minute_sources INTEGER[];
  minute_buckets TIMESTAMPTZ[];
  hour_sources INTEGER[];
  hour_buckets TIMESTAMPTZ[];
  day_sources INTEGER[];
  day_buckets TIMESTAMPTZ[];
BEGIN
  SELECT array_agg(s), array_agg(b) INTO minute_sources, minute_buckets
    FROM (SELECT DISTINCT s, b FROM unnest(source_ids, minutes) AS k(s, b)) AS k;
  SELECT array_agg(s), array_agg(b) INTO hour_sources, hour_buckets
    FROM (SELECT DISTINCT s, date_bin(INTERVAL '1 hour', b, TIMESTAMPTZ 'epoch') AS b
            FROM unnest(minute_sources, minute_buckets) AS k(s, b)) AS k;
  SELECT array_agg(s), array_agg(b) INTO day_sources, day_buckets
    FROM (SELECT DISTINCT s, date_bin(INTERVAL '1 day', b, TIMESTAMPTZ 'epoch') AS b
            FROM unnest(hour_sources, hour_buckets) AS k(s, b)) AS k;
  IF minute_sources IS NULL THEN
    RETURN;
  END IF;
  DELETE FROM metric_rollups_minute AS r USING unnest(minute_sources, minute_buckets) AS k(s, b)
   WHERE r.source_id = k.s AND r.bucket = k.b;
  INSERT INTO metric_rollups_minute
    SELECT * FROM metric_rollups_of_raw(INTERVAL '1 minute', minute_sources, minute_buckets);
  DELETE FROM metric_rollups_hour AS r USING unnest(hour_sources, hour_buckets) AS k(s, b)
   WHERE r.source_id = k.s AND r.bucket = k.b;
  INSERT INTO metric_rollups_hour
    SELECT * FROM metric_rollups_of_raw(INTERVAL '1 hour', hour_sources, hour_buckets);
  DELETE FROM metric_rollups_day AS r USING unnest(day_sources, day_buckets) AS k(s, b)
   WHERE r.source_id = k.s AND r.bucket = k.b;
  INSERT INTO metric_rollups_day
    SELECT * FROM metric_rollups_of_rollups('metric_rollups_hour', INTERVAL '1 day', day_sources, day_buckets);
END
$$;

-- The functions that keep rollups and sources plan each statement for the rows it is given
-- (plan_cache_mode = force_custom_plan): plpgsql would otherwise keep, after a few calls, a plan
-- made for one call's transition table or arrays. A plan made for the empty statement a writer
-- runs to take the revision lock (src/store/source-registry.ts) estimated one row and joined
-- 1,000 sources' hours by nested loops: 2.7 s for each batch of 5,000 samples that followed in
-- that session, instead of about 0.1 s.
-- Adds rollup rows to the stored ones of a level, as one set, by a function per level with static
-- SQL (plpgsql keeps its plan): it reads the stored rows of the added keys once, merges totals and
-- sketches of all keys in one grouping (a statistic over no value stays NULL: sum, min and max
-- skip NULLs), and writes each key once. One statement of many writers' samples adds a row per
-- source and bucket (200 sources writing one sample each are 200 keys at each level); a sketch
-- merge per row, through a statement planned at every call, cost twice as much (measured on this
-- project's 2-core machine, statements in a loop: one row 3.2 -> 1.4 ms, 200 sources' rows of one
-- instant 216 -> 100 ms). Writers of metrics are serialized by the revision row's lock (the
-- metrics_revision migration), so no other writer adds a key between the read and the write;
-- ON CONFLICT is there for the keys that are stored.
DO $do$
DECLARE
  level TEXT;
BEGIN
  FOREACH level IN ARRAY ARRAY['minute', 'hour', 'day'] LOOP
    EXECUTE format($create$
      CREATE FUNCTION %1$I(additions metric_rollups_minute[]) RETURNS void
        LANGUAGE plpgsql SET search_path FROM CURRENT SET plan_cache_mode = force_custom_plan AS $function$
      BEGIN
        WITH added AS MATERIALIZED (
          SELECT * FROM unnest(additions)
        ), both_rows AS MATERIALIZED (
          SELECT * FROM added
          UNION ALL
          -- A semi-join: an addition may hold several rows of one key (a day's hours).
          SELECT * FROM %2$I WHERE (source_id, bucket) IN (SELECT source_id, bucket FROM added)
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
        ON CONFLICT (source_id, bucket) DO UPDATE SET
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
    $create$, 'metric_rollups_merge_' || level, 'metric_rollups_' || level);
  END LOOP;
END
$do$;

-- INSERT (and COPY, and the insert half of INSERT ... ON CONFLICT DO UPDATE) adds: one pass over
-- the statement's new rows makes the totals of each (source, minute), another the totals and
-- sketches of each (source, hour), the days are their hours' additions, and each level is merged
-- into the stored rows. Rows its UPDATE trigger already counted are left out (see
-- metric_rollups_change): that trigger recomputed their keys from the table, where this
-- statement's rows already are.
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
    PERFORM metric_rollups_merge_hour(hours);
    PERFORM metric_rollups_merge_day(days);
  END IF;
  RETURN NULL;
END
$$;

-- UPDATE and DELETE recompute the (source, minute) keys their rows were and are in, exactly, from
-- raw rows. INSERT ... ON CONFLICT DO UPDATE fires this UPDATE trigger before its INSERT trigger,
-- when the statement's inserted rows are already in the table: the keys recomputed here hold
-- them, so they are noted (until the end of the transaction, cleared when the next INSERT
-- statement starts) for the INSERT trigger that follows to leave out.
CREATE OR REPLACE FUNCTION "metric_rollups_change"() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT SET plan_cache_mode = force_custom_plan AS $$
DECLARE
  source_ids INTEGER[];
  minutes TIMESTAMPTZ[];
BEGIN
  IF TG_OP = 'UPDATE' THEN
    SELECT array_agg(source_id), array_agg(bucket) INTO source_ids, minutes
      FROM (SELECT source_id, date_bin(INTERVAL '1 minute', "timestamp", TIMESTAMPTZ 'epoch') AS bucket FROM old_rows
             UNION
            SELECT source_id, date_bin(INTERVAL '1 minute', "timestamp", TIMESTAMPTZ 'epoch') FROM new_rows) AS k;
    PERFORM set_config('metric_rollups.recomputed_sources', coalesce(source_ids, '{}')::text, true);
    PERFORM set_config('metric_rollups.recomputed_minutes', coalesce(minutes, '{}')::text, true);
  ELSE
    SELECT array_agg(source_id), array_agg(bucket) INTO source_ids, minutes
      FROM (SELECT DISTINCT source_id, date_bin(INTERVAL '1 minute', "timestamp", TIMESTAMPTZ 'epoch') AS bucket
              FROM old_rows) AS k;
  END IF;
  PERFORM metric_rollups_recompute(source_ids, minutes);
  RETURN NULL;
END
$$;

-- Every INSERT statement starts with no keys noted: a note is for the statement that made it.
CREATE OR REPLACE FUNCTION "metric_rollups_insert_starts"() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('metric_rollups.recomputed_sources', '', true);
  PERFORM set_config('metric_rollups.recomputed_minutes', '', true);
  RETURN NULL;
END
$$;

-- A source's first and last seen bound the timestamps of the samples written for it: widened by
-- every statement that writes samples (never narrowed: a source was seen even if its samples are
-- deleted; least and greatest skip a NULL). Only the sources whose bounds move are updated.
CREATE FUNCTION "sources_seen"() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT SET plan_cache_mode = force_custom_plan AS $$
BEGIN
  UPDATE sources AS s
     SET first_seen = least(s.first_seen, n.first_seen), last_seen = greatest(s.last_seen, n.last_seen)
    FROM (SELECT source_id, min("timestamp") AS first_seen, max("timestamp") AS last_seen
            FROM new_rows GROUP BY 1) AS n
   WHERE s.id = n.source_id
     AND (s.first_seen IS NULL OR n.first_seen < s.first_seen OR n.last_seen > s.last_seen);
  RETURN NULL;
END
$$;

CREATE TRIGGER "sources_seen_insert"
  AFTER INSERT ON "metrics" REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION "sources_seen"();
CREATE TRIGGER "sources_seen_update"
  AFTER UPDATE ON "metrics" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION "sources_seen"();
-- Also in sessions with session_replication_role = replica (pg_restore --disable-triggers).
ALTER TABLE "metrics" ENABLE ALWAYS TRIGGER "sources_seen_insert";
ALTER TABLE "metrics" ENABLE ALWAYS TRIGGER "sources_seen_update";
