-- Incidents, their alerts, their append-only timeline, runbook step marks, and the
-- receive log of every delivery. The rules that must never break are the database's:
-- one open incident per grouping key, one open alert per (integration, fingerprint),
-- and a timeline that can only grow.

CREATE TYPE incident_state AS ENUM ('triggered', 'acknowledged', 'mitigated', 'resolved', 'reopened');

CREATE SEQUENCE incident_numbers;

CREATE TABLE incidents (
    id                       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number                   bigint NOT NULL DEFAULT nextval('incident_numbers') CONSTRAINT incidents_number_key UNIQUE,
    grouping_key             text NOT NULL,      -- alertname plus the runbook's group_by labels
    group_rule               text NOT NULL,      -- which labels grouped it, and whose rule that was
    title                    text NOT NULL,
    state                    incident_state NOT NULL DEFAULT 'triggered',
    severity                 text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    labels                   jsonb NOT NULL,     -- the labels of the alert that opened it
    runbook_id               text,
    runbook_version          integer,
    runbook_reason           text NOT NULL,      -- why this runbook (or why none)
    auto_resolve             boolean NOT NULL,
    reopen_window            integer NOT NULL,   -- seconds
    opened_by_integration_id bigint REFERENCES integration_keys,
    opened_at                timestamptz NOT NULL DEFAULT now(),
    acknowledged_at          timestamptz,
    mitigated_at             timestamptz,
    resolved_at              timestamptz,
    reopen_count             integer NOT NULL DEFAULT 0,
    owner_user_id            bigint REFERENCES users,   -- set by rotations and hand-overs
    FOREIGN KEY (runbook_id, runbook_version) REFERENCES runbook_versions (runbook_id, version),
    CHECK ((runbook_id IS NULL) = (runbook_version IS NULL)),
    CHECK ((state = 'resolved') = (resolved_at IS NOT NULL))
) WITH (fillfactor = 90);
-- The race-free open-or-join: any number of servers inserting the same key concurrently
-- end with one open incident (INSERT … ON CONFLICT on this index).
CREATE UNIQUE INDEX incidents_one_open_per_key ON incidents (grouping_key) WHERE state <> 'resolved';
CREATE INDEX incidents_recently_resolved ON incidents (grouping_key, resolved_at DESC) WHERE state = 'resolved';
CREATE INDEX incidents_newest ON incidents (id DESC);

CREATE TABLE alerts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id     bigint NOT NULL REFERENCES incidents,
    integration_id  bigint NOT NULL REFERENCES integration_keys,
    source          integration_kind NOT NULL,
    fingerprint     text NOT NULL,       -- Alertmanager/Grafana fingerprint, PagerDuty/generic dedup_key
    status          text NOT NULL CHECK (status IN ('firing', 'resolved')),
    alertname       text NOT NULL,
    labels          jsonb NOT NULL,
    annotations     jsonb NOT NULL,
    value           double precision,
    "values"        jsonb NOT NULL DEFAULT '{}',
    links           jsonb NOT NULL DEFAULT '{}',
    generator_url   text,
    severity        text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    grouping_key    text NOT NULL,
    group_rule      text NOT NULL,
    starts_at       timestamptz,
    ends_at         timestamptz,
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    delivery_count  integer NOT NULL DEFAULT 1,
    cleared_at      timestamptz,         -- NULL while open
    cleared_by      text CHECK (cleared_by IN ('source', 'incident')),
    CHECK ((cleared_at IS NULL) = (cleared_by IS NULL))
) WITH (fillfactor = 70);  -- room on each page, so a resend's update stays a HOT update (no index writes)
-- Repeats of an open alert update it (delivery count, last seen); they never add a row.
CREATE UNIQUE INDEX alerts_one_open_per_fingerprint ON alerts (integration_id, fingerprint) WHERE cleared_at IS NULL;
CREATE INDEX alerts_incident ON alerts (incident_id);

-- The incident log. Append-only, enforced here.
CREATE TABLE incident_events (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id          bigint NOT NULL REFERENCES incidents,
    at                   timestamptz NOT NULL DEFAULT clock_timestamp(),
    type                 text NOT NULL,
    actor                text NOT NULL,   -- a username, an integration's name, or 'system'
    actor_user_id        bigint REFERENCES users,
    actor_integration_id bigint REFERENCES integration_keys,
    data                 jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX incident_events_incident ON incident_events (incident_id, id);
CREATE TRIGGER incident_events_append_only BEFORE UPDATE OR DELETE ON incident_events
    FOR EACH ROW EXECUTE FUNCTION handrail_refuse_change();
CREATE TRIGGER incident_events_no_truncate BEFORE TRUNCATE ON incident_events
    FOR EACH STATEMENT EXECUTE FUNCTION handrail_refuse_change();

-- Who did which runbook step of which incident, with what outcome. Undo is a new mark.
CREATE TABLE incident_step_marks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id bigint NOT NULL REFERENCES incidents,
    step        integer NOT NULL CHECK (step > 0),
    outcome     text NOT NULL CHECK (outcome IN ('done', 'skipped', 'failed', 'undone')),
    note        text,
    user_id     bigint NOT NULL REFERENCES users,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK (outcome NOT IN ('skipped', 'failed') OR length(btrim(note)) > 0)
);
CREATE INDEX incident_step_marks_incident ON incident_step_marks (incident_id, step, id);
CREATE TRIGGER incident_step_marks_append_only BEFORE UPDATE OR DELETE ON incident_step_marks
    FOR EACH ROW EXECUTE FUNCTION handrail_refuse_change();
CREATE TRIGGER incident_step_marks_no_truncate BEFORE TRUNCATE ON incident_step_marks
    FOR EACH STATEMENT EXECUTE FUNCTION handrail_refuse_change();

-- Every delivery, accepted or refused, so any of them can be traced.
CREATE TABLE deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at      timestamptz NOT NULL DEFAULT now(),
    integration_id   bigint REFERENCES integration_keys,
    source           integration_kind NOT NULL,
    request_id       text,
    outcome          text NOT NULL CHECK (outcome IN ('stored', 'rejected')),
    alert_count      integer NOT NULL DEFAULT 0,
    truncated_alerts integer NOT NULL DEFAULT 0,
    receiver         text,
    group_key        text,
    error            text,
    detail           jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX deliveries_by_integration ON deliveries (integration_id, id DESC);
