-- The resend statement (IngestStore.repeatStatement), read by the store and by
-- `script/bench`, which runs it from pgbench as the equivalent transaction.
-- $1 the delivery's alerts (IngestStore.repeatRowsJSON), $2 the integration key's id,
-- $3 the source, $4 the request id, $5 how many alerts, $6 alerts the sender left out,
-- $7 the receiver, $8 the group key.
-- When the key is live and every alert is a resend of one of the integration's open firing
-- alerts: counts them (delivery count, last seen, the latest labels, annotations and value)
-- and logs the delivery; otherwise changes nothing and returns no delivery id. Every row
-- says whether the key is live.
WITH input AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(
        fingerprint text, status text, labels jsonb, annotations jsonb, value double precision, vals jsonb, links jsonb,
        ends_at double precision)
), targets AS MATERIALIZED (
    SELECT a.id, f.* FROM input f CROSS JOIN LATERAL (
        SELECT id FROM alerts WHERE integration_id = $2::bigint AND fingerprint = f.fingerprint AND cleared_at IS NULL LIMIT 1) a
    WHERE f.status = 'firing'
), live AS (
    SELECT EXISTS (SELECT 1 FROM integration_keys WHERE id = $2::bigint AND revoked_at IS NULL) AS yes
), only_resends AS (
    SELECT (SELECT yes FROM live) AND (SELECT count(*) FROM targets) = $5::int
           AND NOT EXISTS (SELECT 1 FROM input WHERE status <> 'firing') AS yes
), locked AS (
    -- Row locks in id order, before any row changes: concurrent deliveries of one
    -- group then queue behind each other instead of deadlocking.
    SELECT id FROM alerts
    WHERE id = ANY(ARRAY(SELECT id FROM targets)) AND cleared_at IS NULL AND (SELECT yes FROM only_resends)
    ORDER BY id FOR NO KEY UPDATE
), updated AS (
    UPDATE alerts a SET delivery_count = a.delivery_count + 1, last_seen_at = now(),
        (labels, annotations, value, "values", links, ends_at) = (
            SELECT t.labels, coalesce(nullif(t.annotations, '{}'::jsonb), a.annotations), coalesce(t.value, a.value),
                   t.vals, t.links, to_timestamp(t.ends_at)
            FROM targets t WHERE t.id = a.id)
    WHERE a.id = ANY(ARRAY(SELECT id FROM locked)) AND a.cleared_at IS NULL
    RETURNING a.fingerprint, a.incident_id
), delivery AS (
    INSERT INTO deliveries (integration_id, source, request_id, outcome, alert_count, truncated_alerts, receiver, group_key)
    SELECT $2::bigint, $3::integration_kind, $4::text, 'stored', $5::int, $6::int, $7::text, $8::text
    WHERE (SELECT yes FROM only_resends) AND (SELECT count(*) FROM updated) = $5::int
    RETURNING id
)
SELECT u.fingerprint, 'repeat' AS result, (SELECT number FROM incidents WHERE id = u.incident_id) AS incident_number,
       'joined' AS incident, (SELECT id FROM delivery) AS delivery_id, (SELECT yes FROM live) AS key_live
FROM updated u
UNION ALL SELECT NULL, NULL, NULL, NULL, (SELECT id FROM delivery), (SELECT yes FROM live) WHERE NOT EXISTS (SELECT 1 FROM updated);
