-- Sketch tails: each merged hour and day row (part 0) keeps, for each value, how many of its values
-- lie above a few of its sketch's keys, the first keys at or past 50, 75, 90, 95, 97, 98 and 99%
-- of its values and its last key: [count, key, above, key, above, ...]. A ranking of sources by a
-- percentile ("the 10 hottest by CPU p95") bounds every source's percentile from above by these
-- rows alone (domain/quantile-sketch.ts, quantileUpperBound) and merges the sketches only of
-- sources that can still rank. The bound it had, each source's maximum, excluded almost none: on
-- 1,000 sources with a tenth p95 of 5.0, maxima of 7 to 9 (bench/results/2026-12-07-rollup-parts.md).
-- Generated, so every writer of part 0 (fold, merge, recompute, rebuild) keeps it without a change;
-- parts above 0 (additions not folded yet) have none, and are bounded by their maximum instead,
-- which spares the writers' appends the cost (18 us a row for a 60-key sketch, on this project's
-- 2-core machine).

-- Keys ascend in every stored sketch (each is made by array_agg ORDER BY key).
CREATE FUNCTION "metric_sketch_tail"(keys INTEGER[], counts INTEGER[]) RETURNS INTEGER[]
  LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  fractions CONSTANT NUMERIC[] := ARRAY[0.5, 0.75, 0.9, 0.95, 0.97, 0.98, 0.99, 1];
  total INTEGER := 0;
  seen INTEGER := 0;
  n INTEGER;
  i INTEGER := 0;
  step INTEGER := 1;
  goal INTEGER;
  tail INTEGER[];
BEGIN
  FOREACH n IN ARRAY counts LOOP total := total + n; END LOOP;
  tail := ARRAY[total];
  goal := ceil(total * fractions[step]);
  FOREACH n IN ARRAY counts LOOP
    i := i + 1;
    seen := seen + n;
    IF seen >= goal THEN
      tail := tail || keys[i] || (total - seen);
      WHILE step <= cardinality(fractions) AND seen >= goal LOOP
        step := step + 1;
        goal := ceil(total * fractions[step]);
      END LOOP;
      EXIT WHEN step > cardinality(fractions);
    END IF;
  END LOOP;
  RETURN tail;
END
$$;

ALTER TABLE "metric_rollups_hour"
  ADD COLUMN "cpu_load_sketch_tail" INTEGER[] GENERATED ALWAYS AS (
    CASE WHEN part = 0 THEN metric_sketch_tail(cpu_load_sketch_keys, cpu_load_sketch_counts) END) STORED,
  ADD COLUMN "concurrency_sketch_tail" INTEGER[] GENERATED ALWAYS AS (
    CASE WHEN part = 0 THEN metric_sketch_tail(concurrency_sketch_keys, concurrency_sketch_counts) END) STORED;
ALTER TABLE "metric_rollups_day"
  ADD COLUMN "cpu_load_sketch_tail" INTEGER[] GENERATED ALWAYS AS (
    CASE WHEN part = 0 THEN metric_sketch_tail(cpu_load_sketch_keys, cpu_load_sketch_counts) END) STORED,
  ADD COLUMN "concurrency_sketch_tail" INTEGER[] GENERATED ALWAYS AS (
    CASE WHEN part = 0 THEN metric_sketch_tail(concurrency_sketch_keys, concurrency_sketch_counts) END) STORED;
