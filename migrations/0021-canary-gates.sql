-- Canary gates: a canary controller (Flagger, Argo Rollouts) asks before it advances,
-- promotes or rolls back; Handrail answers from decisions people recorded.

-- A canary controller's integration key (Flagger's webhooks, Argo Rollouts' web metric).
ALTER TYPE integration_kind ADD VALUE 'canary';

-- A release: one target (namespace/name) at one checksum (Flagger's checksum of the
-- canary's spec, or Argo's pod template hash). A new checksum is a new release: nothing
-- decided for the previous one carries over. Its runbook (pinned at the first call, as an
-- incident's is) says who may decide. A person may open a gate before the controller asks
-- ('manual'); it raises no incident when it waits too long (no key to send the alert as).
CREATE TABLE releases (
    id                        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace                 text NOT NULL CHECK (namespace <> ''),
    name                      text NOT NULL CHECK (name <> ''),
    checksum                  text NOT NULL CHECK (checksum <> ''),
    controller                text NOT NULL CHECK (controller IN ('flagger', 'argo', 'manual')),
    runbook_id                text,
    runbook_version           integer,
    created_by_integration_id bigint REFERENCES integration_keys,
    created_by                text NOT NULL,   -- the key's name, a person's username, or the OS user of the CLI
    created_at                timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (runbook_id, runbook_version) REFERENCES runbook_versions,
    UNIQUE (namespace, name, checksum)
);

CREATE TYPE gate_stage AS ENUM ('confirm-rollout', 'confirm-traffic-increase', 'confirm-promotion');

-- A gate: one stage of a release the controller asked about. Each traffic increase is its
-- own gate (step 1, 2, …): once the controller was told "go" for one, its next question is
-- the next step's. `metadata` is what the controller sent last (the guards' values).
CREATE TABLE gates (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    release_id     bigint NOT NULL REFERENCES releases,
    stage          gate_stage NOT NULL,
    step           integer NOT NULL DEFAULT 1 CHECK (step > 0),
    opened_at      timestamptz NOT NULL DEFAULT now(),
    last_asked_at  timestamptz NOT NULL DEFAULT now(),
    times_asked    integer NOT NULL DEFAULT 1,
    metadata       jsonb NOT NULL DEFAULT '{}',
    passed_at      timestamptz,            -- first answered "go"
    -- Waiting longer than this with nobody deciding raises an incident (an alert
    -- CanaryGateWaiting from the controller's key), cleared once someone decides.
    wait_limit_seconds integer NOT NULL DEFAULT 7200 CHECK (wait_limit_seconds > 0),
    overdue_raised_at  timestamptz,
    overdue_cleared_at timestamptz,
    UNIQUE (release_id, stage, step)
);
-- The Now page's "Rollouts waiting for a decision", and the gates that may become overdue.
CREATE INDEX gates_waiting ON gates (opened_at) WHERE passed_at IS NULL;
CREATE INDEX gates_overdue_raised ON gates (id) WHERE overdue_raised_at IS NOT NULL AND overdue_cleared_at IS NULL;

CREATE TYPE gate_decision_kind AS ENUM ('go', 'hold', 'rollback');

-- Decisions on a release, by people only (never keys), append-only. "go" and "hold" are
-- about one gate (the newest of them on a gate is its answer); "rollback" is about the
-- release, named from the gate (or incident) where it was decided.
CREATE TABLE gate_decisions (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    release_id              bigint NOT NULL REFERENCES releases,
    gate_id                 bigint REFERENCES gates,
    kind                    gate_decision_kind NOT NULL,
    decided_by              bigint NOT NULL REFERENCES users,
    decided_by_role         user_role NOT NULL,
    rationale               text NOT NULL CHECK (btrim(rationale) <> ''),
    guards                  jsonb NOT NULL DEFAULT '{}',   -- the gate's metadata the person saw
    alternatives_considered text,
    decided_at              timestamptz NOT NULL DEFAULT now(),
    CHECK (kind = 'rollback' OR gate_id IS NOT NULL)
);
CREATE INDEX gate_decisions_by_release ON gate_decisions (release_id, id);
CREATE TRIGGER gate_decisions_append_only BEFORE UPDATE OR DELETE ON gate_decisions
    FOR EACH ROW EXECUTE FUNCTION handrail_refuse_change();
CREATE TRIGGER gate_decisions_no_truncate BEFORE TRUNCATE ON gate_decisions
    FOR EACH STATEMENT EXECUTE FUNCTION handrail_refuse_change();

-- What the controller said happened (Flagger's event hook), on the release's timeline.
CREATE TABLE release_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    release_id bigint NOT NULL REFERENCES releases,
    at         timestamptz NOT NULL DEFAULT now(),
    phase      text,
    event_type text,
    message    text NOT NULL,
    sent_at    timestamptz                 -- the controller's own timestamp
);
CREATE INDEX release_events_by_release ON release_events (release_id, id);
CREATE TRIGGER release_events_append_only BEFORE UPDATE OR DELETE ON release_events
    FOR EACH ROW EXECUTE FUNCTION handrail_refuse_change();

-- Incidents on a release's target (an open incident whose labels name it as rollout,
-- canary, model or service, in its namespace when the labels say one), linked when the
-- controller asks: the gate shows them, the incident shows the gate, and a rollback decided
-- on such an incident after the release began rolls the release back.
CREATE TABLE release_incidents (
    release_id  bigint NOT NULL REFERENCES releases,
    incident_id bigint NOT NULL REFERENCES incidents,
    linked_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (release_id, incident_id)
);
CREATE INDEX release_incidents_by_incident ON release_incidents (incident_id);

-- Whether a person decided to roll the release back: at one of its gates, or on a linked
-- incident after the release began.
CREATE FUNCTION handrail_release_rolled_back(release bigint) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM gate_decisions WHERE release_id = release AND kind = 'rollback')
        OR EXISTS (SELECT 1 FROM release_incidents ri JOIN releases r ON r.id = ri.release_id
                   JOIN decisions d ON d.incident_id = ri.incident_id AND d.kind = 'rollback' AND d.decided_at >= r.created_at
                   WHERE ri.release_id = release)
$$;

-- A gate's answer, the one rule every replica applies: "rollback" once the release was
-- rolled back; else "go" when the newest go/hold on the gate is a go; else "wait".
CREATE FUNCTION handrail_gate_answer(gate bigint) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN handrail_release_rolled_back((SELECT release_id FROM gates WHERE id = gate)) THEN 'rollback'
        WHEN (SELECT kind FROM gate_decisions WHERE gate_id = gate AND kind <> 'rollback' ORDER BY id DESC LIMIT 1) = 'go' THEN 'go'
        ELSE 'wait' END
$$;
