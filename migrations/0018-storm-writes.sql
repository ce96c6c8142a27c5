-- What an alert storm's new incidents write, and nothing more (script/bench storm).
-- The owner a rotation gives a new incident is part of its opening, not news: the outbox's
-- trigger no longer runs for it at all (it looked the rotation up to return nothing).
DROP TRIGGER incident_events_notify ON incident_events;
CREATE TRIGGER incident_events_notify AFTER INSERT ON incident_events FOR EACH ROW
    WHEN (NEW.type IN ('opened', 'acknowledged', 'role_changed', 'role_accepted', 'decision_recorded',
                       'mitigated', 'resolved', 'reopened')
          AND NOT (NEW.type = 'role_changed' AND coalesce(NEW.data->>'action', '') = 'rotation'))
    EXECUTE FUNCTION handrail_notify_event();
-- The primary key reads newest first as well; a second index on id was one more write per incident.
DROP INDEX incidents_newest;
