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
