-- Percentile sketches from the hour up. A minute row keeps its exact totals (count, first and
-- last, sum, min, max) and no sketch: the INSERT trigger grouped every statement's rows by
-- (minute, key) for each column, some 45 groups a minute and column, which cost more than storing
-- the rows; by (hour, key) it is about as many groups an hour. A summary keys the raw rows of its
-- unaligned edges, under an hour at either end, instead of reading minute sketches
-- (src/store/metric-store.ts). The row type stays the same for the three levels; a minute row's
-- sketch columns are NULL.

-- Rollup rows of `width` recomputed from the raw rows of the given buckets (buckets with no rows
-- give no row); sketches for widths of an hour and more only.
CREATE OR REPLACE FUNCTION "metric_rollups_of_raw"(width INTERVAL, buckets TIMESTAMPTZ[])
  RETURNS SETOF "metric_rollups_minute"
  LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
  WITH keyed AS MATERIALIZED (
    SELECT b.bucket, m."timestamp", m.cpu_load, m.concurrency,
           metric_sketch_key(m.cpu_load) AS cpu_key, metric_sketch_key(m.concurrency) AS concurrency_key
      FROM unnest(buckets) AS b(bucket)
      JOIN metrics AS m ON m."timestamp" >= b.bucket AND m."timestamp" < b.bucket + width
  ), cpu AS (
    SELECT bucket, array_agg(key ORDER BY key) AS keys, array_agg(n ORDER BY key) AS counts
      FROM (SELECT bucket, cpu_key AS key, count(*)::integer AS n FROM keyed
             WHERE width >= INTERVAL '1 hour' GROUP BY bucket, cpu_key) AS c
     GROUP BY bucket
  ), concurrency AS (
    SELECT bucket, array_agg(key ORDER BY key) AS keys, array_agg(n ORDER BY key) AS counts
      FROM (SELECT bucket, concurrency_key AS key, count(*)::integer AS n FROM keyed
             WHERE width >= INTERVAL '1 hour' GROUP BY bucket, concurrency_key) AS c
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
    LEFT JOIN cpu USING (bucket)
    LEFT JOIN concurrency USING (bucket)
$$;

-- Recomputes the minutes given from raw rows, exactly (a minimum or maximum cannot be
-- subtracted), their hours from raw rows too (their sketches), and their days from the hours.
-- Rollup retention never drops a bucket whose raw rows are still stored, and a partition is at
-- least an hour: wherever a raw row can change, its hour's raw rows are all there.
CREATE OR REPLACE FUNCTION "metric_rollups_recompute"(minutes TIMESTAMPTZ[]) RETURNS void
  LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  hours TIMESTAMPTZ[] := ARRAY(SELECT DISTINCT date_bin(INTERVAL '1 hour', m, TIMESTAMPTZ 'epoch') FROM unnest(minutes) AS m);
  days TIMESTAMPTZ[] := ARRAY(SELECT DISTINCT date_bin(INTERVAL '1 day', h, TIMESTAMPTZ 'epoch') FROM unnest(hours) AS h);
BEGIN
  DELETE FROM metric_rollups_minute WHERE bucket = ANY (minutes);
  INSERT INTO metric_rollups_minute SELECT * FROM metric_rollups_of_raw(INTERVAL '1 minute', minutes);
  DELETE FROM metric_rollups_hour WHERE bucket = ANY (hours);
  INSERT INTO metric_rollups_hour SELECT * FROM metric_rollups_of_raw(INTERVAL '1 hour', hours);
  DELETE FROM metric_rollups_day WHERE bucket = ANY (days);
  INSERT INTO metric_rollups_day
    SELECT * FROM metric_rollups_of_rollups('metric_rollups_hour', INTERVAL '1 day', days);
END
$$;

-- INSERT (and COPY, and the insert half of INSERT ... ON CONFLICT DO UPDATE) adds: one pass over
-- the statement's new rows makes its minutes' totals, another its hours' totals and sketches, the
-- days are summed from the hours, and each level is merged into the stored rows. Rows its UPDATE
-- trigger already counted are left out (see metric_rollups_change): that trigger recomputed their
-- minutes, and their hours and days, from the table, where this statement's rows already are.
CREATE OR REPLACE FUNCTION "metric_rollups_insert"() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  recomputed TIMESTAMPTZ[] := coalesce(nullif(current_setting('metric_rollups.recomputed_minutes', true), ''), '{}');
  recomputed_hours TIMESTAMPTZ[] := ARRAY(
    SELECT DISTINCT date_bin(INTERVAL '1 hour', m, TIMESTAMPTZ 'epoch') FROM unnest(recomputed) AS m);
  minutes metric_rollups_minute[];
  hours metric_rollups_minute[];
  days metric_rollups_minute[];
BEGIN
  WITH minute_totals AS (
    SELECT date_bin(INTERVAL '1 minute', "timestamp", TIMESTAMPTZ 'epoch') AS bucket,
           count(*) AS row_count, min("timestamp") AS first_timestamp, max("timestamp") AS last_timestamp,
           sum(cpu_load::float8) AS cpu_load_sum, min(cpu_load) AS cpu_load_min, max(cpu_load) AS cpu_load_max,
           sum(concurrency)::bigint AS concurrency_sum, min(concurrency) AS concurrency_min,
           max(concurrency) AS concurrency_max
      FROM new_rows
     WHERE date_bin(INTERVAL '1 minute', "timestamp", TIMESTAMPTZ 'epoch') <> ALL (recomputed)
     GROUP BY 1
  )
  SELECT array_agg(ROW(t.bucket, t.row_count, t.first_timestamp, t.last_timestamp, t.cpu_load_sum, t.cpu_load_min,
                       t.cpu_load_max, NULL, NULL, t.concurrency_sum, t.concurrency_min,
                       t.concurrency_max, NULL, NULL)::metric_rollups_minute)
    INTO minutes
    FROM minute_totals AS t;
  -- One hash aggregation gives each hour's totals (both keys null) and its counts by cpu_load key
  -- and by concurrency key.
  WITH grouped AS MATERIALIZED (
    SELECT date_bin(INTERVAL '1 hour', "timestamp", TIMESTAMPTZ 'epoch') AS bucket,
           metric_sketch_key(cpu_load) AS cpu_key, metric_sketch_key(concurrency) AS concurrency_key,
           count(*) AS row_count, min("timestamp") AS first_timestamp, max("timestamp") AS last_timestamp,
           sum(cpu_load::float8) AS cpu_load_sum, min(cpu_load) AS cpu_load_min, max(cpu_load) AS cpu_load_max,
           sum(concurrency)::bigint AS concurrency_sum, min(concurrency) AS concurrency_min,
           max(concurrency) AS concurrency_max
      FROM new_rows
     WHERE date_bin(INTERVAL '1 hour', "timestamp", TIMESTAMPTZ 'epoch') <> ALL (recomputed_hours)
     GROUP BY GROUPING SETS ((1), (1, 2), (1, 3))
  ), hour_totals AS MATERIALIZED (
    SELECT bucket, row_count, first_timestamp, last_timestamp, cpu_load_sum, cpu_load_min, cpu_load_max,
           concurrency_sum, concurrency_min, concurrency_max
      FROM grouped WHERE cpu_key IS NULL AND concurrency_key IS NULL
  ), day_totals AS (
    SELECT date_bin(INTERVAL '1 day', bucket, TIMESTAMPTZ 'epoch') AS bucket, sum(row_count)::bigint AS row_count,
           min(first_timestamp) AS first_timestamp, max(last_timestamp) AS last_timestamp,
           sum(cpu_load_sum) AS cpu_load_sum, min(cpu_load_min) AS cpu_load_min, max(cpu_load_max) AS cpu_load_max,
           sum(concurrency_sum)::bigint AS concurrency_sum, min(concurrency_min) AS concurrency_min,
           max(concurrency_max) AS concurrency_max
      FROM hour_totals GROUP BY 1
  ), hour_cpu AS MATERIALIZED (
    SELECT bucket, cpu_key AS key, row_count AS n FROM grouped WHERE cpu_key IS NOT NULL
  ), day_cpu AS (
    SELECT date_bin(INTERVAL '1 day', bucket, TIMESTAMPTZ 'epoch') AS bucket, key, sum(n) AS n FROM hour_cpu GROUP BY 1, 2
  ), hour_concurrency AS MATERIALIZED (
    SELECT bucket, concurrency_key AS key, row_count AS n FROM grouped WHERE concurrency_key IS NOT NULL
  ), day_concurrency AS (
    SELECT date_bin(INTERVAL '1 day', bucket, TIMESTAMPTZ 'epoch') AS bucket, key, sum(n) AS n FROM hour_concurrency GROUP BY 1, 2
  )
  SELECT
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
    INTO hours, days;
  IF minutes IS NOT NULL THEN
    PERFORM metric_rollups_merge('metric_rollups_minute', minutes);
  END IF;
  IF hours IS NOT NULL THEN
    PERFORM metric_rollups_merge('metric_rollups_hour', hours);
    PERFORM metric_rollups_merge('metric_rollups_day', days);
  END IF;
  RETURN NULL;
END
$$;

-- The minutes' sketches are read no more: gone, as a minute recomputed now has none.
UPDATE "metric_rollups_minute"
   SET cpu_load_sketch_keys = NULL, cpu_load_sketch_counts = NULL,
       concurrency_sketch_keys = NULL, concurrency_sketch_counts = NULL
 WHERE cpu_load_sketch_keys IS NOT NULL OR concurrency_sketch_keys IS NOT NULL;
