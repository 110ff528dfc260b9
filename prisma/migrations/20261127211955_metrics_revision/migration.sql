-- CreateTable
CREATE TABLE "metrics_revision" (
    "id" BOOLEAN NOT NULL DEFAULT true,
    "revision" BIGINT NOT NULL DEFAULT 0,

    CONSTRAINT "metrics_revision_pkey" PRIMARY KEY ("id")
);

-- One row only: the id can only be true.
ALTER TABLE "metrics_revision" ADD CONSTRAINT "metrics_revision_single_row" CHECK ("id");
INSERT INTO "metrics_revision" DEFAULT VALUES;

-- Every statement that writes to metrics increments the revision in the same transaction, so a
-- snapshot that shows revision N shows exactly the rows of revision N. The service remembers
-- aggregates under the revision they were computed at (src/metrics/aggregate-cache.ts).
-- BEFORE, not AFTER: a writer takes the revision row's lock before it touches any key of metrics,
-- so two transactions writing overlapping keys queue on the revision instead of deadlocking.
CREATE FUNCTION "metrics_bump_revision"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE "metrics_revision" SET "revision" = "revision" + 1;
  RETURN NULL;
END
$$;

CREATE TRIGGER "metrics_bump_revision"
  BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON "metrics"
  FOR EACH STATEMENT EXECUTE FUNCTION "metrics_bump_revision"();
