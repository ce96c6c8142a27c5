-- pgbench: the database work of one Handrail delivery of 10 resent alerts, as Handrail
-- sends it (mirrors IntegrationKeyStore.authenticate and IngestStore.repeatStatement;
-- keep them in step). :g picks one of the bench's 200 groups from bench_rows.
\set g random(1, 200)
WITH k AS (
    SELECT id, name, kind::text AS kind, require_signature, last_used_at FROM integration_keys
    WHERE key_hash = :keyhash AND revoked_at IS NULL
), touched AS (
    UPDATE integration_keys SET last_used_at = now()
    WHERE id IN (SELECT id FROM k WHERE last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
      AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
    RETURNING id
)
SELECT k.id, k.name, k.kind, k.require_signature, (SELECT count(*) FROM touched) AS touched FROM k;
WITH input AS (
    SELECT * FROM jsonb_to_recordset((SELECT rows FROM bench_rows WHERE g = :g)) AS x(
        fingerprint text, status text, labels jsonb, annotations jsonb, value double precision, vals jsonb, links jsonb,
        ends_at double precision)
), targets AS MATERIALIZED (
    SELECT a.id, f.* FROM input f CROSS JOIN LATERAL (
        SELECT id FROM alerts WHERE integration_id = 1 AND fingerprint = f.fingerprint AND cleared_at IS NULL LIMIT 1) a
    WHERE f.status = 'firing'
), only_resends AS (
    SELECT (SELECT count(*) FROM targets) = 10 AND NOT EXISTS (SELECT 1 FROM input WHERE status <> 'firing') AS yes
), updated AS (
    UPDATE alerts a SET delivery_count = a.delivery_count + 1, last_seen_at = now(),
        (labels, annotations, value, "values", links, ends_at) = (
            SELECT t.labels, coalesce(nullif(t.annotations, '{}'::jsonb), a.annotations), coalesce(t.value, a.value),
                   t.vals, t.links, to_timestamp(t.ends_at)
            FROM targets t WHERE t.id = a.id)
    WHERE a.id = ANY(ARRAY(SELECT id FROM targets)) AND a.cleared_at IS NULL AND (SELECT yes FROM only_resends)
    RETURNING a.fingerprint, a.incident_id
), delivery AS (
    INSERT INTO deliveries (integration_id, source, request_id, outcome, alert_count, truncated_alerts, receiver, group_key)
    SELECT 1, 'alertmanager'::integration_kind, NULL, 'stored', 10, 0, 'handrail', 'pgbench'
    WHERE (SELECT count(*) FROM updated) = 10
    RETURNING id
)
SELECT u.fingerprint, 'repeat' AS result, (SELECT number FROM incidents WHERE id = u.incident_id) AS incident_number,
       'joined' AS incident, (SELECT id FROM delivery) AS delivery_id
FROM updated u
UNION ALL SELECT NULL, NULL, NULL, NULL, (SELECT id FROM delivery) WHERE NOT EXISTS (SELECT 1 FROM updated);
