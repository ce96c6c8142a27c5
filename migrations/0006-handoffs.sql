-- Handoff documents as generated: the rotation, the window, who generated it and when, the
-- Markdown and the document behind it, and its content hash. A stored handoff never
-- changes; the one thing that happens to it later is the incoming on-call's
-- acknowledgement, once (enforced here).

CREATE TABLE handoffs (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rotation_id          bigint NOT NULL REFERENCES rotations,
    window_from          timestamptz NOT NULL,
    window_to            timestamptz NOT NULL,
    generated_at         timestamptz NOT NULL DEFAULT now(),
    generated_by         bigint NOT NULL REFERENCES users,
    content_hash         text NOT NULL,          -- SHA-256 of the Markdown
    markdown             text NOT NULL,
    document             jsonb NOT NULL,         -- the sections, for JSON readers
    incoming             text,                   -- who is on call as the window ends
    acknowledged_by      bigint REFERENCES users,
    acknowledged_at      timestamptz,
    CHECK (window_to > window_from),
    CHECK ((acknowledged_by IS NULL) = (acknowledged_at IS NULL))
);
CREATE INDEX handoffs_by_rotation ON handoffs (rotation_id, id DESC);

CREATE FUNCTION handrail_handoff_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' OR OLD.acknowledged_at IS NOT NULL
       OR (NEW.id, NEW.rotation_id, NEW.window_from, NEW.window_to, NEW.generated_at, NEW.generated_by, NEW.content_hash,
           NEW.markdown, NEW.document, NEW.incoming)
          IS DISTINCT FROM
          (OLD.id, OLD.rotation_id, OLD.window_from, OLD.window_to, OLD.generated_at, OLD.generated_by, OLD.content_hash,
           OLD.markdown, OLD.document, OLD.incoming) THEN
        RAISE EXCEPTION 'a stored handoff does not change (only its acknowledgement is added, once)'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER handoffs_guard BEFORE UPDATE OR DELETE ON handoffs
    FOR EACH ROW EXECUTE FUNCTION handrail_handoff_guard();
CREATE TRIGGER handoffs_no_truncate BEFORE TRUNCATE ON handoffs
    FOR EACH STATEMENT EXECUTE FUNCTION handrail_refuse_change();
