-- A review with teeth: a summary of impact people write; an assigned reviewer; the
-- approver is not the author (who submitted it) unless an administrator overrides, with a
-- reason on the record; a published postmortem whose incident reopened after publishing can
-- be taken back to draft for revision (and only then).

ALTER TABLE postmortem_section_edits DROP CONSTRAINT postmortem_section_edits_section_check;
ALTER TABLE postmortem_section_edits ADD CONSTRAINT postmortem_section_edits_section_check
    CHECK (section IN ('impact', 'root_cause', 'contributing_factors', 'went_well', 'went_badly'));

ALTER TABLE postmortems
    ADD COLUMN reviewer_user_id bigint REFERENCES users,
    ADD COLUMN approval_override_reason text CHECK (length(btrim(approval_override_reason)) BETWEEN 1 AND 1000),
    ADD COLUMN revision_opened_by bigint REFERENCES users,
    ADD COLUMN revision_opened_at timestamptz,
    ADD CONSTRAINT postmortems_approver_not_author
        CHECK (approved_by IS NULL OR approved_by IS DISTINCT FROM submitted_by OR approval_override_reason IS NOT NULL),
    ADD CONSTRAINT postmortems_revision_by_and_at CHECK ((revision_opened_by IS NULL) = (revision_opened_at IS NULL));

CREATE OR REPLACE FUNCTION handrail_postmortem_published_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'postmortems' THEN
        IF TG_OP = 'DELETE' THEN
            RAISE EXCEPTION 'a published postmortem is read-only' USING ERRCODE = 'restrict_violation';
        END IF;
        IF OLD.state = 'published' AND NOT (
            NEW.state = 'draft' AND NEW.revision_opened_at IS NOT NULL
            AND EXISTS (SELECT 1 FROM incident_events e WHERE e.incident_id = OLD.incident_id AND e.type = 'reopened' AND e.at > OLD.published_at)
        ) THEN
            RAISE EXCEPTION 'a published postmortem is read-only' USING ERRCODE = 'restrict_violation';
        END IF;
        -- Approving one's own postmortem is an administrator's override, with its reason.
        IF NEW.approval_override_reason IS NOT NULL AND NEW.approved_by IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM users WHERE id = NEW.approved_by AND role = 'admin') THEN
            RAISE EXCEPTION 'only an administrator approves their own postmortem' USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END IF;
    IF EXISTS (SELECT 1 FROM postmortems WHERE id = NEW.postmortem_id AND state = 'published') THEN
        RAISE EXCEPTION 'a published postmortem is read-only' USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
