-- Reaching people. Where each person (contact methods) and each rotation's team (channels)
-- can be reached; each rotation's escalation chain; and the outbox: one row per message to
-- one destination, written in the same transaction as the event that causes it (the trigger
-- below, on incident_events), delivered by workers on every replica that claim due rows
-- with FOR UPDATE SKIP LOCKED, every attempt kept. Escalations are rows with a due time too,
-- so restarts and deploys lose none.

CREATE TYPE destination_kind AS ENUM ('email', 'webhook', 'slack');

-- A person's ways to be reached. Addresses of webhooks are secrets: shown once, at creation;
-- pages and answers show `hint` (the host and the last characters) only.
CREATE TABLE contact_methods (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id           bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    kind              destination_kind NOT NULL,
    label             text NOT NULL CHECK (length(label) BETWEEN 1 AND 100),
    address           text NOT NULL CHECK (length(address) BETWEEN 3 AND 2000),
    secret            text,                  -- whsec_…: signs generic webhooks
    hint              text NOT NULL,
    verified_at       timestamptz,           -- e-mail: when its code was confirmed; webhooks: at creation
    verify_code_hash  text,                  -- SHA-256 of the e-mailed code, while unconfirmed
    verify_expires_at timestamptz,
    verify_failures   integer NOT NULL DEFAULT 0,   -- wrong codes; five end the code
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'webhook') = (secret IS NOT NULL)),
    CHECK (kind = 'email' OR verified_at IS NOT NULL)
);
CREATE INDEX contact_methods_by_user ON contact_methods (user_id);

-- A rotation's team destinations: they hear every incident of the rotation.
CREATE TABLE rotation_channels (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rotation_id bigint NOT NULL REFERENCES rotations ON DELETE CASCADE,
    kind        destination_kind NOT NULL CHECK (kind <> 'email'),
    label       text NOT NULL CHECK (length(label) BETWEEN 1 AND 100),
    address     text NOT NULL CHECK (length(address) BETWEEN 3 AND 2000),
    secret      text,
    hint        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'webhook') = (secret IS NOT NULL))
);
CREATE INDEX rotation_channels_by_rotation ON rotation_channels (rotation_id);

-- Each step: after delay_seconds without acknowledgement (counted from the opening or
-- reopening), notify the target. No steps: the on-call, at once.
CREATE TYPE escalation_target AS ENUM ('on_call', 'next', 'user', 'leads');
CREATE TABLE escalation_steps (
    rotation_id   bigint NOT NULL REFERENCES rotations ON DELETE CASCADE,
    position      integer NOT NULL CHECK (position >= 0),
    delay_seconds integer NOT NULL CHECK (delay_seconds BETWEEN 0 AND 604800),
    target        escalation_target NOT NULL,
    user_id       bigint REFERENCES users,
    CHECK ((target = 'user') = (user_id IS NOT NULL)),
    PRIMARY KEY (rotation_id, position)
);
-- Acknowledged but unresolved incidents remind their owner every so many seconds (NULL: never).
ALTER TABLE rotations ADD COLUMN renotify_seconds integer CHECK (renotify_seconds BETWEEN 1 AND 604800);

-- The next step of an incident's chain (or its next reminder), due at a time. One pending
-- row per incident: a new chain (reopen) cancels the old one.
CREATE TABLE escalations (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id      bigint NOT NULL REFERENCES incidents,
    kind             text NOT NULL CHECK (kind IN ('step', 'reminder')),
    position         integer NOT NULL CHECK (position >= 0),
    chain_started_at timestamptz NOT NULL,
    due_at           timestamptz NOT NULL,
    lease_until      timestamptz,
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'cancelled')),
    finished_at      timestamptz,
    notified         text[] NOT NULL DEFAULT '{}',   -- who this step reached, by username
    CHECK ((state = 'pending') = (finished_at IS NULL))
);
CREATE UNIQUE INDEX escalations_one_pending ON escalations (incident_id) WHERE state = 'pending';
CREATE INDEX escalations_due ON escalations (due_at) WHERE state = 'pending';

-- The outbox: one message to one destination. The payload is made at the first attempt and
-- sent unchanged at every retry, under the same id.
CREATE TABLE notifications (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event             text NOT NULL,   -- opened, acknowledged, owner_changed, …, escalation, reminder, handoff, test, verify
    incident_id       bigint REFERENCES incidents,
    incident_event_id bigint,
    handoff_id        bigint REFERENCES handoffs,
    contact_method_id bigint REFERENCES contact_methods ON DELETE SET NULL,
    channel_id        bigint REFERENCES rotation_channels ON DELETE SET NULL,
    recipient         text NOT NULL,   -- a username, or the channel's label
    kind              destination_kind NOT NULL,
    hint              text NOT NULL,
    detail            jsonb NOT NULL DEFAULT '{}',   -- what the event says (a code to confirm, a step, …)
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    due_at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    lease_until       timestamptz,
    attempts          integer NOT NULL DEFAULT 0,
    state             text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    finished_at       timestamptz,
    last_error        text,
    payload           jsonb,
    CHECK ((state = 'pending') = (finished_at IS NULL))
);
CREATE INDEX notifications_due ON notifications (due_at) WHERE state = 'pending';
CREATE INDEX notifications_by_incident ON notifications (incident_id, id) WHERE incident_id IS NOT NULL;
CREATE INDEX notifications_failed ON notifications (id DESC) WHERE state = 'failed';

-- Every attempt: when, how long, what the destination answered. Append-only.
CREATE TABLE notification_attempts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id bigint NOT NULL REFERENCES notifications,
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    latency_ms      integer NOT NULL,
    status          integer,           -- the HTTP status, or sendmail's exit status
    reply           text,              -- the start of the answer (at most 200 characters)
    error           text,
    outcome         text NOT NULL CHECK (outcome IN ('delivered', 'retry', 'failed'))
);
CREATE INDEX notification_attempts_by_notification ON notification_attempts (notification_id, id);
CREATE TRIGGER notification_attempts_append_only BEFORE UPDATE OR DELETE ON notification_attempts
    FOR EACH ROW EXECUTE FUNCTION handrail_refuse_change();

-- The outbox's writer: every event that people hear about becomes its notifications in the
-- same transaction. Channels hear opened, acknowledged, owner changed, decision recorded,
-- mitigated, resolved and reopened. Opening or reopening starts the chain; acknowledging,
-- accepting ownership or resolving stops it; acknowledging starts the reminders, if any.
CREATE FUNCTION handrail_notify_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    rotation bigint;
    event text := NEW.type;
BEGIN
    -- History being loaded (handrail demo writes a year of it) is not news.
    IF NEW.at < now() - interval '1 hour' THEN
        RETURN NULL;
    END IF;
    SELECT r.id INTO rotation FROM incidents i JOIN rotations r ON r.name = i.owners_rotation WHERE i.id = NEW.incident_id;
    IF rotation IS NULL THEN
        RETURN NULL;
    END IF;
    IF NEW.type = 'role_changed' THEN
        -- The owner the rotation gives a new incident is part of its opening, not news.
        IF NEW.data->>'role' IS DISTINCT FROM 'owner' OR NEW.data->>'action' = 'rotation' THEN
            RETURN NULL;
        END IF;
        event := 'owner_changed';
    END IF;
    IF NEW.type <> 'role_accepted' THEN
        INSERT INTO notifications (event, incident_id, incident_event_id, channel_id, recipient, kind, hint)
        SELECT event, NEW.incident_id, NEW.id, c.id, c.label, c.kind, c.hint FROM rotation_channels c WHERE c.rotation_id = rotation;
    END IF;
    IF NEW.type IN ('opened', 'reopened') THEN
        UPDATE escalations SET state = 'cancelled', finished_at = clock_timestamp() WHERE incident_id = NEW.incident_id AND state = 'pending';
        INSERT INTO escalations (incident_id, kind, position, chain_started_at, due_at)
        SELECT NEW.incident_id, 'step', 0, NEW.at, NEW.at + make_interval(secs => coalesce(
            (SELECT s.delay_seconds FROM escalation_steps s WHERE s.rotation_id = rotation ORDER BY s.position LIMIT 1), 0));
    ELSIF NEW.type IN ('acknowledged', 'resolved') OR (NEW.type = 'role_accepted' AND NEW.data->>'role' = 'owner') THEN
        UPDATE escalations SET state = 'cancelled', finished_at = clock_timestamp()
        WHERE incident_id = NEW.incident_id AND state = 'pending' AND (kind = 'step' OR NEW.type = 'resolved');
        IF NEW.type = 'acknowledged' THEN
            INSERT INTO escalations (incident_id, kind, position, chain_started_at, due_at)
            SELECT NEW.incident_id, 'reminder', 0, NEW.at, NEW.at + make_interval(secs => r.renotify_seconds)
            FROM rotations r WHERE r.id = rotation AND r.renotify_seconds IS NOT NULL
            ON CONFLICT DO NOTHING;
        END IF;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER incident_events_notify AFTER INSERT ON incident_events FOR EACH ROW
    WHEN (NEW.type IN ('opened', 'acknowledged', 'role_changed', 'role_accepted', 'decision_recorded',
                       'mitigated', 'resolved', 'reopened'))
    EXECUTE FUNCTION handrail_notify_event();

-- A scheduled handoff is generated by whichever replica gets there first: one row per
-- rotation and shift end, and the handoff it made.
CREATE TABLE scheduled_handoffs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rotation_id bigint NOT NULL REFERENCES rotations ON DELETE CASCADE,
    shift_end   timestamptz NOT NULL,
    lease_until timestamptz,
    handoff_id  bigint REFERENCES handoffs,
    done_at     timestamptz,
    UNIQUE (rotation_id, shift_end)
);
-- Handoffs generated on schedule have no person behind them.
ALTER TABLE handoffs ALTER COLUMN generated_by DROP NOT NULL;

-- Secrets of the server itself, made at first use: the key that signs the acknowledge and
-- resolve links in messages (every replica reads the same one).
CREATE TABLE server_secrets (
    name       text PRIMARY KEY,
    value      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
