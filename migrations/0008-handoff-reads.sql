-- What a handoff reads must not grow with history: a rotation-week's handoff on ten years of
-- incidents costs what it costs on one.

-- "Alerts with no runbook" is asked for one window across every rotation; without this
-- index it reads every incident ever opened.
CREATE INDEX incidents_without_runbook ON incidents (opened_at) WHERE runbook_id IS NULL;

-- Decisions still awaiting execution or an outcome (no outcome recorded, not superseded).
-- Handoffs list every one of them, however old; finding them by elimination would read
-- every decision ever made. The database keeps this set itself: a new decision joins it,
-- and leaves it when its outcome is recorded or a later decision supersedes it.
CREATE TABLE decisions_unsettled (
    decision_id bigint PRIMARY KEY REFERENCES decisions,
    incident_id bigint NOT NULL REFERENCES incidents,
    decided_at  timestamptz NOT NULL
);
CREATE INDEX decisions_unsettled_by_time ON decisions_unsettled (decided_at);

INSERT INTO decisions_unsettled (decision_id, incident_id, decided_at)
SELECT d.id, d.incident_id, d.decided_at FROM decisions d
WHERE NOT EXISTS (SELECT 1 FROM decision_outcomes o WHERE o.decision_id = d.id)
  AND NOT EXISTS (SELECT 1 FROM decisions s WHERE s.supersedes = d.id);

CREATE FUNCTION handrail_decision_unsettled() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'decisions' THEN
        -- A bulk statement may have written the outcome or the superseding decision first.
        INSERT INTO decisions_unsettled (decision_id, incident_id, decided_at)
        SELECT NEW.id, NEW.incident_id, NEW.decided_at
        WHERE NOT EXISTS (SELECT 1 FROM decision_outcomes o WHERE o.decision_id = NEW.id)
          AND NOT EXISTS (SELECT 1 FROM decisions s WHERE s.supersedes = NEW.id);
        IF NEW.supersedes IS NOT NULL THEN
            DELETE FROM decisions_unsettled WHERE decision_id = NEW.supersedes;
        END IF;
    ELSE
        DELETE FROM decisions_unsettled WHERE decision_id = NEW.decision_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER decisions_unsettled_on_decision AFTER INSERT ON decisions
    FOR EACH ROW EXECUTE FUNCTION handrail_decision_unsettled();
CREATE TRIGGER decisions_unsettled_on_outcome AFTER INSERT ON decision_outcomes
    FOR EACH ROW EXECUTE FUNCTION handrail_decision_unsettled();

-- A handoff's document is kept as the API answers it (snake_case keys), in json: stored as
-- written, so it is answered as stored, and writing it costs no jsonb parse. Documents
-- stored before this are rewritten with the API's key names (the content is unchanged).
CREATE FUNCTION handrail_snake_keys(value jsonb) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN CASE jsonb_typeof(value)
        WHEN 'object' THEN coalesce(
            (SELECT jsonb_object_agg(lower(regexp_replace(k, '([a-z0-9])([A-Z])', '\1_\2', 'g')), handrail_snake_keys(v))
             FROM jsonb_each(value) AS e(k, v)), '{}'::jsonb)
        WHEN 'array' THEN coalesce(
            (SELECT jsonb_agg(handrail_snake_keys(x) ORDER BY n) FROM jsonb_array_elements(value) WITH ORDINALITY AS a(x, n)), '[]'::jsonb)
        ELSE value
    END;
END
$$;
ALTER TABLE handoffs ALTER COLUMN document TYPE json USING handrail_snake_keys(document)::json;
DROP FUNCTION handrail_snake_keys(jsonb);

-- A busy week's handoff is over half a megabyte of text: lz4 stores it in a sixth of the
-- time pglz takes. A PostgreSQL built without lz4 keeps its default.
DO $$
BEGIN
    ALTER TABLE handoffs ALTER COLUMN markdown SET COMPRESSION lz4, ALTER COLUMN document SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    NULL;
END
$$;

-- The guard compares the stored columns; json has no equality, so its text is compared.
CREATE OR REPLACE FUNCTION handrail_handoff_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' OR OLD.acknowledged_at IS NOT NULL
       OR (NEW.id, NEW.rotation_id, NEW.window_from, NEW.window_to, NEW.generated_at, NEW.generated_by, NEW.content_hash,
           NEW.markdown, NEW.document::text, NEW.incoming)
          IS DISTINCT FROM
          (OLD.id, OLD.rotation_id, OLD.window_from, OLD.window_to, OLD.generated_at, OLD.generated_by, OLD.content_hash,
           OLD.markdown, OLD.document::text, OLD.incoming) THEN
        RAISE EXCEPTION 'a stored handoff does not change (only its acknowledgement is added, once)'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
