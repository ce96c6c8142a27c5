-- Responders propose decisions; a person the runbook lets decide confirms one (it becomes a
-- decision that names its proposal) or rejects it with a reason. Both stay on the record.
-- A decision recorded on a resolved incident is marked late.

CREATE TABLE decision_proposals (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id             bigint NOT NULL REFERENCES incidents,
    kind                    decision_kind NOT NULL,
    target_service          text,
    target_model            text,
    from_version            text,
    to_version              text,
    rationale               text NOT NULL CHECK (length(btrim(rationale)) > 0),
    customer_impact         text,
    alternatives_considered text,
    proposed_by             bigint NOT NULL REFERENCES users,      -- a person, never an integration
    proposed_at             timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK (target_service IS NOT NULL OR target_model IS NOT NULL),
    UNIQUE (id, incident_id)
);
CREATE INDEX decision_proposals_by_incident ON decision_proposals (incident_id, id);

CREATE TABLE decision_proposal_rejections (
    proposal_id bigint PRIMARY KEY REFERENCES decision_proposals,
    rejected_by bigint NOT NULL REFERENCES users,
    rejected_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    reason      text NOT NULL CHECK (length(btrim(reason)) > 0)
);

-- Confirming a proposal is recording the decision it proposed, once, in the same incident.
ALTER TABLE decisions
    ADD COLUMN proposal_id bigint CONSTRAINT decisions_confirm_once UNIQUE,
    ADD COLUMN late boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT decisions_proposal_same_incident FOREIGN KEY (proposal_id, incident_id) REFERENCES decision_proposals (id, incident_id);

-- A proposal is confirmed or rejected, not both (the store locks the proposal first).
CREATE FUNCTION handrail_proposal_answered_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'decisions' THEN
        IF NEW.proposal_id IS NOT NULL AND EXISTS (SELECT 1 FROM decision_proposal_rejections WHERE proposal_id = NEW.proposal_id) THEN
            RAISE EXCEPTION 'proposal % was rejected', NEW.proposal_id USING ERRCODE = 'restrict_violation';
        END IF;
    ELSIF EXISTS (SELECT 1 FROM decisions WHERE proposal_id = NEW.proposal_id) THEN
        RAISE EXCEPTION 'proposal % was confirmed', NEW.proposal_id USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER decisions_proposal_answered_once BEFORE INSERT ON decisions
    FOR EACH ROW WHEN (NEW.proposal_id IS NOT NULL) EXECUTE FUNCTION handrail_proposal_answered_once();
CREATE TRIGGER decision_proposal_rejections_answered_once BEFORE INSERT ON decision_proposal_rejections
    FOR EACH ROW EXECUTE FUNCTION handrail_proposal_answered_once();

CREATE TRIGGER decision_proposals_append_only BEFORE UPDATE OR DELETE ON decision_proposals
    FOR EACH ROW EXECUTE FUNCTION handrail_refuse_change();
CREATE TRIGGER decision_proposals_no_truncate BEFORE TRUNCATE ON decision_proposals
    FOR EACH STATEMENT EXECUTE FUNCTION handrail_refuse_change();
CREATE TRIGGER decision_proposal_rejections_append_only BEFORE UPDATE OR DELETE ON decision_proposal_rejections
    FOR EACH ROW EXECUTE FUNCTION handrail_refuse_change();
CREATE TRIGGER decision_proposal_rejections_no_truncate BEFORE TRUNCATE ON decision_proposal_rejections
    FOR EACH STATEMENT EXECUTE FUNCTION handrail_refuse_change();
