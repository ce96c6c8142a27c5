-- A new incident's chain starts without looking for a pending one to cancel: nothing can be
-- pending for an incident that did not exist (and escalations_one_pending would refuse a
-- second). That look was a cached generic plan in each connection: planned while few
-- escalations were pending, it scanned escalations_due (every pending row) instead of
-- escalations_one_pending, so during a storm each new incident read every incident before
-- it (script/bench storm: 3,167 buffers per delivery after 11,000 incidents). Acknowledging,
-- resolving, accepting and reopening still cancel, planned for each call (EXECUTE), so the
-- plan is chosen for the table as it is then.
CREATE OR REPLACE FUNCTION handrail_notify_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    rotation bigint;
    event text := NEW.type;
    cancel constant text := 'UPDATE escalations SET state = ''cancelled'', finished_at = clock_timestamp() '
                            'WHERE incident_id = $1 AND state = ''pending'' AND (kind = ''step'' OR $2)';
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
        IF NEW.type = 'reopened' THEN
            EXECUTE cancel USING NEW.incident_id, true;
        END IF;
        INSERT INTO escalations (incident_id, kind, position, chain_started_at, due_at)
        SELECT NEW.incident_id, 'step', 0, NEW.at, NEW.at + make_interval(secs => coalesce(
            (SELECT s.delay_seconds FROM escalation_steps s WHERE s.rotation_id = rotation ORDER BY s.position LIMIT 1), 0));
    ELSIF NEW.type IN ('acknowledged', 'resolved') OR (NEW.type = 'role_accepted' AND NEW.data->>'role' = 'owner') THEN
        EXECUTE cancel USING NEW.incident_id, NEW.type = 'resolved';
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
