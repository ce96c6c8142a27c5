-- A note from the outgoing on-call for a rotation's handoff window ("watch for…", "I
-- silenced…"), written before or after the handoff is generated. Every version is kept; the
-- latest one when a handoff is generated goes into it.
CREATE TABLE handoff_notes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rotation_id bigint NOT NULL REFERENCES rotations ON DELETE CASCADE,
    window_from timestamptz NOT NULL,
    window_to   timestamptz NOT NULL,
    note        text NOT NULL CHECK (length(btrim(note)) BETWEEN 1 AND 10000),
    written_by  bigint NOT NULL REFERENCES users,
    written_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK (window_to > window_from)
);
CREATE INDEX handoff_notes_by_window ON handoff_notes (rotation_id, window_from, window_to, id);
CREATE TRIGGER handoff_notes_append_only BEFORE UPDATE ON handoff_notes
    FOR EACH ROW EXECUTE FUNCTION handrail_refuse_change();
