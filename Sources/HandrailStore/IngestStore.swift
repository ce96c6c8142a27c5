import Foundation
public import HandrailCore
public import Postgres

/// One delivery as ingestion stores it: its alerts, the runbook versions to route new ones
/// with, and what the sender said about the delivery.
public struct Delivery: Sendable {
    public var integration: Integration
    public var source: IntegrationKind
    public var alerts: [NormalizedAlert]
    /// Resends of open alerts need no routing; only the others are routed, with these.
    public var runbooks: [RunbookCandidate]
    public var receiver: String?
    public var groupKey: String?
    public var truncatedAlerts: Int
    public var requestID: String?

    public init(
        integration: Integration,
        source: IntegrationKind,
        alerts: [NormalizedAlert],
        runbooks: [RunbookCandidate],
        receiver: String? = nil,
        groupKey: String? = nil,
        truncatedAlerts: Int = 0,
        requestID: String? = nil
    ) {
        self.integration = integration
        self.source = source
        self.alerts = alerts
        self.runbooks = runbooks
        self.receiver = receiver
        self.groupKey = groupKey
        self.truncatedAlerts = truncatedAlerts
        self.requestID = requestID
    }
}

/// What one alert of a delivery did.
public struct AlertOutcome: Sendable, Equatable, Codable {
    public enum Result: String, Sendable, Codable {
        /// A new alert (it opened its incident or joined one).
        case new
        /// A resend of an open alert: delivery count and last seen updated.
        case `repeat`
        /// The source says it has cleared.
        case cleared
        /// A "resolved" for an alert that is not open (never seen, or already cleared).
        case unknown
    }

    public enum IncidentResult: String, Sendable, Codable {
        case opened, reopened, joined, resolved
        /// Every alert cleared, and the runbook wants a person to resolve it.
        case allAlertsCleared = "all_alerts_cleared"
    }

    public var fingerprint: String
    public var result: Result
    public var incidentNumber: Int64?
    public var incident: IncidentResult?
}

/// What ingestion did with a delivery; all of it is committed when this exists.
public struct IngestReport: Sendable, Equatable {
    public var deliveryID: Int64?
    public var alerts: [AlertOutcome]

    public var openedIncidents: [Int64] { Array(Set(alerts.filter { $0.incident == .opened }.compactMap(\.incidentNumber))).sorted() }
}

/// The delivery's integration key was revoked: nothing of the delivery was stored.
public struct IntegrationRevoked: Error, Sendable {
    public let integration: Integration
}

/// All SQL of alert ingestion: one transaction per delivery.
public struct IngestStore: Sendable {
    let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    /// alerts.ingest — stores a delivery in one transaction: upserts its alerts among the
    /// integration's open alerts, opens, reopens or joins the incident of each grouping key,
    /// clears alerts the source resolved, resolves (or marks all-clear) incidents with no
    /// alert left, appends timeline events, logs the delivery and notifies listeners.
    ///
    /// Two statements: the first locks the open incidents the delivery touches (so a
    /// delivery that clears an incident's last alert sees every concurrent change to it)
    /// and then its open alerts, each in id order as the resend statement does, so that
    /// concurrent deliveries of one group wait for each other and never deadlock; the
    /// second does everything else (new alerts are inserted in fingerprint order). New incidents need no lock: the partial unique
    /// index on open grouping keys turns a concurrent second insert into a join.
    /// A lost race that PostgreSQL reports (deadlock, unique violation) and a database that
    /// restarts are retried, by `Retry`'s policy.
    ///
    /// The first statement also checks that the integration key is still live, so a caller
    /// may know the key from a cache: a revoked key stores nothing.
    /// - Throws: `IntegrationRevoked` when the key was revoked; `PostgresError`.
    public func ingest(_ delivery: Delivery) async throws -> IngestReport {
        // The last report of an alert in one delivery wins (one row per fingerprint).
        var seen: [String: Int] = [:]
        var alerts: [NormalizedAlert] = []
        for alert in delivery.alerts {
            if let i = seen[alert.fingerprint] {
                alerts[i] = alert
            } else {
                seen[alert.fingerprint] = alerts.count
                alerts.append(alert)
            }
        }
        let rows = Self.repeatRowsJSON(alerts)
        return try await Retry.run {
            // A delivery of nothing but resends of open alerts — most of any source's
            // traffic — changes no incident: one statement, its own transaction, counts
            // them and logs the delivery, or (anything else in the batch) does nothing.
            let answer = try await pool.query(Self.repeatStatement(delivery, rows: rows, count: alerts.count))
            guard try answer.first?.decode("key_live", as: Bool.self) == true else { throw IntegrationRevoked(integration: delivery.integration) }
            let repeats = try Self.report(answer)
            if repeats.deliveryID != nil { return repeats }
            var rest = alerts.map { AlertRouter.route($0, runbooks: delivery.runbooks) }
            // Who owns an incident this delivery may open: whoever is on call now in the
            // rotation its runbook names (a read before the transaction; rotations
            // change rarely, and the pure on-call function needs them in Swift).
            let names = Set(rest.filter { $0.alert.status == .firing }.compactMap(\.ownersRotation))
            let now = Date()
            let rotations =
                names.isEmpty
                ? [:]
                : Dictionary(
                    try await RotationStore(pool: pool).forAssignment(names: names.sorted(), now: now).map { ($0.name, $0) },
                    uniquingKeysWith: { a, _ in a }
                )
            for n in rest.indices { rest[n].assignOwner(rotations: rotations, at: now) }
            return try await pool.withTransaction { tx in
                let keys = rest.filter { $0.alert.status == .firing }.map(\.groupingKey)
                let fingerprints = rest.map(\.alert.fingerprint)
                // Locks in one order for every writer: the incidents by id, then (the
                // one-time filter runs before the scan) the delivery's open alerts by id.
                try await tx.execute(
                    """
                    WITH incidents_locked AS (
                        SELECT id FROM incidents
                        WHERE id = ANY(ARRAY(
                            SELECT id FROM incidents WHERE grouping_key = ANY(\(keys)::text[]) AND state <> 'resolved'
                            UNION
                            SELECT incident_id FROM alerts
                            WHERE integration_id = \(delivery.integration.id) AND fingerprint = ANY(\(fingerprints)::text[]) AND cleared_at IS NULL))
                          AND state <> 'resolved'
                        ORDER BY id FOR NO KEY UPDATE
                    )
                    SELECT id FROM alerts
                    WHERE integration_id = \(delivery.integration.id) AND fingerprint = ANY(\(fingerprints)::text[]) AND cleared_at IS NULL
                      AND (SELECT count(*) FROM incidents_locked) >= 0
                    ORDER BY id FOR NO KEY UPDATE
                    """
                )
                return try Self.report(try await tx.query(Self.ingestStatement(delivery, rows: Self.rowsJSON(rest), count: alerts.count)))
            }
        }
    }

    /// The resend statement (SQL/resend.sql, which `script/bench` also runs). Row locks on
    /// the alerts only. An alert cleared between the snapshot and its row lock is skipped;
    /// the delivery then goes the full way, where the others count once more (the delivery
    /// counter is the one thing idempotency leaves free).
    static func repeatStatement(_ d: Delivery, rows: String, count: Int) -> PostgresQuery {
        PostgresQuery(
            sql: resendSQL,
            binds: [rows, d.integration.id, d.source.rawValue, d.requestID, count, d.truncatedAlerts, d.receiver, d.groupKey]
        )
    }

    static let resendSQL = String(decoding: PackageResources.resend_sql, as: UTF8.self)

    static func ingestStatement(_ d: Delivery, rows: String, count: Int) -> PostgresQuery {
        let i = d.integration.id
        let actor = d.integration.name
        let source = d.source.rawValue
        return """
            WITH input AS (
                SELECT * FROM jsonb_to_recordset(\(rows)::jsonb) AS x(
                    ord int, fingerprint text, status text, alertname text, labels jsonb, annotations jsonb, value double precision,
                    vals jsonb, links jsonb, generator_url text, severity text, grouping_key text, group_rule text, title text,
                    runbook_id text, runbook_version int, runbook_reason text, auto_resolve boolean, reopen_window int,
                    starts_at double precision, ends_at double precision, owner text, owners_rotation text, owner_reason text)
            ), known AS (
                -- Every lookup below is a LATERAL … LIMIT 1 (or = ANY(ARRAY(…))): an index probe
                -- per input row whatever the planner believes about the table's size, never
                -- a hash of the whole table.
                SELECT a.id, f.fingerprint, a.incident_id FROM input f CROSS JOIN LATERAL (
                    SELECT id, incident_id FROM alerts
                    WHERE integration_id = \(i) AND fingerprint = f.fingerprint AND cleared_at IS NULL LIMIT 1) a
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
                       k.auto_resolve, k.reopen_window, \(i), k.owners_rotation
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
                SELECT coalesce(k.id, kn.incident_id), \(i), \(source)::integration_kind, f.fingerprint, 'firing', f.alertname, f.labels,
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
                    SELECT id FROM alerts WHERE integration_id = \(i) AND fingerprint = r.fingerprint AND cleared_at IS NULL LIMIT 1) a
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
                SELECT o.id, 'opened', \(actor)::text, \(i)::bigint, jsonb_build_object(
                        'title', k.title, 'severity', k.severity, 'grouping_key', k.grouping_key, 'group_rule', k.group_rule,
                        'runbook_id', k.runbook_id, 'runbook_version', k.runbook_version, 'runbook_reason', k.runbook_reason,
                        'fingerprint', k.fingerprint, 'owner', k.owner, 'owner_reason', k.owner_reason)
                    FROM opened o JOIN keys k USING (grouping_key) WHERE o.inserted
                UNION ALL
                SELECT o.incident_id, 'role_changed', \(actor)::text, \(i)::bigint, jsonb_build_object(
                        'role', 'owner', 'action', 'rotation', 'from', NULL, 'to', k.owner, 'rotation', k.owners_rotation,
                        'reason', k.owner_reason, 'pending', true)
                    FROM owned o JOIN opened op ON op.id = o.incident_id JOIN keys k ON k.grouping_key = op.grouping_key
                UNION ALL
                SELECT r.id, 'reopened', \(actor)::text, \(i)::bigint, jsonb_build_object('grouping_key', r.grouping_key) FROM reopened r
                UNION ALL
                SELECT u.incident_id, 'alert_added', \(actor)::text, \(i)::bigint, jsonb_build_object(
                        'fingerprint', u.fingerprint, 'alertname', f.alertname, 'severity', f.severity, 'value', f.value, 'labels', f.labels)
                    FROM upserted u JOIN input f USING (fingerprint) WHERE u.inserted
                UNION ALL
                SELECT c.incident_id, 'alert_cleared', \(actor)::text, \(i)::bigint, jsonb_build_object('fingerprint', c.fingerprint) FROM cleared c
                UNION ALL
                SELECT a.id, CASE WHEN a.auto_resolve THEN 'resolved' ELSE 'all_alerts_cleared' END, \(actor)::text, \(i)::bigint,
                       jsonb_build_object('automatic', true, 'reason', 'every alert of the incident has cleared') FROM all_clear a
                RETURNING incident_id
            ), delivery AS (
                INSERT INTO deliveries (integration_id, source, request_id, outcome, alert_count, truncated_alerts, receiver, group_key)
                VALUES (\(i), \(source)::integration_kind, \(d.requestID), 'stored', \(count), \(d.truncatedAlerts), \(d.receiver), \(d.groupKey))
                RETURNING id
            ), notified AS (
                SELECT count(*) AS n FROM (SELECT pg_notify(\(IncidentFeed.channel), e.incident_id::text) FROM (SELECT DISTINCT incident_id FROM events) e) s
            )
            SELECT x.fingerprint, x.result,
                   coalesce((SELECT k.number FROM incident_for_key k WHERE k.id = x.incident_id LIMIT 1),
                            (SELECT inc.number FROM incidents inc WHERE inc.id = x.incident_id)) AS incident_number,
                   CASE WHEN x.incident_id IN (SELECT id FROM opened WHERE inserted) THEN 'opened'
                        WHEN x.incident_id IN (SELECT id FROM reopened) THEN 'reopened'
                        WHEN x.incident_id IN (SELECT id FROM auto_resolved) THEN 'resolved'
                        WHEN x.incident_id IN (SELECT id FROM all_clear) THEN 'all_alerts_cleared'
                        WHEN x.incident_id IS NOT NULL THEN 'joined' END AS incident,
                   (SELECT id FROM delivery) AS delivery_id, (SELECT n FROM notified) AS notified
            FROM (
                SELECT u.fingerprint, CASE WHEN u.inserted THEN 'new' ELSE 'repeat' END AS result, u.incident_id FROM upserted u
                UNION ALL SELECT c.fingerprint, 'cleared', c.incident_id FROM cleared c
                UNION ALL SELECT r.fingerprint, 'unknown', NULL FROM input r
                    WHERE r.status = 'resolved' AND NOT EXISTS (SELECT 1 FROM cleared c WHERE c.fingerprint = r.fingerprint)
                UNION ALL SELECT NULL, NULL, NULL WHERE NOT EXISTS (SELECT 1 FROM input)
            ) x
            """
    }

    static func report(_ rows: PostgresRows) throws -> IngestReport {
        var report = IngestReport(deliveryID: nil, alerts: [])
        for row in rows {
            report.deliveryID = try row.decode("delivery_id", as: Int64?.self)
            guard let fingerprint = try row.decode("fingerprint", as: String?.self) else { continue }
            report.alerts.append(
                AlertOutcome(
                    fingerprint: fingerprint,
                    result: try row.decode("result"),
                    incidentNumber: try row.decode("incident_number", as: Int64?.self),
                    incident: try row.decode("incident")
                )
            )
        }
        return report
    }

    /// What the resend statement needs of each alert, as one JSON array.
    package static func repeatRowsJSON(_ alerts: [NormalizedAlert]) -> String {
        var w = JSONText()
        w.reserveCapacity(alerts.count * 400)
        w.array(alerts.enumerated()) { w, item in
            w.object { w in
                w.field("ord", item.offset)
                alertFields(item.element, into: &w)
            }
        }
        return w.text
    }

    /// The fields both statements read of an alert.
    static func alertFields(_ a: NormalizedAlert, into w: inout JSONText) {
        w.field("fingerprint", a.fingerprint)
        w.field("status", a.status.rawValue)
        w.field("labels", a.labels)
        w.field("annotations", a.annotations)
        w.field("vals", a.values)
        w.field("links", a.links)
        w.field("value", a.value)
        w.field("ends_at", a.endsAt?.timeIntervalSince1970)
    }

    /// The delivery's alerts as one JSON array for `jsonb_to_recordset`: one bind, any size.
    static func rowsJSON(_ alerts: [RoutedAlert]) -> String {
        var w = JSONText()
        w.reserveCapacity(alerts.count * 600)
        w.array(alerts.enumerated()) { w, item in
            let routed = item.element
            let a = routed.alert
            w.object { w in
                w.field("ord", item.offset)
                alertFields(a, into: &w)
                w.field("alertname", a.labels["alertname"] ?? "")
                w.field("severity", routed.severity.rawValue)
                w.field("grouping_key", routed.groupingKey)
                w.field("group_rule", routed.groupRule)
                w.field("title", routed.title)
                w.field("runbook_reason", routed.runbookReason)
                w.field("auto_resolve", routed.autoResolve)
                w.field("reopen_window", routed.reopenWindow)
                w.field("generator_url", a.generatorURL)
                if let id = routed.runbookID, let version = routed.runbookVersion {
                    w.field("runbook_id", id)
                    w.field("runbook_version", version)
                }
                w.field("starts_at", a.startsAt?.timeIntervalSince1970)
                w.field("owner", routed.owner)
                w.field("owners_rotation", routed.ownersRotation)
                w.field("owner_reason", routed.ownerReason)
            }
        }
        return w.text
    }

    /// delivery.rejected — a delivery that was refused (bad input), so it can be traced too;
    /// unless its integration key was revoked (then nothing is written, and this throws).
    /// - Throws: `IntegrationRevoked`; `PostgresError`.
    public func recordRejected(integration: Integration?, source: IntegrationKind, requestID: String?, error: String) async throws {
        let written = try await pool.execute(
            """
            INSERT INTO deliveries (integration_id, source, request_id, outcome, error)
            SELECT \(integration?.id), \(source.rawValue)::integration_kind, \(requestID), 'rejected', \(String(error.prefix(1000)))
            WHERE \(integration?.id)::bigint IS NULL
               OR EXISTS (SELECT 1 FROM integration_keys WHERE id = \(integration?.id) AND revoked_at IS NULL)
            """
        )
        if written == 0, let integration { throw IntegrationRevoked(integration: integration) }
    }
}
