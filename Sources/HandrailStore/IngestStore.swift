import Foundation
public import HandrailCore
public import Logging
public import Postgres
import Synchronization

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

/// The alerts this process has stored as open, by integration and fingerprint: a hint for
/// choosing a delivery's first statement, never the truth. A delivery with an alert not
/// among them goes straight to the full path, which stores resends as well; one whose
/// alerts are all here tries the resend statement first. So a storm of new alerts skips the
/// resend statement's round trip, which finds nothing to resend: `script/bench storm`,
/// 2 alternating runs, 833-903 → 980-1,063 new incidents/s, CPU per new incident server
/// 570-628 → 480-543 µs, PostgreSQL 1,332-1,453 → 1,063-1,156 µs. A wrong hint costs a round
/// trip, never an alert: an alert opened by another replica, or before a restart, is found
/// by the full path once and known from then on; a cleared one stays here, and its next
/// delivery tries the resend statement first, as every delivery once did. At `capacity`
/// fingerprints the hint starts again from empty.
final class OpenAlertHint: Sendable {
    private struct Key: Hashable {
        var integration: Int
        var fingerprint: String
    }

    let capacity: Int
    private let keys = Mutex<Set<Key>>([])

    init(capacity: Int = 200_000) { self.capacity = capacity }

    /// Whether every one of `fingerprints` was stored as open (true for none).
    func knowsAll(_ integration: Int, _ fingerprints: some Sequence<String>) -> Bool {
        keys.withLock { keys in fingerprints.allSatisfy { keys.contains(Key(integration: integration, fingerprint: $0)) } }
    }

    func remember(_ integration: Int, _ fingerprints: some Sequence<String>) {
        keys.withLock { keys in
            for fingerprint in fingerprints {
                if keys.count >= capacity { keys.removeAll(keepingCapacity: true) }
                keys.insert(Key(integration: integration, fingerprint: fingerprint))
            }
        }
    }
}

/// All SQL of alert ingestion: one transaction per delivery.
public struct IngestStore: Sendable {
    let pool: PostgresPool
    let announcer: IncidentAnnouncer
    let batcher: IngestBatcher
    let openAlerts = OpenAlertHint()

    public init(pool: PostgresPool, logger: Logger = Logger(label: "handrail.ingest")) {
        self.pool = pool
        self.announcer = IncidentAnnouncer(pool: pool, logger: logger)
        let announcer = self.announcer
        self.batcher = IngestBatcher { jobs in
            let (reports, changed) = try await Self.write(jobs, pool: pool)
            announcer.announce(changed)
            return reports
        }
    }

    /// alerts.ingest — stores a delivery in one transaction: upserts its alerts among the
    /// integration's open alerts, opens, reopens or joins the incident of each grouping key,
    /// clears alerts the source resolved, resolves (or marks all-clear) incidents with no
    /// alert left, appends timeline events, logs the delivery and notifies listeners.
    ///
    /// Two statements, sent together as one transaction (`PostgresPool.transaction`: one round
    /// trip instead of four with BEGIN and COMMIT), for this delivery and any others of its
    /// integration that wait with it (`IngestBatcher`): the first locks the open incidents the delivery touches (so a
    /// delivery that clears an incident's last alert sees every concurrent change to it)
    /// and then its open alerts, each in id order as the resend statement does, so that
    /// concurrent deliveries of one group wait for each other and never deadlock; the
    /// second does everything else (new alerts are inserted in fingerprint order). New incidents need no lock: the partial unique
    /// index on open grouping keys turns a concurrent second insert into a join.
    /// A lost race that PostgreSQL reports (deadlock, unique violation) and a database that
    /// restarts are retried, by `Retry`'s policy.
    ///
    /// Either path checks, in the statement that writes, that the integration key is still
    /// live, so a caller may know the key from a cache: a revoked key stores nothing.
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
        let integration = delivery.integration.id
        let mayBeResends = alerts.allSatisfy { $0.status == .firing } && openAlerts.knowsAll(integration, alerts.lazy.map(\.fingerprint))
        return try await Retry.run {
            // A delivery of nothing but resends of open alerts — most of any source's
            // traffic — changes no incident: one statement, its own transaction, counts
            // them and logs the delivery, or (anything else in the batch) does nothing.
            // Tried only when this process has stored every one of its alerts as open:
            // otherwise it cannot be only resends, as far as this process knows, and the
            // full path (which takes resends too) is the one round trip it needs.
            if mayBeResends {
                let answer = try await pool.query(Self.repeatStatement(delivery, rows: Self.repeatRowsJSON(alerts), count: alerts.count))
                guard try answer.first?.decode("key_live", as: Bool.self) == true else { throw IntegrationRevoked(integration: delivery.integration) }
                let repeats = try Self.report(answer)
                if repeats.deliveryID != nil { return repeats }
            }
            let routed = alerts.map { AlertRouter.route($0, runbooks: delivery.runbooks) }
            let report = try await batcher.submit(IngestBatcher.Job(delivery: delivery, alerts: routed))
            openAlerts.remember(integration, report.alerts.lazy.filter { $0.result == .new || $0.result == .repeat }.map(\.fingerprint))
            return report
        }
    }

    /// The first statement of a delivery's transaction: locks in one order for every writer,
    /// the incidents by id, then the delivery's open alerts by id. Every row is found by its
    /// own index probe (LATERAL … LIMIT 1 on the unique open key, as in SQL/ingest.sql) and
    /// locked by its primary key alone, in id order: a connection keeps the generic plan it
    /// made when the tables were small, and for `= ANY(…)` or an `id` probe that also says
    /// "still open", that plan was a scan of every open row (a fresh database in an alert
    /// storm: 1,818 buffers and 11.8 ms a batch within seconds, and worse with each incident).
    /// A row found open and closed before its lock is locked all the same: nothing else
    /// is done with it here, and the ingest statement reads with the snapshot after the locks.
    package static func lockStatement(keys: [String], integration: Int, fingerprints: [String]) -> PostgresQuery {
        """
        WITH found AS MATERIALIZED (
            SELECT a.id, a.incident_id FROM unnest(\(fingerprints)::text[]) AS f(fingerprint) CROSS JOIN LATERAL (
                SELECT id, incident_id FROM alerts
                WHERE integration_id = \(integration) AND fingerprint = f.fingerprint AND cleared_at IS NULL LIMIT 1) a
        ), incidents_locked AS (
            SELECT i.id FROM (
                SELECT p.id FROM unnest(\(keys)::text[]) AS k(grouping_key) CROSS JOIN LATERAL (
                    SELECT id FROM incidents WHERE grouping_key = k.grouping_key AND state <> 'resolved' LIMIT 1) p
                UNION SELECT incident_id FROM found
                ORDER BY 1
            ) x CROSS JOIN LATERAL (SELECT id FROM incidents WHERE id = x.id FOR NO KEY UPDATE) i
        )
        SELECT a.id FROM (SELECT id FROM found ORDER BY id) x CROSS JOIN LATERAL (
            SELECT id FROM alerts WHERE id = x.id FOR NO KEY UPDATE) a
        WHERE (SELECT count(*) FROM incidents_locked) >= 0
        """
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

    /// Writes a batch of deliveries of one integration (`IngestBatcher`) in one transaction
    /// and one round trip: the locking statement, then the ingest statement. Returns each
    /// delivery's report, in the jobs' order, and the incidents the batch changed.
    static func write(_ jobs: [IngestBatcher.Job], pool: PostgresPool) async throws -> ([IngestReport], [Int64]) {
        guard let first = jobs.first?.delivery else { return ([], []) }
        var alerts = jobs.flatMap(\.alerts)
        // Who owns an incident the batch may open: whoever is on call now in the rotation
        // its runbook names (a read before the transaction, once a batch; rotations change
        // rarely, and the pure on-call function needs them in Swift).
        let names = Set(alerts.filter { $0.alert.status == .firing }.compactMap(\.ownersRotation))
        let now = Date()
        let rotations =
            names.isEmpty
            ? [:]
            : Dictionary(
                try await RotationStore(pool: pool).forAssignment(names: names.sorted(), now: now).map { ($0.name, $0) },
                uniquingKeysWith: { a, _ in a }
            )
        RoutedAlert.assignOwners(&alerts, rotations: rotations, at: now)
        let answers = try await pool.transaction([
            lockStatement(
                keys: alerts.filter { $0.alert.status == .firing }.map(\.groupingKey),
                integration: first.integration.id,
                fingerprints: alerts.map(\.alert.fingerprint)
            ),
            PostgresQuery(
                sql: ingestSQL,
                binds: [rowsJSON(alerts), first.integration.id, first.source.rawValue, first.integration.name, deliveriesJSON(jobs)]
            ),
        ])
        let rows = answers[1]
        guard try rows.first?.decode("key_live", as: Bool.self) == true else { throw IntegrationRevoked(integration: first.integration) }
        let ids = try rows.first?.decode("delivery_ids", as: String?.self)?.split(separator: ",").compactMap { Int64($0) } ?? []
        let changed = try rows.first?.decode("changed", as: String?.self)?.split(separator: ",").compactMap { Int64($0) } ?? []
        guard ids.count == jobs.count else {
            throw PostgresError(kind: .server, message: "\(jobs.count) deliveries were stored as \(ids.count)")
        }
        // No fingerprint is in two deliveries of a batch: each outcome goes to the one it came in.
        var delivery: [String: Int] = [:]
        for (n, job) in jobs.enumerated() { for a in job.alerts { delivery[a.alert.fingerprint] = n } }
        var reports = ids.map { IngestReport(deliveryID: $0, alerts: []) }
        for outcome in try report(rows).alerts {
            if let n = delivery[outcome.fingerprint] { reports[n].alerts.append(outcome) }
        }
        return (reports, changed)
    }

    /// The deliveries of a batch as one JSON array for the ingest statement's `delivery` rows.
    static func deliveriesJSON(_ jobs: [IngestBatcher.Job]) -> String {
        var w = JSONText()
        w.array(jobs.enumerated()) { w, item in
            let d = item.element.delivery
            w.object { w in
                w.field("ord", item.offset)
                w.field("request_id", d.requestID)
                w.field("alert_count", item.element.alerts.count)
                w.field("truncated_alerts", d.truncatedAlerts)
                w.field("receiver", d.receiver)
                w.field("group_key", d.groupKey)
            }
        }
        return w.text
    }

    static let ingestSQL = String(decoding: PackageResources.ingest_sql, as: UTF8.self)

    static func report(_ rows: PostgresRows) throws -> IngestReport {
        var report = IngestReport(deliveryID: nil, alerts: [])
        for row in rows {
            // The resend statement's delivery (the ingest statement's are in `delivery_ids`).
            if let id = row["delivery_id"] { report.deliveryID = Int64(id) }
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
