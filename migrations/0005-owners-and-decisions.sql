-- Rotations (who is on call), the people holding an incident's roles (owner, scribe,
-- communications), and rollback decisions with their execution and outcome. Decisions and
-- what follows them are append-only, enforced here; the history of roles is the incident's
-- timeline, and incident_roles holds only who has each role now.

CREATE TABLE rotations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL CONSTRAINT rotations_name_key UNIQUE
                    CONSTRAINT rotations_name_format CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    time_zone       text NOT NULL,
    shift_days      integer NOT NULL CHECK (shift_days BETWEEN 1 AND 366),
    handoff_weekday smallint CHECK (handoff_weekday BETWEEN 1 AND 7),   -- ISO, 1 = Monday
    handoff_minute  smallint NOT NULL CHECK (handoff_minute BETWEEN 0 AND 1439),
    start_date      date NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE rotation_members (
    rotation_id bigint NOT NULL REFERENCES rotations ON DELETE CASCADE,
    position    integer NOT NULL CHECK (position >= 0),
    user_id     bigint NOT NULL REFERENCES users,
    PRIMARY KEY (rotation_id, position)
);

CREATE TABLE rotation_overrides (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rotation_id bigint NOT NULL REFERENCES rotations ON DELETE CASCADE,
    user_id     bigint NOT NULL REFERENCES users,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    reason      text,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);
CREATE INDEX rotation_overrides_by_rotation ON rotation_overrides (rotation_id, ends_at);

-- The rotation that owns an incident: its runbook's `owners` when it opened (handoffs
-- select a rotation's incidents by it, over a window of opening or resolving times).
ALTER TABLE incidents ADD COLUMN owners_rotation text;
CREATE INDEX incidents_by_rotation_opened ON incidents (owners_rotation, opened_at);
CREATE INDEX incidents_by_rotation_resolved ON incidents (owners_rotation, resolved_at);

-- Who holds each role of an incident now; every change is also an incident_events row.
-- accepted_at NULL: assigned, awaiting the new holder's acceptance.
ALTER TABLE incidents DROP COLUMN owner_user_id;
CREATE TABLE incident_roles (
    incident_id bigint NOT NULL REFERENCES incidents,
    role        text NOT NULL CHECK (role IN ('owner', 'scribe', 'communications')),
    user_id     bigint NOT NULL REFERENCES users,
    assigned_by text NOT NULL,          -- a username, or 'rotation <name>'
    assigned_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    accepted_at timestamptz,
    PRIMARY KEY (incident_id, role)
);
CREATE INDEX incident_roles_by_user ON incident_roles (user_id, role);

CREATE TYPE decision_kind AS ENUM ('rollback', 'roll_forward', 'hold', 'traffic_shift', 'flag_off');

CREATE TABLE decisions (
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
    decided_by              bigint NOT NULL REFERENCES users,      -- a person, never an integration
    decided_by_role         user_role NOT NULL,
    decided_at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    verification_window     integer NOT NULL CHECK (verification_window > 0),  -- seconds, from the runbook
    supersedes              bigint CONSTRAINT decisions_superseded_once UNIQUE,
    CHECK (target_service IS NOT NULL OR target_model IS NOT NULL),
    UNIQUE (id, incident_id),
    -- A decision supersedes one of the same incident, once.
    FOREIGN KEY (supersedes, incident_id) REFERENCES decisions (id, incident_id)
);
CREATE INDEX decisions_by_incident ON decisions (incident_id, id);
CREATE INDEX decisions_by_time ON decisions (decided_at);

CREATE TABLE decision_executions (
    decision_id bigint PRIMARY KEY REFERENCES decisions,
    executed_by bigint NOT NULL REFERENCES users,
    executed_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    note        text
);

CREATE TABLE decision_outcomes (
    decision_id  bigint PRIMARY KEY REFERENCES decision_executions,  -- only an executed decision has one
    outcome      text NOT NULL CHECK (outcome IN ('effective', 'not_effective', 'reverted')),
    proposed     text CHECK (proposed IN ('effective', 'not_effective')),
    check_text   text NOT NULL,      -- the check that established it
    confirmed_by bigint NOT NULL REFERENCES users,
    confirmed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    note         text,
    -- Overriding Handrail's proposal needs a reason.
    CHECK (outcome = proposed OR length(btrim(note)) > 0)
);

CREATE TRIGGER decisions_append_only BEFORE UPDATE OR DELETE ON decisions
    FOR EACH ROW EXECUTE FUNCTION handrail_refuse_change();
CREATE TRIGGER decisions_no_truncate BEFORE TRUNCATE ON decisions
    FOR EACH STATEMENT EXECUTE FUNCTION handrail_refuse_change();
CREATE TRIGGER decision_executions_append_only BEFORE UPDATE OR DELETE ON decision_executions
    FOR EACH ROW EXECUTE FUNCTION handrail_refuse_change();
CREATE TRIGGER decision_executions_no_truncate BEFORE TRUNCATE ON decision_executions
    FOR EACH STATEMENT EXECUTE FUNCTION handrail_refuse_change();
CREATE TRIGGER decision_outcomes_append_only BEFORE UPDATE OR DELETE ON decision_outcomes
    FOR EACH ROW EXECUTE FUNCTION handrail_refuse_change();
CREATE TRIGGER decision_outcomes_no_truncate BEFORE TRUNCATE ON decision_outcomes
    FOR EACH STATEMENT EXECUTE FUNCTION handrail_refuse_change();
