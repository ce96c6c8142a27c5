-- The ingest statement (IngestStore.write): everything one or more deliveries of
-- one integration do that is not only resends, in the transaction that first locked what
-- they touch. Read by the store and by `script/bench storm`, which runs it from pgbench as
-- the equivalent transaction.
-- $1 the deliveries' alerts as routed (IngestStore.rowsJSON; no fingerprint or grouping key
-- in two of them), $2 the integration key's id, $3 the source, $4 the integration's name
-- (the timeline's actor), $5 the deliveries (ord, request_id, alert_count, truncated_alerts,
-- receiver, group_key; IngestStore.deliveriesJSON).
-- Returns one row per alert (what became of it and of its incident), the deliveries' ids in
-- the order of $5 (`delivery_ids`, ascending: inserted in that order), and the ids of the
-- incidents they changed (`changed`, for the live pages); `key_live` is false, and nothing
-- is written, when the integration key was revoked.
WITH live AS (
    SELECT EXISTS (SELECT 1 FROM integration_keys WHERE id = $2::bigint AND revoked_at IS NULL) AS yes
), input AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(
        ord int, fingerprint text, status text, alertname text, labels jsonb, annotations jsonb, value double precision,
        vals jsonb, links jsonb, generator_url text, severity text, grouping_key text, group_rule text, title text,
        runbook_id text, runbook_version int, runbook_reason text, auto_resolve boolean, reopen_window int,
        starts_at double precision, ends_at double precision, owner text, owners_rotation text, owner_reason text)
    WHERE (SELECT yes FROM live)
), known AS (
    -- Every lookup below is a LATERAL … LIMIT 1 (or = ANY(ARRAY(…))): an index probe
    -- per input row whatever the planner believes about the table's size, never
    -- a hash of the whole table.
    SELECT a.id, f.fingerprint, a.incident_id FROM input f CROSS JOIN LATERAL (
        SELECT id, incident_id FROM alerts
        WHERE integration_id = $2::bigint AND fingerprint = f.fingerprint AND cleared_at IS NULL LIMIT 1) a
    WHERE f.status = 'firing'
), keys AS (
    SELECT DISTINCT ON (grouping_key) * FROM input
    WHERE status = 'firing' AND fingerprint NOT IN (SELECT fingerprint FROM known)
    ORDER BY grouping_key, ord
), existing AS (
    SELECT i.id, k.grouping_key, i.number FROM keys k CROSS JOIN LATERAL (
        SELECT id, number FROM incidents WHERE grouping_key = k.grouping_key AND state <> 'resolved' LIMIT 1) i
), reopenable AS (
    SELECT i.id FROM keys k CROSS JOIN LATERAL (
        SELECT id FROM incidents
        WHERE grouping_key = k.grouping_key AND state = 'resolved' AND resolved_at > now() - make_interval(secs => k.reopen_window)
        ORDER BY resolved_at DESC LIMIT 1) i
    WHERE NOT EXISTS (SELECT 1 FROM existing e WHERE e.grouping_key = k.grouping_key)
), reopened AS (
    UPDATE incidents i SET state = 'reopened', resolved_at = NULL, reopen_count = i.reopen_count + 1
    WHERE i.id = ANY(ARRAY(SELECT id FROM reopenable)) AND i.state = 'resolved'
    RETURNING i.id, i.grouping_key, i.number
), opened AS (
    INSERT INTO incidents AS i (grouping_key, group_rule, title, severity, labels, runbook_id, runbook_version, runbook_reason,
                                auto_resolve, reopen_window, opened_by_integration_id, owners_rotation)
    SELECT k.grouping_key, k.group_rule, k.title, k.severity, k.labels, k.runbook_id, k.runbook_version, k.runbook_reason,
           k.auto_resolve, k.reopen_window, $2::bigint, k.owners_rotation
    FROM keys k
    WHERE NOT EXISTS (SELECT 1 FROM existing e WHERE e.grouping_key = k.grouping_key)
      AND NOT EXISTS (SELECT 1 FROM reopened r WHERE r.grouping_key = k.grouping_key)
    ON CONFLICT (grouping_key) WHERE state <> 'resolved' DO UPDATE SET grouping_key = excluded.grouping_key
    RETURNING i.id, i.grouping_key, i.number, (xmax = 0) AS inserted
), owned AS (
    INSERT INTO incident_roles (incident_id, role, user_id, assigned_by)
    SELECT o.id, 'owner', u.id, 'rotation ' || k.owners_rotation
    FROM opened o JOIN keys k USING (grouping_key) JOIN users u ON u.username = k.owner AND u.disabled_at IS NULL
    WHERE o.inserted
    RETURNING incident_id
), incident_for_key AS (
    SELECT id, grouping_key, number FROM existing
    UNION ALL SELECT id, grouping_key, number FROM reopened
    UNION ALL SELECT id, grouping_key, number FROM opened
), upserted AS (
    INSERT INTO alerts AS a (incident_id, integration_id, source, fingerprint, status, alertname, labels, annotations, value,
                             "values", links, generator_url, severity, grouping_key, group_rule, starts_at, ends_at)
    SELECT coalesce(k.id, kn.incident_id), $2::bigint, $3::integration_kind, f.fingerprint, 'firing', f.alertname, f.labels,
           f.annotations, f.value, f.vals, f.links, f.generator_url, f.severity, f.grouping_key, f.group_rule, to_timestamp(f.starts_at), to_timestamp(f.ends_at)
    FROM input f LEFT JOIN known kn ON kn.fingerprint = f.fingerprint
    LEFT JOIN incident_for_key k ON k.grouping_key = f.grouping_key AND kn.id IS NULL
    WHERE f.status = 'firing'
    ORDER BY f.fingerprint
    ON CONFLICT (integration_id, fingerprint) WHERE cleared_at IS NULL DO UPDATE SET
        delivery_count = a.delivery_count + 1, last_seen_at = now(), labels = excluded.labels,
        annotations = CASE WHEN excluded.annotations = '{}'::jsonb THEN a.annotations ELSE excluded.annotations END,
        value = coalesce(excluded.value, a.value), "values" = excluded."values", links = excluded.links,
        ends_at = excluded.ends_at
    RETURNING a.id, a.incident_id, a.fingerprint, (xmax = 0) AS inserted
), clearing AS (
    SELECT a.id, r.annotations, r.ends_at FROM input r CROSS JOIN LATERAL (
        SELECT id FROM alerts WHERE integration_id = $2::bigint AND fingerprint = r.fingerprint AND cleared_at IS NULL LIMIT 1) a
    WHERE r.status = 'resolved'
), cleared AS (
    UPDATE alerts a SET status = 'resolved', cleared_at = now(), cleared_by = 'source', last_seen_at = now(),
        delivery_count = a.delivery_count + 1,
        ends_at = coalesce((SELECT to_timestamp(c.ends_at) FROM clearing c WHERE c.id = a.id), now()),
        annotations = coalesce((SELECT nullif(c.annotations, '{}'::jsonb) FROM clearing c WHERE c.id = a.id), a.annotations)
    WHERE a.id = ANY(ARRAY(SELECT id FROM clearing)) AND a.cleared_at IS NULL
    RETURNING a.id, a.incident_id, a.fingerprint
), all_clear AS (
    SELECT i.id, i.number, i.auto_resolve FROM incidents i
    WHERE i.id = ANY(ARRAY(SELECT incident_id FROM cleared)) AND i.state <> 'resolved'
      AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.incident_id = i.id AND a.cleared_at IS NULL
                      AND a.id NOT IN (SELECT id FROM cleared))
      AND NOT EXISTS (SELECT 1 FROM upserted u WHERE u.incident_id = i.id)
), auto_resolved AS (
    UPDATE incidents i SET state = 'resolved', resolved_at = now()
    WHERE i.id = ANY(ARRAY(SELECT id FROM all_clear WHERE auto_resolve))
    RETURNING i.id
), events AS (
    INSERT INTO incident_events (incident_id, type, actor, actor_integration_id, data)
    SELECT o.id, 'opened', $4::text, $2::bigint, jsonb_build_object(
            'title', k.title, 'severity', k.severity, 'grouping_key', k.grouping_key, 'group_rule', k.group_rule,
            'runbook_id', k.runbook_id, 'runbook_version', k.runbook_version, 'runbook_reason', k.runbook_reason,
            'fingerprint', k.fingerprint, 'owner', k.owner, 'owner_reason', k.owner_reason)
        FROM opened o JOIN keys k USING (grouping_key) WHERE o.inserted
    UNION ALL
    SELECT o.incident_id, 'role_changed', $4::text, $2::bigint, jsonb_build_object(
            'role', 'owner', 'action', 'rotation', 'from', NULL, 'to', k.owner, 'rotation', k.owners_rotation,
            'reason', k.owner_reason, 'pending', true)
        FROM owned o JOIN opened op ON op.id = o.incident_id JOIN keys k ON k.grouping_key = op.grouping_key
    UNION ALL
    SELECT r.id, 'reopened', $4::text, $2::bigint, jsonb_build_object('grouping_key', r.grouping_key) FROM reopened r
    UNION ALL
    -- One entry per incident for the alerts a delivery added (or cleared), however many.
    SELECT u.incident_id, 'alert_added', $4::text, $2::bigint, jsonb_build_object('count', count(*), 'alerts', jsonb_agg(jsonb_build_object(
            'fingerprint', u.fingerprint, 'alertname', f.alertname, 'severity', f.severity, 'value', f.value, 'labels', f.labels)
            ORDER BY u.fingerprint))
        FROM upserted u JOIN input f USING (fingerprint) WHERE u.inserted GROUP BY u.incident_id
    UNION ALL
    SELECT c.incident_id, 'alert_cleared', $4::text, $2::bigint,
           jsonb_build_object('count', count(*), 'fingerprints', jsonb_agg(c.fingerprint ORDER BY c.fingerprint))
        FROM cleared c GROUP BY c.incident_id
    UNION ALL
    SELECT a.id, CASE WHEN a.auto_resolve THEN 'resolved' ELSE 'all_alerts_cleared' END, $4::text, $2::bigint,
           jsonb_build_object('automatic', true, 'reason', 'every alert of the incident has cleared') FROM all_clear a
    RETURNING incident_id
), delivery AS (
    INSERT INTO deliveries (integration_id, source, request_id, outcome, alert_count, truncated_alerts, receiver, group_key)
    SELECT $2::bigint, $3::integration_kind, d.request_id, 'stored', d.alert_count, d.truncated_alerts, d.receiver, d.group_key
    FROM jsonb_to_recordset($5::jsonb) AS d(ord int, request_id text, alert_count int, truncated_alerts int, receiver text, group_key text)
    WHERE (SELECT yes FROM live)
    ORDER BY d.ord
    RETURNING id
)
SELECT x.fingerprint, x.result,
       coalesce((SELECT k.number FROM incident_for_key k WHERE k.id = x.incident_id LIMIT 1),
                (SELECT inc.number FROM incidents inc WHERE inc.id = x.incident_id)) AS incident_number,
       CASE WHEN x.incident_id IN (SELECT id FROM opened WHERE inserted) THEN 'opened'
            WHEN x.incident_id IN (SELECT id FROM reopened) THEN 'reopened'
            WHEN x.incident_id IN (SELECT id FROM auto_resolved) THEN 'resolved'
            WHEN x.incident_id IN (SELECT id FROM all_clear) THEN 'all_alerts_cleared'
            WHEN x.incident_id IS NOT NULL THEN 'joined' END AS incident,
       (SELECT string_agg(id::text, ',' ORDER BY id) FROM delivery) AS delivery_ids, (SELECT string_agg(DISTINCT incident_id::text, ',') FROM events) AS changed,
       (SELECT yes FROM live) AS key_live
FROM (
    SELECT u.fingerprint, CASE WHEN u.inserted THEN 'new' ELSE 'repeat' END AS result, u.incident_id FROM upserted u
    UNION ALL SELECT c.fingerprint, 'cleared', c.incident_id FROM cleared c
    UNION ALL SELECT r.fingerprint, 'unknown', NULL FROM input r
        WHERE r.status = 'resolved' AND NOT EXISTS (SELECT 1 FROM cleared c WHERE c.fingerprint = r.fingerprint)
    UNION ALL SELECT NULL, NULL, NULL WHERE NOT EXISTS (SELECT 1 FROM input)
) x
