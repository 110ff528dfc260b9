-- CreateTable
CREATE TABLE "metrics_revision" (
    "id" BOOLEAN NOT NULL DEFAULT true,
    "revision" UUID NOT NULL DEFAULT gen_random_uuid(),

    CONSTRAINT "metrics_revision_pkey" PRIMARY KEY ("id")
);

-- One row only: the id can only be true.
ALTER TABLE "metrics_revision" ADD CONSTRAINT "metrics_revision_single_row" CHECK ("id");
INSERT INTO "metrics_revision" DEFAULT VALUES;

-- Every statement that writes to metrics gives the data a new random revision in the same
-- transaction, so a snapshot that shows a revision shows exactly the rows it names; a backup
-- restores both together. The service remembers aggregates under the revision they were computed
-- at (src/metrics/aggregate-cache.ts).
-- BEFORE, not AFTER: a writer takes the revision row's lock before it touches any key of metrics,
-- so two transactions writing overlapping keys queue on the revision instead of deadlocking.
-- The table is found through the trigger's own schema, not the writer's search_path, and updated
-- with the function owner's rights: a role that may write metrics needs none on metrics_revision.
CREATE FUNCTION "metrics_new_revision"() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
  EXECUTE format('UPDATE %I.metrics_revision SET revision = gen_random_uuid()', TG_TABLE_SCHEMA);
  IF TG_LEVEL = 'ROW' THEN
    RETURN COALESCE(NEW, OLD);
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER "metrics_new_revision"
  BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON "metrics"
  FOR EACH STATEMENT EXECUTE FUNCTION "metrics_new_revision"();
-- Also in sessions with session_replication_role = replica (pg_restore --disable-triggers).
ALTER TABLE "metrics" ENABLE ALWAYS TRIGGER "metrics_new_revision";

-- Logical replication's apply worker fires row triggers only (and TRUNCATE's statement trigger),
-- so rows arriving at a subscriber renew the revision through this one, which fires only there.
CREATE TRIGGER "metrics_new_revision_replicated"
  BEFORE INSERT OR UPDATE OR DELETE ON "metrics"
  FOR EACH ROW EXECUTE FUNCTION "metrics_new_revision"();
ALTER TABLE "metrics" ENABLE REPLICA TRIGGER "metrics_new_revision_replicated";
