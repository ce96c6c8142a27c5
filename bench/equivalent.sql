-- pgbench: the database work of one Handrail delivery of 10 resent alerts, as Handrail
-- sends it (mirrors IngestStore.repeatStatement, which also checks that the key is live:
-- the key itself comes from the server's cache; keep them in step). :g picks one of the
-- bench's 200 groups from bench_text: the text Handrail binds, which PostgreSQL parses.
-- Client k of 16 picks among groups k+1, k+17, …: no two clients resend one group at once,
-- as no two Alertmanager notifications of one group overlap (the wrk script does the same).
\set g 1 + (:client_id % 16) + 16 * random(0, 11)
WITH input AS (
    SELECT * FROM jsonb_to_recordset((SELECT rows FROM bench_text WHERE g = :g)::jsonb) AS x(
        fingerprint text, status text, labels jsonb, annotations jsonb, value double precision, vals jsonb, links jsonb,
        ends_at double precision)
), targets AS MATERIALIZED (
    SELECT a.id, f.* FROM input f CROSS JOIN LATERAL (
        SELECT id FROM alerts WHERE integration_id = 1 AND fingerprint = f.fingerprint AND cleared_at IS NULL LIMIT 1) a
    WHERE f.status = 'firing'
), live AS (
    SELECT EXISTS (SELECT 1 FROM integration_keys WHERE id = 1 AND revoked_at IS NULL) AS yes
), only_resends AS (
    SELECT (SELECT yes FROM live) AND (SELECT count(*) FROM targets) = 10
           AND NOT EXISTS (SELECT 1 FROM input WHERE status <> 'firing') AS yes
), locked AS (
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
    SELECT 1, 'alertmanager'::integration_kind, NULL, 'stored', 10, 0, 'handrail', 'pgbench'
    WHERE (SELECT yes FROM only_resends) AND (SELECT count(*) FROM updated) = 10
    RETURNING id
)
SELECT u.fingerprint, 'repeat' AS result, (SELECT number FROM incidents WHERE id = u.incident_id) AS incident_number,
       'joined' AS incident, (SELECT id FROM delivery) AS delivery_id, (SELECT yes FROM live) AS key_live
FROM updated u
UNION ALL SELECT NULL, NULL, NULL, NULL, (SELECT id FROM delivery), (SELECT yes FROM live) WHERE NOT EXISTS (SELECT 1 FROM updated);
