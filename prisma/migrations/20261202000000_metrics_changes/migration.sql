-- Every statement that changes metrics announces itself with one notification on the channel
-- metrics_changes, sent when (and only if) its transaction commits, to every session of this
-- database that listens: each replica of the service listens, so live subscriptions and
-- remembered aggregates follow writes made by any writer (the service, the ingest script, psql).
-- One notification per statement, never per row: the payload summarises the statement's rows
-- from its transition table in a fixed size of about 200 bytes, far below the 8,000-byte limit.
--   {"op":"INSERT","rows":1000,"maxId":"123","from":"2026-...","to":"2026-..."}
-- maxId is the largest id among the rows (an id is a commit position: see src/live/change-feed.ts);
-- from/to bound the rows' timestamps, before and after an UPDATE.
CREATE FUNCTION "metrics_announce"() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
  changed record;
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    PERFORM pg_notify('metrics_changes', json_build_object('op', TG_OP)::text);
    RETURN NULL;
  ELSIF TG_OP = 'INSERT' THEN
    SELECT count(*) AS rows, max(id) AS max_id, min("timestamp") AS first, max("timestamp") AS last
      INTO changed FROM new_rows;
  ELSIF TG_OP = 'DELETE' THEN
    SELECT count(*) AS rows, max(id) AS max_id, min("timestamp") AS first, max("timestamp") AS last
      INTO changed FROM old_rows;
  ELSE
    SELECT count(*) / 2 AS rows, max(id) AS max_id, min("timestamp") AS first, max("timestamp") AS last
      INTO changed FROM (SELECT id, "timestamp" FROM new_rows UNION ALL SELECT id, "timestamp" FROM old_rows) AS both_sides;
  END IF;
  IF changed.rows > 0 THEN
    PERFORM pg_notify('metrics_changes', json_build_object(
      'op', TG_OP,
      'rows', changed.rows,
      'maxId', changed.max_id::text,
      'from', changed.first,
      'to', changed.last)::text);
  END IF;
  RETURN NULL;
END
$$;

-- A trigger with transition tables fires for one kind of event, so there is one per kind.
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
-- Also in sessions with session_replication_role = replica (pg_restore --disable-triggers).
ALTER TABLE "metrics" ENABLE ALWAYS TRIGGER "metrics_announce_insert";
ALTER TABLE "metrics" ENABLE ALWAYS TRIGGER "metrics_announce_update";
ALTER TABLE "metrics" ENABLE ALWAYS TRIGGER "metrics_announce_delete";
ALTER TABLE "metrics" ENABLE ALWAYS TRIGGER "metrics_announce_truncate";
