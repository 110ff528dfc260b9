-- metrics becomes a table partitioned by time range, so retention drops whole partitions and a
-- question about a window reads only the partitions it overlaps.
--
-- What Prisma's schema language cannot express, and this script does by hand (the drift check
-- compares only columns, keys and indexes, which prisma/schema.prisma does describe):
--   - PARTITION BY RANGE ("timestamp"), the day partitions and the DEFAULT partition;
--   - the CHECK constraints of 20261127000000_create_metrics;
--   - the triggers of 20261127211955_metrics_revision and 20261202000000_metrics_changes, which
--     belonged to the table this script replaces and are created again on the new one.
--
-- A partitioned table's primary key must include the partition key: the key is now "timestamp"
-- (it was already unique), and id, drawn from the same sequence as before, keeps a plain index.
-- Nothing but the sequence makes ids unique; the service never writes an explicit id.
--
-- Partitions are named and bounded as pg_partman 4.x names and bounds daily children
-- (metrics_pYYYY_MM_DD, midnight to midnight UTC), so when the service hands the table to
-- pg_partman (src/store/metric-partitions.ts) it adopts these instead of creating clashing ones.
-- Rows of a time no partition covers go to metrics_default: an insert is never refused.

ALTER TABLE "metrics" RENAME TO "metrics_unpartitioned";
ALTER TABLE "metrics_unpartitioned" RENAME CONSTRAINT "metrics_pkey" TO "metrics_unpartitioned_pkey";
ALTER INDEX "metrics_timestamp_key" RENAME TO "metrics_unpartitioned_timestamp_key";

CREATE TABLE "metrics" (
    "id" BIGINT NOT NULL DEFAULT nextval('metrics_id_seq'),
    "timestamp" TIMESTAMPTZ(3) NOT NULL,
    "cpu_load" REAL NOT NULL,
    "concurrency" INTEGER NOT NULL,

    CONSTRAINT "metrics_pkey" PRIMARY KEY ("timestamp")
) PARTITION BY RANGE ("timestamp");

-- The sequence moves to the new table with its position: no id is drawn twice.
ALTER SEQUENCE "metrics_id_seq" OWNED BY "metrics"."id";

CREATE INDEX "metrics_id_idx" ON "metrics"("id");

ALTER TABLE "metrics"
  ADD CONSTRAINT "metrics_cpu_load_finite_non_negative"
    CHECK ("cpu_load" >= 0 AND "cpu_load" < 'Infinity'::real),
  ADD CONSTRAINT "metrics_concurrency_non_negative"
    CHECK ("concurrency" >= 0);

CREATE TABLE "metrics_default" PARTITION OF "metrics" DEFAULT;

-- One partition per UTC day that has rows, found by walking the timestamp index a day at a time
-- (one index probe per day, not a scan of the table). 24 hours, not '1 day': in a session time
-- zone with daylight saving time, '1 day' is sometimes 23 or 25 hours.
DO $$
DECLARE
  day timestamptz;
BEGIN
  SELECT date_trunc('day', min("timestamp"), 'UTC') INTO day FROM "metrics_unpartitioned";
  WHILE day IS NOT NULL LOOP
    EXECUTE format('CREATE TABLE %I PARTITION OF "metrics" FOR VALUES FROM (%L) TO (%L)',
      'metrics_p' || to_char(day AT TIME ZONE 'UTC', 'YYYY_MM_DD'), day, day + interval '24 hours');
    SELECT date_trunc('day', min("timestamp"), 'UTC') INTO day
      FROM "metrics_unpartitioned" WHERE "timestamp" >= day + interval '24 hours';
  END LOOP;
END
$$;

-- Every row with its own id; the new table has no triggers yet, so copying announces nothing and
-- leaves the revision alone (the data does not change).
INSERT INTO "metrics" ("id", "timestamp", "cpu_load", "concurrency")
  SELECT "id", "timestamp", "cpu_load", "concurrency" FROM "metrics_unpartitioned";

DROP TABLE "metrics_unpartitioned";

-- The triggers, as 20261127211955_metrics_revision and 20261202000000_metrics_changes made them
-- (their functions are unchanged). On a partitioned table the statement triggers fire for the
-- statement on the root, with transition tables holding the rows of every partition; the row
-- trigger is cloned onto each partition, present and future.
CREATE TRIGGER "metrics_new_revision"
  BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON "metrics"
  FOR EACH STATEMENT EXECUTE FUNCTION "metrics_new_revision"();
ALTER TABLE "metrics" ENABLE ALWAYS TRIGGER "metrics_new_revision";

CREATE TRIGGER "metrics_new_revision_replicated"
  BEFORE INSERT OR UPDATE OR DELETE ON "metrics"
  FOR EACH ROW EXECUTE FUNCTION "metrics_new_revision"();
ALTER TABLE "metrics" ENABLE REPLICA TRIGGER "metrics_new_revision_replicated";

CREATE TRIGGER "metrics_announce_insert"
  AFTER INSERT ON "metrics" REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION "metrics_announce"();
CREATE TRIGGER "metrics_announce_update"
  AFTER UPDATE ON "metrics" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION "metrics_announce"();
CREATE TRIGGER "metrics_announce_delete"
  AFTER DELETE ON "metrics" REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION "metrics_announce"();
CREATE TRIGGER "metrics_announce_truncate"
  AFTER TRUNCATE ON "metrics"
  FOR EACH STATEMENT EXECUTE FUNCTION "metrics_announce"();
ALTER TABLE "metrics" ENABLE ALWAYS TRIGGER "metrics_announce_insert";
ALTER TABLE "metrics" ENABLE ALWAYS TRIGGER "metrics_announce_update";
ALTER TABLE "metrics" ENABLE ALWAYS TRIGGER "metrics_announce_delete";
ALTER TABLE "metrics" ENABLE ALWAYS TRIGGER "metrics_announce_truncate";
