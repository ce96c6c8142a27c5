-- Postmortems: one per incident, its generated facts, the sections people write (every
-- edit kept), action items, and the review: draft → in_review → approved → published.
-- A published postmortem is read-only (its action items are still tracked to done).

CREATE TYPE postmortem_state AS ENUM ('draft', 'in_review', 'approved', 'published');

CREATE TABLE postmortems (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id        bigint NOT NULL CONSTRAINT postmortems_one_per_incident UNIQUE REFERENCES incidents,
    state              postmortem_state NOT NULL DEFAULT 'draft',
    facts              jsonb NOT NULL,                 -- the generated sections, as last generated
    facts_generated_at timestamptz NOT NULL DEFAULT now(),
    created_by         bigint NOT NULL REFERENCES users,
    created_at         timestamptz NOT NULL DEFAULT now(),
    submitted_by       bigint REFERENCES users,
    submitted_at       timestamptz,
    approved_by        bigint REFERENCES users,
    approved_at        timestamptz,
    published_by       bigint REFERENCES users,
    published_at       timestamptz,
    CHECK (state < 'approved' OR approved_at IS NOT NULL),
    CHECK (state < 'published' OR published_at IS NOT NULL)
);
CREATE INDEX postmortems_by_state ON postmortems (state, id DESC);

-- Every edit of a section people write; the latest one per section is the text.
CREATE TABLE postmortem_section_edits (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    postmortem_id bigint NOT NULL REFERENCES postmortems,
    section       text NOT NULL CHECK (section IN ('root_cause', 'contributing_factors', 'went_well', 'went_badly')),
    markdown      text NOT NULL CHECK (length(markdown) <= 100000),
    edited_by     bigint NOT NULL REFERENCES users,
    edited_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX postmortem_section_edits_by_postmortem ON postmortem_section_edits (postmortem_id, section, id);
CREATE TRIGGER postmortem_section_edits_append_only BEFORE UPDATE OR DELETE ON postmortem_section_edits
    FOR EACH ROW EXECUTE FUNCTION handrail_refuse_change();
CREATE TRIGGER postmortem_section_edits_no_truncate BEFORE TRUNCATE ON postmortem_section_edits
    FOR EACH STATEMENT EXECUTE FUNCTION handrail_refuse_change();

CREATE TABLE action_items (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    postmortem_id bigint NOT NULL REFERENCES postmortems,
    title         text NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 300),
    owner_user_id bigint NOT NULL REFERENCES users,
    due_date      date NOT NULL,
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done', 'dropped')),
    created_by    bigint NOT NULL REFERENCES users,
    created_at    timestamptz NOT NULL DEFAULT now(),
    closed_at     timestamptz,
    CHECK ((status = 'open') = (closed_at IS NULL))
);
CREATE INDEX action_items_open ON action_items (postmortem_id) WHERE status = 'open';

-- Published means read-only: the postmortem row, its sections and new action items.
CREATE FUNCTION handrail_postmortem_published_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'postmortems' THEN
        IF TG_OP = 'DELETE' OR OLD.state = 'published' THEN
            RAISE EXCEPTION 'a published postmortem is read-only' USING ERRCODE = 'restrict_violation';
        END IF;
        RETURN NEW;
    END IF;
    IF EXISTS (SELECT 1 FROM postmortems WHERE id = NEW.postmortem_id AND state = 'published') THEN
        RAISE EXCEPTION 'a published postmortem is read-only' USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER postmortems_published_guard BEFORE UPDATE OR DELETE ON postmortems
    FOR EACH ROW EXECUTE FUNCTION handrail_postmortem_published_guard();
CREATE TRIGGER postmortem_section_edits_published_guard BEFORE INSERT ON postmortem_section_edits
    FOR EACH ROW EXECUTE FUNCTION handrail_postmortem_published_guard();
CREATE TRIGGER action_items_published_guard BEFORE INSERT ON action_items
    FOR EACH ROW EXECUTE FUNCTION handrail_postmortem_published_guard();
