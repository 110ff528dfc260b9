-- Rollups of metrics: one row per minute, hour and day that has samples, keyed by the bucket's
-- start (UTC, aligned to the Unix epoch), holding what merges exactly (count, first and last
-- timestamp, sum, min and max of each column) and a mergeable percentile sketch of each column.
-- Prisma knows the tables (prisma/schema.prisma); the functions and triggers that keep them are
-- beyond its schema language and live only here.
--
-- The sketch is DDSketch's log-bucketed histogram with relative accuracy alpha = 1%:
-- gamma = (1 + alpha) / (1 - alpha), a positive value x counts in bucket ceil(log_gamma(x)), and
-- zero (both columns are CHECKed non-negative, so there are no negatives) counts under the key
-- -32768, below every key of a positive real (the smallest, 1.4e-45, has key -5,160). It is two
-- arrays, the keys in ascending order and their counts; src/domain/quantile-sketch.ts has the math.
CREATE TABLE "metric_rollups_minute" (
    "bucket" TIMESTAMPTZ(3) NOT NULL,
    "row_count" BIGINT NOT NULL,
    "first_timestamp" TIMESTAMPTZ(3) NOT NULL,
    "last_timestamp" TIMESTAMPTZ(3) NOT NULL,
    "cpu_load_sum" DOUBLE PRECISION NOT NULL,
    "cpu_load_min" REAL NOT NULL,
    "cpu_load_max" REAL NOT NULL,
    "cpu_load_sketch_keys" INTEGER[],
    "cpu_load_sketch_counts" INTEGER[],
    "concurrency_sum" BIGINT NOT NULL,
    "concurrency_min" INTEGER NOT NULL,
    "concurrency_max" INTEGER NOT NULL,
    "concurrency_sketch_keys" INTEGER[],
    "concurrency_sketch_counts" INTEGER[],

    CONSTRAINT "metric_rollups_minute_pkey" PRIMARY KEY ("bucket")
);

CREATE TABLE "metric_rollups_hour" (LIKE "metric_rollups_minute" INCLUDING ALL);
CREATE TABLE "metric_rollups_day" (LIKE "metric_rollups_minute" INCLUDING ALL);

CREATE FUNCTION "metric_sketch_key"(value DOUBLE PRECISION) RETURNS INTEGER
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN value = 0 THEN -32768
              ELSE ceil(ln(value) / ln(1.01::float8 / 0.99::float8))::integer END
$$;

-- The union of two sketches: the counts of equal keys added.
CREATE FUNCTION "metric_sketch_merge"(
    keys_a INTEGER[], counts_a INTEGER[], keys_b INTEGER[], counts_b INTEGER[],
    OUT keys INTEGER[], OUT counts INTEGER[])
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT array_agg(key ORDER BY key), array_agg(total ORDER BY key)
    FROM (SELECT key, sum(count)::integer AS total
            FROM (SELECT * FROM unnest(keys_a, counts_a)
                  UNION ALL
                  SELECT * FROM unnest(keys_b, counts_b)) AS both_sides(key, count)
           GROUP BY key) AS merged
$$;

-- Rollup rows of `width` recomputed from the raw rows of the given buckets (buckets with no rows
-- give no row).
CREATE FUNCTION "metric_rollups_of_raw"(width INTERVAL, buckets TIMESTAMPTZ[])
  RETURNS SETOF "metric_rollups_minute"
  LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
  WITH keyed AS MATERIALIZED (
    SELECT b.bucket, m."timestamp", m.cpu_load, m.concurrency,
           metric_sketch_key(m.cpu_load) AS cpu_key, metric_sketch_key(m.concurrency) AS concurrency_key
      FROM unnest(buckets) AS b(bucket)
      JOIN metrics AS m ON m."timestamp" >= b.bucket AND m."timestamp" < b.bucket + width
  ), cpu AS (
    SELECT bucket, array_agg(key ORDER BY key) AS keys, array_agg(n ORDER BY key) AS counts
      FROM (SELECT bucket, cpu_key AS key, count(*)::integer AS n FROM keyed GROUP BY bucket, cpu_key) AS c
     GROUP BY bucket
  ), concurrency AS (
    SELECT bucket, array_agg(key ORDER BY key) AS keys, array_agg(n ORDER BY key) AS counts
      FROM (SELECT bucket, concurrency_key AS key, count(*)::integer AS n FROM keyed GROUP BY bucket, concurrency_key) AS c
     GROUP BY bucket
  )
  SELECT s.bucket, s.row_count, s.first_timestamp, s.last_timestamp,
         s.cpu_load_sum, s.cpu_load_min, s.cpu_load_max, cpu.keys, cpu.counts,
         s.concurrency_sum, s.concurrency_min, s.concurrency_max, concurrency.keys, concurrency.counts
    FROM (SELECT bucket, count(*) AS row_count, min("timestamp") AS first_timestamp, max("timestamp") AS last_timestamp,
                 sum(cpu_load::float8) AS cpu_load_sum, min(cpu_load) AS cpu_load_min, max(cpu_load) AS cpu_load_max,
                 sum(concurrency)::bigint AS concurrency_sum, min(concurrency) AS concurrency_min,
                 max(concurrency) AS concurrency_max
            FROM keyed GROUP BY bucket) AS s
    JOIN cpu USING (bucket)
    JOIN concurrency USING (bucket)
$$;

-- Rollup rows of `width` merged from the rows of the finer level `source` within the given
-- buckets: an hour is 60 minute rows to merge, a day 24 hour rows.
CREATE FUNCTION "metric_rollups_of_rollups"(source REGCLASS, width INTERVAL, buckets TIMESTAMPTZ[])
  RETURNS SETOF "metric_rollups_minute"
  LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $$
BEGIN
  RETURN QUERY EXECUTE format($sql$
  WITH finer AS MATERIALIZED (
    SELECT b.bucket AS coarse, f.*
      FROM unnest($2) AS b(bucket)
      JOIN %s AS f ON f.bucket >= b.bucket AND f.bucket < b.bucket + $1
  ), cpu AS (
    SELECT coarse, array_agg(key ORDER BY key) AS keys, array_agg(n ORDER BY key) AS counts
      FROM (SELECT coarse, key, sum(n)::integer AS n
              FROM finer, unnest(cpu_load_sketch_keys, cpu_load_sketch_counts) AS c(key, n)
             GROUP BY coarse, key) AS c
     GROUP BY coarse
  ), concurrency AS (
    SELECT coarse, array_agg(key ORDER BY key) AS keys, array_agg(n ORDER BY key) AS counts
      FROM (SELECT coarse, key, sum(n)::integer AS n
              FROM finer, unnest(concurrency_sketch_keys, concurrency_sketch_counts) AS c(key, n)
             GROUP BY coarse, key) AS c
     GROUP BY coarse
  )
  SELECT s.coarse::timestamptz(3), s.row_count, s.first_timestamp::timestamptz(3), s.last_timestamp::timestamptz(3),
         s.cpu_load_sum, s.cpu_load_min, s.cpu_load_max, cpu.keys, cpu.counts,
         s.concurrency_sum, s.concurrency_min, s.concurrency_max, concurrency.keys, concurrency.counts
    FROM (SELECT coarse, sum(row_count)::bigint AS row_count, min(first_timestamp) AS first_timestamp,
                 max(last_timestamp) AS last_timestamp, sum(cpu_load_sum) AS cpu_load_sum,
                 min(cpu_load_min) AS cpu_load_min, max(cpu_load_max) AS cpu_load_max,
                 sum(concurrency_sum)::bigint AS concurrency_sum, min(concurrency_min) AS concurrency_min,
                 max(concurrency_max) AS concurrency_max
            FROM finer GROUP BY coarse) AS s
    JOIN cpu USING (coarse)
    JOIN concurrency USING (coarse)
  $sql$, source) USING width, buckets;
END
$$;

-- Recomputes the minutes given from raw rows, exactly (a minimum or maximum cannot be
-- subtracted), then their hours from the minutes and their days from the hours. Rollup retention
-- never drops a bucket whose raw rows are still stored (src/maintenance/rollup-retention.ts), so
-- wherever a raw row can change, its minutes and hours are all there to merge.
CREATE FUNCTION "metric_rollups_recompute"(minutes TIMESTAMPTZ[]) RETURNS void
  LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  hours TIMESTAMPTZ[] := ARRAY(SELECT DISTINCT date_bin(INTERVAL '1 hour', m, TIMESTAMPTZ 'epoch') FROM unnest(minutes) AS m);
  days TIMESTAMPTZ[] := ARRAY(SELECT DISTINCT date_bin(INTERVAL '1 day', h, TIMESTAMPTZ 'epoch') FROM unnest(hours) AS h);
BEGIN
  DELETE FROM metric_rollups_minute WHERE bucket = ANY (minutes);
  INSERT INTO metric_rollups_minute SELECT * FROM metric_rollups_of_raw(INTERVAL '1 minute', minutes);
  DELETE FROM metric_rollups_hour WHERE bucket = ANY (hours);
  INSERT INTO metric_rollups_hour
    SELECT * FROM metric_rollups_of_rollups('metric_rollups_minute', INTERVAL '1 hour', hours);
  DELETE FROM metric_rollups_day WHERE bucket = ANY (days);
  INSERT INTO metric_rollups_day
    SELECT * FROM metric_rollups_of_rollups('metric_rollups_hour', INTERVAL '1 day', days);
END
$$;

-- Adds rollup rows to the stored ones of `target`, bucket by bucket.
CREATE FUNCTION "metric_rollups_merge"(target REGCLASS, additions "metric_rollups_minute"[]) RETURNS void
  LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
  EXECUTE format($sql$
    INSERT INTO %s AS stored SELECT * FROM unnest($1)
    ON CONFLICT (bucket) DO UPDATE SET
      row_count = stored.row_count + excluded.row_count,
      first_timestamp = least(stored.first_timestamp, excluded.first_timestamp),
      last_timestamp = greatest(stored.last_timestamp, excluded.last_timestamp),
      cpu_load_sum = stored.cpu_load_sum + excluded.cpu_load_sum,
      cpu_load_min = least(stored.cpu_load_min, excluded.cpu_load_min),
      cpu_load_max = greatest(stored.cpu_load_max, excluded.cpu_load_max),
      (cpu_load_sketch_keys, cpu_load_sketch_counts) = (
        SELECT keys, counts FROM metric_sketch_merge(stored.cpu_load_sketch_keys, stored.cpu_load_sketch_counts,
                                                     excluded.cpu_load_sketch_keys, excluded.cpu_load_sketch_counts)),
      concurrency_sum = stored.concurrency_sum + excluded.concurrency_sum,
      concurrency_min = least(stored.concurrency_min, excluded.concurrency_min),
      concurrency_max = greatest(stored.concurrency_max, excluded.concurrency_max),
      (concurrency_sketch_keys, concurrency_sketch_counts) = (
        SELECT keys, counts FROM metric_sketch_merge(stored.concurrency_sketch_keys, stored.concurrency_sketch_counts,
                                                     excluded.concurrency_sketch_keys, excluded.concurrency_sketch_counts))
  $sql$, target) USING additions;
END
$$;

-- INSERT (and COPY, and the insert half of INSERT ... ON CONFLICT DO UPDATE) adds: one pass over
-- the statement's new rows (but those of minutes its UPDATE trigger recomputed, see
-- metric_rollups_change) makes its minutes, the hours are summed from those minutes and the
-- days from those hours, and each level is merged into the stored rows.
CREATE FUNCTION "metric_rollups_insert"() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  recomputed TIMESTAMPTZ[] := coalesce(nullif(current_setting('metric_rollups.recomputed_minutes', true), ''), '{}');
  minutes metric_rollups_minute[];
  hours metric_rollups_minute[];
  days metric_rollups_minute[];
BEGIN
  -- One hash aggregation over the new rows gives each minute's totals (cpu_key and
  -- concurrency_key both null) and its counts by cpu_load key and by concurrency key.
  WITH grouped AS MATERIALIZED (
    SELECT date_bin(INTERVAL '1 minute', "timestamp", TIMESTAMPTZ 'epoch') AS bucket,
           metric_sketch_key(cpu_load) AS cpu_key, metric_sketch_key(concurrency) AS concurrency_key,
           count(*) AS row_count, min("timestamp") AS first_timestamp, max("timestamp") AS last_timestamp,
           sum(cpu_load::float8) AS cpu_load_sum, min(cpu_load) AS cpu_load_min, max(cpu_load) AS cpu_load_max,
           sum(concurrency)::bigint AS concurrency_sum, min(concurrency) AS concurrency_min,
           max(concurrency) AS concurrency_max
      FROM new_rows
     WHERE date_bin(INTERVAL '1 minute', "timestamp", TIMESTAMPTZ 'epoch') <> ALL (recomputed)
     GROUP BY GROUPING SETS ((1), (1, 2), (1, 3))
  ), minute_totals AS MATERIALIZED (
    SELECT bucket, row_count, first_timestamp, last_timestamp, cpu_load_sum, cpu_load_min, cpu_load_max,
           concurrency_sum, concurrency_min, concurrency_max
      FROM grouped WHERE cpu_key IS NULL AND concurrency_key IS NULL
  ), hour_totals AS MATERIALIZED (
    SELECT date_bin(INTERVAL '1 hour', bucket, TIMESTAMPTZ 'epoch') AS bucket, sum(row_count)::bigint AS row_count,
           min(first_timestamp) AS first_timestamp, max(last_timestamp) AS last_timestamp,
           sum(cpu_load_sum) AS cpu_load_sum, min(cpu_load_min) AS cpu_load_min, max(cpu_load_max) AS cpu_load_max,
           sum(concurrency_sum)::bigint AS concurrency_sum, min(concurrency_min) AS concurrency_min,
           max(concurrency_max) AS concurrency_max
      FROM minute_totals GROUP BY 1
  ), day_totals AS (
    SELECT date_bin(INTERVAL '1 day', bucket, TIMESTAMPTZ 'epoch') AS bucket, sum(row_count)::bigint AS row_count,
           min(first_timestamp) AS first_timestamp, max(last_timestamp) AS last_timestamp,
           sum(cpu_load_sum) AS cpu_load_sum, min(cpu_load_min) AS cpu_load_min, max(cpu_load_max) AS cpu_load_max,
           sum(concurrency_sum)::bigint AS concurrency_sum, min(concurrency_min) AS concurrency_min,
           max(concurrency_max) AS concurrency_max
      FROM hour_totals GROUP BY 1
  ), minute_cpu AS MATERIALIZED (
    SELECT bucket, cpu_key AS key, row_count AS n FROM grouped WHERE cpu_key IS NOT NULL
  ), hour_cpu AS MATERIALIZED (
    SELECT date_bin(INTERVAL '1 hour', bucket, TIMESTAMPTZ 'epoch') AS bucket, key, sum(n) AS n FROM minute_cpu GROUP BY 1, 2
  ), day_cpu AS (
    SELECT date_bin(INTERVAL '1 day', bucket, TIMESTAMPTZ 'epoch') AS bucket, key, sum(n) AS n FROM hour_cpu GROUP BY 1, 2
  ), minute_concurrency AS MATERIALIZED (
    SELECT bucket, concurrency_key AS key, row_count AS n FROM grouped WHERE concurrency_key IS NOT NULL
  ), hour_concurrency AS MATERIALIZED (
    SELECT date_bin(INTERVAL '1 hour', bucket, TIMESTAMPTZ 'epoch') AS bucket, key, sum(n) AS n FROM minute_concurrency GROUP BY 1, 2
  ), day_concurrency AS (
    SELECT date_bin(INTERVAL '1 day', bucket, TIMESTAMPTZ 'epoch') AS bucket, key, sum(n) AS n FROM hour_concurrency GROUP BY 1, 2
  )
  SELECT
    (SELECT array_agg(ROW(t.bucket, t.row_count, t.first_timestamp, t.last_timestamp, t.cpu_load_sum, t.cpu_load_min,
                         t.cpu_load_max, c.keys, c.counts, t.concurrency_sum, t.concurrency_min,
                         t.concurrency_max, k.keys, k.counts)::metric_rollups_minute)
       FROM minute_totals AS t
       JOIN (SELECT bucket, array_agg(key ORDER BY key) AS keys, array_agg(n::integer ORDER BY key) AS counts
               FROM minute_cpu GROUP BY bucket) AS c USING (bucket)
       JOIN (SELECT bucket, array_agg(key ORDER BY key) AS keys, array_agg(n::integer ORDER BY key) AS counts
               FROM minute_concurrency GROUP BY bucket) AS k USING (bucket)),
    (SELECT array_agg(ROW(t.bucket, t.row_count, t.first_timestamp, t.last_timestamp, t.cpu_load_sum, t.cpu_load_min,
                         t.cpu_load_max, c.keys, c.counts, t.concurrency_sum, t.concurrency_min,
                         t.concurrency_max, k.keys, k.counts)::metric_rollups_minute)
       FROM hour_totals AS t
       JOIN (SELECT bucket, array_agg(key ORDER BY key) AS keys, array_agg(n::integer ORDER BY key) AS counts
               FROM hour_cpu GROUP BY bucket) AS c USING (bucket)
       JOIN (SELECT bucket, array_agg(key ORDER BY key) AS keys, array_agg(n::integer ORDER BY key) AS counts
               FROM hour_concurrency GROUP BY bucket) AS k USING (bucket)),
    (SELECT array_agg(ROW(t.bucket, t.row_count, t.first_timestamp, t.last_timestamp, t.cpu_load_sum, t.cpu_load_min,
                         t.cpu_load_max, c.keys, c.counts, t.concurrency_sum, t.concurrency_min,
                         t.concurrency_max, k.keys, k.counts)::metric_rollups_minute)
       FROM day_totals AS t
       JOIN (SELECT bucket, array_agg(key ORDER BY key) AS keys, array_agg(n::integer ORDER BY key) AS counts
               FROM day_cpu GROUP BY bucket) AS c USING (bucket)
       JOIN (SELECT bucket, array_agg(key ORDER BY key) AS keys, array_agg(n::integer ORDER BY key) AS counts
               FROM day_concurrency GROUP BY bucket) AS k USING (bucket))
    INTO minutes, hours, days;
  IF minutes IS NOT NULL THEN
    PERFORM metric_rollups_merge('metric_rollups_minute', minutes);
    PERFORM metric_rollups_merge('metric_rollups_hour', hours);
    PERFORM metric_rollups_merge('metric_rollups_day', days);
  END IF;
  RETURN NULL;
END
$$;

-- UPDATE and DELETE recompute the minutes their rows were and are in, exactly, from raw rows.
-- INSERT ... ON CONFLICT DO UPDATE fires this UPDATE trigger before its INSERT trigger, when the
-- statement's inserted rows are already in the table: the minutes recomputed here hold them, so
-- they are noted (until the end of the transaction, cleared when the next INSERT statement
-- starts) for the INSERT trigger that follows to leave out.
CREATE FUNCTION "metric_rollups_change"() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  minutes TIMESTAMPTZ[];
BEGIN
  IF TG_OP = 'UPDATE' THEN
    minutes := ARRAY(
      SELECT date_bin(INTERVAL '1 minute', "timestamp", TIMESTAMPTZ 'epoch') FROM old_rows
       UNION
      SELECT date_bin(INTERVAL '1 minute', "timestamp", TIMESTAMPTZ 'epoch') FROM new_rows);
    PERFORM set_config('metric_rollups.recomputed_minutes', minutes::text, true);
  ELSE
    minutes := ARRAY(SELECT DISTINCT date_bin(INTERVAL '1 minute', "timestamp", TIMESTAMPTZ 'epoch') FROM old_rows);
  END IF;
  PERFORM metric_rollups_recompute(minutes);
  RETURN NULL;
END
$$;

-- Every INSERT statement starts with no minutes noted: a note is for the statement that made it.
CREATE FUNCTION "metric_rollups_insert_starts"() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('metric_rollups.recomputed_minutes', '', true);
  RETURN NULL;
END
$$;

CREATE FUNCTION "metric_rollups_truncate"() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  TRUNCATE metric_rollups_minute, metric_rollups_hour, metric_rollups_day;
  RETURN NULL;
END
$$;

-- Statement-level, with transition tables: allowed on a partitioned table's root, and they see
-- the rows of every partition the statement wrote. One trigger per kind of event, as transition
-- tables require.
CREATE TRIGGER "metric_rollups_insert_starts"
  BEFORE INSERT ON "metrics"
  FOR EACH STATEMENT EXECUTE FUNCTION "metric_rollups_insert_starts"();
CREATE TRIGGER "metric_rollups_insert"
  AFTER INSERT ON "metrics" REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION "metric_rollups_insert"();
CREATE TRIGGER "metric_rollups_update"
  AFTER UPDATE ON "metrics" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION "metric_rollups_change"();
CREATE TRIGGER "metric_rollups_delete"
  AFTER DELETE ON "metrics" REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION "metric_rollups_change"();
CREATE TRIGGER "metric_rollups_truncate"
  AFTER TRUNCATE ON "metrics"
  FOR EACH STATEMENT EXECUTE FUNCTION "metric_rollups_truncate"();
-- Also in sessions with session_replication_role = replica (pg_restore --disable-triggers).
ALTER TABLE "metrics" ENABLE ALWAYS TRIGGER "metric_rollups_insert_starts";
ALTER TABLE "metrics" ENABLE ALWAYS TRIGGER "metric_rollups_insert";
ALTER TABLE "metrics" ENABLE ALWAYS TRIGGER "metric_rollups_update";
ALTER TABLE "metrics" ENABLE ALWAYS TRIGGER "metric_rollups_delete";
ALTER TABLE "metrics" ENABLE ALWAYS TRIGGER "metric_rollups_truncate";

-- The rows already stored, rolled up.
INSERT INTO "metric_rollups_minute"
  SELECT * FROM metric_rollups_of_raw(INTERVAL '1 minute', ARRAY(
    SELECT DISTINCT date_bin(INTERVAL '1 minute', "timestamp", TIMESTAMPTZ 'epoch') FROM "metrics"));
INSERT INTO "metric_rollups_hour"
  SELECT * FROM metric_rollups_of_rollups('metric_rollups_minute', INTERVAL '1 hour', ARRAY(
    SELECT DISTINCT date_bin(INTERVAL '1 hour', bucket, TIMESTAMPTZ 'epoch') FROM "metric_rollups_minute"));
INSERT INTO "metric_rollups_day"
  SELECT * FROM metric_rollups_of_rollups('metric_rollups_hour', INTERVAL '1 day', ARRAY(
    SELECT DISTINCT date_bin(INTERVAL '1 day', bucket, TIMESTAMPTZ 'epoch') FROM "metric_rollups_hour"));
