import Foundation
import HandrailCore
import Postgres
import TestSupport
import Testing

@testable import HandrailStore

/// An integration key row to deliver as.
func makeIntegration(_ pool: PostgresPool, name: String = "am", kind: IntegrationKind = .alertmanager) async throws -> Integration {
    let record = try await IntegrationKeyStore(pool: pool).create(
        name: name,
        kind: kind,
        keyHash: Secrets.hash(name + UUID().uuidString),
        displayPrefix: "x",
        requireSignature: false,
        by: .system
    )
    return Integration(id: record.id, name: record.name, kind: kind, requireSignature: false)
}

func alert(
    _ fingerprint: String,
    _ status: AlertStatus = .firing,
    name: String = "FeatureDriftHigh",
    model: String = "ranker",
    annotations: [String: String] = ["summary": "drift"],
    value: Double? = nil
) -> NormalizedAlert {
    NormalizedAlert(
        source: .alertmanager,
        fingerprint: fingerprint,
        status: status,
        labels: ["alertname": name, "model": model, "service": "reco"],
        annotations: annotations,
        value: value
    )
}

let driftRunbook = """
    ---
    id: model-drift
    title: Model drift
    match: { alertname: FeatureDriftHigh }
    group_by: [alertname, model]
    thresholds:
      - { metric: psi, warning: 0.1, critical: 0.2 }
    auto_resolve: AUTO
    reopen_window: 1h
    ---
    # Drift

    ## Steps
    1. Check the feature pipeline.
    2. Compare with last week.
    """

/// Syncs one drift runbook and returns what the router needs.
func syncedDrift(_ pool: PostgresPool, autoResolve: Bool = true) async throws -> [RunbookCandidate] {
    let text = driftRunbook.replacingOccurrences(of: "AUTO", with: autoResolve ? "true" : "false")
    let runbook = try #require(RunbookParser.parse(text, path: "runbooks/model-drift.md").runbook)
    _ = try await RunbookStore(pool: pool).sync([("runbooks/model-drift.md", text, runbook)], by: "test")
    return [RunbookCandidate(runbook: runbook, version: 1)]
}

func deliver(_ store: IngestStore, _ integration: Integration, _ alerts: [NormalizedAlert], runbooks: [RunbookCandidate]) async throws -> IngestReport
{
    try await store.ingest(Delivery(integration: integration, source: .alertmanager, alerts: alerts, runbooks: runbooks))
}

func scalar<T: PostgresDecodable>(_ pool: PostgresPool, _ query: PostgresQuery, as: T.Type = T.self) async throws -> T {
    let rows = try await pool.query(query)
    return try rows[0].decode(T.self, at: 0)
}

@Suite struct IngestStoreTests {
    @Test func twoAlertsOfOneGroupOpenOneIncidentWithThePinnedRunbook() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let runbooks = try await syncedDrift(pool)
            let am = try await makeIntegration(pool)
            let store = IngestStore(pool: pool)
            let report = try await deliver(store, am, [alert("f1", value: 0.25), alert("f2", value: 0.12)], runbooks: runbooks)
            #expect(report.alerts.map(\.result) == [.new, .new])
            #expect(report.openedIncidents.count == 1)
            #expect(Set(report.alerts.compactMap(\.incidentNumber)).count == 1)
            let row = try await pool.query(
                "SELECT runbook_id, runbook_version, runbook_reason, severity, state::text AS state, grouping_key FROM incidents"
            )
            #expect(row.count == 1)
            #expect(try row[0].decode("runbook_id", as: String.self) == "model-drift")
            #expect(try row[0].decode("runbook_version", as: Int.self) == 1)
            let reasonText: String = try row[0].decode("runbook_reason")
            #expect(reasonText.contains("alertname=\"FeatureDriftHigh\""), "\(reasonText)")
            #expect(try row[0].decode("severity", as: String.self) == "critical")
            #expect(try row[0].decode("state", as: String.self) == "triggered")
            #expect(try row[0].decode("grouping_key", as: String.self) == "alertname=\"FeatureDriftHigh\", model=\"ranker\"")
            let types = try await pool.query("SELECT type FROM incident_events ORDER BY id").map { try $0.decode("type", as: String.self) }
            // One timeline entry for the alerts a delivery added, naming each of them.
            #expect(types == ["opened", "alert_added"])
            let added: String = try await scalar(pool, "SELECT data::text FROM incident_events WHERE type = 'alert_added'")
            #expect(added.contains("\"count\": 2") && added.contains("\"f1\"") && added.contains("\"f2\""), "\(added)")
            let deliveries: Int = try await scalar(pool, "SELECT count(*) FROM deliveries WHERE outcome = 'stored'")
            #expect(deliveries == 1)
        }
    }

    @Test func aResendCountsADeliveryAndOpensNothing() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let runbooks = try await syncedDrift(pool)
            let am = try await makeIntegration(pool)
            let store = IngestStore(pool: pool)
            _ = try await deliver(store, am, [alert("f1"), alert("f2")], runbooks: runbooks)
            let again = try await deliver(store, am, [alert("f1"), alert("f2")], runbooks: runbooks)
            #expect(again.alerts.map(\.result) == [.repeat, .repeat])
            #expect(again.alerts.allSatisfy { $0.incident == .joined })
            // Another replica (or this one restarted) did not store them: a resend all the same,
            // the first time (by the full path) and the next.
            let replica = IngestStore(pool: pool)
            for _ in 0..<2 {
                let elsewhere = try await deliver(replica, am, [alert("f1"), alert("f2")], runbooks: runbooks)
                #expect(elsewhere.alerts.map(\.result) == [.repeat, .repeat])
                #expect(elsewhere.alerts.allSatisfy { $0.incident == .joined && $0.incidentNumber == again.alerts[0].incidentNumber })
                #expect(elsewhere.deliveryID != nil)
            }
            let incidents: Int = try await scalar(pool, "SELECT count(*) FROM incidents")
            let counts = try await pool.query("SELECT delivery_count FROM alerts ORDER BY fingerprint").map {
                try $0.decode("delivery_count", as: Int.self)
            }
            #expect(incidents == 1)
            #expect(counts == [4, 4])
            let events: Int = try await scalar(pool, "SELECT count(*) FROM incident_events")
            #expect(events == 2)  // a resend adds nothing to the timeline
            let deliveries: Int = try await scalar(pool, "SELECT count(*) FROM deliveries WHERE outcome = 'stored'")
            #expect(deliveries == 4)
        }
    }

    /// Which alerts a process has stored as open, for choosing a delivery's first statement.
    @Test func theOpenAlertHintKnowsWhatItStoredPerIntegrationWithinItsCapacity() {
        let hint = OpenAlertHint(capacity: 3)
        #expect(hint.knowsAll(1, []))
        #expect(!hint.knowsAll(1, ["f1"]))
        hint.remember(1, ["f1", "f2"])
        #expect(hint.knowsAll(1, ["f1", "f2"]))
        #expect(!hint.knowsAll(1, ["f1", "f3"]))
        #expect(!hint.knowsAll(2, ["f1"]), "another integration's alert of that fingerprint")
        hint.remember(1, ["f3", "f4"])  // past its capacity: it started again
        #expect(hint.knowsAll(1, ["f4"]) && !hint.knowsAll(1, ["f1"]))
    }

    /// The server may know a key from its cache; the store's own statements refuse a revoked
    /// one, for resends, new alerts, clears and refused deliveries alike, and store nothing.
    @Test func aRevokedKeyStoresNothingEvenWhenTheCallerStillHoldsIt() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let runbooks = try await syncedDrift(pool)
            let am = try await makeIntegration(pool)
            let store = IngestStore(pool: pool)
            _ = try await deliver(store, am, [alert("f1")], runbooks: runbooks)
            _ = try await IntegrationKeyStore(pool: pool).revoke(name: am.name, by: .system)
            for alerts in [[alert("f1")], [alert("f2")], [alert("f1", .resolved)], []] {
                await #expect(throws: IntegrationRevoked.self) { try await deliver(store, am, alerts, runbooks: runbooks) }
            }
            // A replica that did not store f1 sends its resend the full way: refused there too.
            await #expect(throws: IntegrationRevoked.self) { try await deliver(IngestStore(pool: pool), am, [alert("f1")], runbooks: runbooks) }
            await #expect(throws: IntegrationRevoked.self) {
                try await store.recordRejected(integration: am, source: .alertmanager, requestID: "r1", error: "alerts: is required")
            }
            let stored = try await pool.query(
                """
                SELECT (SELECT count(*) FROM alerts) AS alerts, (SELECT sum(delivery_count) FROM alerts) AS deliveries,
                       (SELECT count(*) FROM alerts WHERE cleared_at IS NOT NULL) AS cleared, (SELECT count(*) FROM deliveries) AS logged
                """
            )
            #expect(try stored[0].decode("alerts", as: Int.self) == 1)
            #expect(try stored[0].decode("deliveries", as: Int.self) == 1)
            #expect(try stored[0].decode("cleared", as: Int.self) == 0)
            #expect(try stored[0].decode("logged", as: Int.self) == 1)
            // A live key's refused delivery is still logged.
            let other = try await makeIntegration(pool, name: "other")
            try await store.recordRejected(integration: other, source: .alertmanager, requestID: "r2", error: "alerts: is required")
            let logged: Int = try await scalar(pool, "SELECT count(*) FROM deliveries WHERE outcome = 'rejected'")
            #expect(logged == 1)
        }
    }

    @Test func clearingEveryAlertResolvesWhenTheRunbookAllowsIt() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let runbooks = try await syncedDrift(pool, autoResolve: true)
            let am = try await makeIntegration(pool)
            let store = IngestStore(pool: pool)
            _ = try await deliver(store, am, [alert("f1"), alert("f2")], runbooks: runbooks)
            let one = try await deliver(store, am, [alert("f1", .resolved, annotations: [:]), alert("f2")], runbooks: runbooks)
            #expect(one.alerts.first { $0.fingerprint == "f1" }?.result == .cleared)
            var state: String = try await scalar(pool, "SELECT state::text FROM incidents")
            #expect(state == "triggered")
            // Resolved payloads may carry empty annotations: the firing ones stay.
            let summary: String? = try await scalar(pool, "SELECT annotations->>'summary' FROM alerts WHERE fingerprint = 'f1'")
            #expect(summary == "drift")
            let both = try await deliver(store, am, [alert("f1", .resolved), alert("f2", .resolved)], runbooks: runbooks)
            #expect(both.alerts.first { $0.fingerprint == "f2" }?.incident == .resolved)
            #expect(both.alerts.first { $0.fingerprint == "f1" }?.result == .unknown)
            state = try await scalar(pool, "SELECT state::text FROM incidents")
            #expect(state == "resolved")
            let last: String = try await scalar(pool, "SELECT type FROM incident_events ORDER BY id DESC LIMIT 1")
            #expect(last == "resolved")
        }
    }

    @Test func clearingEveryAlertOnlyRecordsAllClearWhenTheRunbookSaysNoAutoResolve() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let runbooks = try await syncedDrift(pool, autoResolve: false)
            let am = try await makeIntegration(pool)
            let store = IngestStore(pool: pool)
            _ = try await deliver(store, am, [alert("f1")], runbooks: runbooks)
            let report = try await deliver(store, am, [alert("f1", .resolved)], runbooks: runbooks)
            #expect(report.alerts.first?.incident == .allAlertsCleared)
            let state: String = try await scalar(pool, "SELECT state::text FROM incidents")
            #expect(state == "triggered")
            let last: String = try await scalar(pool, "SELECT type FROM incident_events ORDER BY id DESC LIMIT 1")
            #expect(last == "all_alerts_cleared")
        }
    }

    @Test func firingAgainWithinTheReopenWindowReopensAfterItANewIncidentOpens() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let runbooks = try await syncedDrift(pool)
            let am = try await makeIntegration(pool)
            let store = IngestStore(pool: pool)
            let first = try await deliver(store, am, [alert("f1")], runbooks: runbooks)
            _ = try await deliver(store, am, [alert("f1", .resolved)], runbooks: runbooks)
            let again = try await deliver(store, am, [alert("f1")], runbooks: runbooks)
            #expect(again.alerts.first?.incident == .reopened)
            #expect(again.alerts.first?.incidentNumber == first.alerts.first?.incidentNumber)
            #expect(again.alerts.first?.result == .new)
            // Resolve again and pretend it was two hours ago: outside the 1 h window.
            _ = try await deliver(store, am, [alert("f1", .resolved)], runbooks: runbooks)
            try await pool.execute("UPDATE incidents SET resolved_at = now() - interval '2 hours'")
            let later = try await deliver(store, am, [alert("f1")], runbooks: runbooks)
            #expect(later.alerts.first?.incident == .opened)
            #expect(later.alerts.first?.incidentNumber != first.alerts.first?.incidentNumber)
        }
    }

    @Test func fiftyConcurrentDeliveriesOfOneNewAlertMakeOneIncident() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let runbooks = try await syncedDrift(pool)
            let am = try await makeIntegration(pool)
            let store = IngestStore(pool: pool)
            try await withThrowingTaskGroup(of: IngestReport.self) { group in
                for _ in 0..<50 { group.addTask { try await deliver(store, am, [alert("same")], runbooks: runbooks) } }
                for try await _ in group {}
            }
            let incidents: Int = try await scalar(pool, "SELECT count(*) FROM incidents")
            let alerts: Int = try await scalar(pool, "SELECT count(*) FROM alerts")
            let deliveries: Int = try await scalar(pool, "SELECT delivery_count FROM alerts")
            let opened: Int = try await scalar(pool, "SELECT count(*) FROM incident_events WHERE type = 'opened'")
            #expect(incidents == 1)
            #expect(alerts == 1)
            #expect(deliveries == 50)
            #expect(opened == 1)
        }
    }

    /// A storm through one integration: forty new groups at once, several of each group's
    /// deliveries written in one transaction (so fewer transactions than deliveries), and
    /// every sender still told exactly what became of its own alerts: its own delivery row
    /// (with its own alert count), its incident opened, nobody else's alerts.
    @Test func aStormOfNewGroupsIsWrittenTogetherAndEachSenderHearsOfItsOwnAlerts() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let runbooks = try await syncedDrift(pool)
            let am = try await makeIntegration(pool)
            let store = IngestStore(pool: pool)
            let reports = try await withThrowingTaskGroup(of: (Int, IngestReport).self) { group in
                for n in 0..<40 {
                    // Group n has n % 3 + 1 alerts; every eighth delivery also clears an alert never seen.
                    var alerts = (0...(n % 3)).map { alert("storm\(n)-\($0)", model: "model\(n)") }
                    if n % 8 == 0 { alerts.append(alert("gone\(n)", .resolved, model: "model\(n)")) }
                    group.addTask { [alerts] in (n, try await deliver(store, am, alerts, runbooks: runbooks)) }
                }
                return try await group.reduce(into: [Int: IngestReport]()) { $0[$1.0] = $1.1 }
            }
            var numbers: Set<Int64> = []
            for (n, report) in reports {
                let firing = (0...(n % 3)).map { "storm\(n)-\($0)" }
                #expect(report.alerts.filter { $0.result == .new }.map(\.fingerprint).sorted() == firing)
                #expect(report.alerts.filter { $0.result == .unknown }.map(\.fingerprint) == (n % 8 == 0 ? ["gone\(n)"] : []))
                #expect(report.alerts.count == firing.count + (n % 8 == 0 ? 1 : 0))
                #expect(Set(report.alerts.compactMap(\.incidentNumber)).count == 1)
                #expect(report.openedIncidents.count == 1)
                numbers.formUnion(report.openedIncidents)
                let id = try #require(report.deliveryID)
                let count: Int = try await scalar(pool, "SELECT alert_count FROM deliveries WHERE id = \(id)")
                #expect(count == report.alerts.count, "delivery \(n)'s row counts its own alerts")
            }
            #expect(numbers.count == 40)
            #expect(Set(reports.values.compactMap(\.deliveryID)).count == 40)
            let incidents: Int = try await scalar(pool, "SELECT count(*) FROM incidents")
            let transactions: Int = try await scalar(pool, "SELECT count(DISTINCT xmin::text) FROM deliveries")
            #expect(incidents == 40)
            #expect(transactions < 40, "deliveries that waited were written together")
        }
    }

    /// One ten-alert group delivered by eight senders at once, over and over, in orders that
    /// differ between senders (a retry overlapping a slow first try, two Alertmanager
    /// clusters): every delivery is stored and PostgreSQL never has to break a deadlock.
    @Test func concurrentDeliveriesOfOneGroupNeverDeadlock() async throws {
        try await TestDatabase.withMigrated { pool, conninfo in
            let runbooks = try await syncedDrift(pool)
            let am = try await makeIntegration(pool)
            let group = (0..<10).map { alert("g\($0)") }
            _ = try await deliver(IngestStore(pool: pool), am, group, runbooks: runbooks)
            // The senders' own connections, named so that the test can wait for them to end
            // (a backend hands its statistics, deadlocks included, over as it exits).
            let senders = PostgresPool(conninfo: conninfo + " application_name=senders", maxConnections: 8)
            let store = IngestStore(pool: senders)
            let rounds = 20
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                for s in 0..<8 {
                    tasks.addTask {
                        for r in 0..<rounds {
                            let k = (s * 3 + r) % group.count
                            var alerts = Array(group[k...] + group[..<k])
                            // Every third delivery also carries the sender's own alert (new the first time: the full path).
                            if r % 3 == 2 { alerts.append(alert("extra\(s)")) }
                            _ = try await deliver(store, am, alerts, runbooks: runbooks)
                        }
                    }
                }
                try await tasks.waitForAll()
            }
            senders.close()
            for _ in 0..<100 {
                let open: Int = try await scalar(pool, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'senders'")
                if open == 0 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            let deadlocks: Int = try await scalar(pool, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
            #expect(deadlocks == 0)
            let counts: Int = try await scalar(pool, "SELECT sum(delivery_count) FROM alerts WHERE fingerprint LIKE 'g%'")
            #expect(counts == 10 * (1 + 8 * rounds))
            #expect(try await scalar(pool, "SELECT count(*) FROM incidents") as Int == 1)
        }
    }

    @Test func everyChangeNotifiesListenersWithTheIncidentID() async throws {
        try await TestDatabase.withMigrated { pool, conninfo in
            let am = try await makeIntegration(pool)
            let listener = try await PostgresConnection.connect(conninfo)
            defer { listener.close() }
            try await listener.listen(IncidentFeed.channel)
            let received = Task {
                var payloads: [String] = []
                for try await note in listener.notifications() {
                    payloads.append(note.payload)
                    if payloads.count == 2 { break }
                }
                return payloads
            }
            let store = IngestStore(pool: pool)
            _ = try await deliver(store, am, [alert("f1")], runbooks: [])
            _ = try await deliver(store, am, [alert("f1")], runbooks: [])  // a resend changes nothing: no notification
            _ = try await deliver(store, am, [alert("g1", name: "DiskFull")], runbooks: [])
            let ids = try await pool.query("SELECT id FROM incidents ORDER BY id").map { String(try $0.decode("id", as: Int64.self)) }
            #expect(try await received.value == ids)
        }
    }

    @Test func anyTextInLabelsAndAnnotationsIsStoredAsSent() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let am = try await makeIntegration(pool)
            let odd = "quote \" backslash \\ newline \n tab \t bell \u{07} ünïcødé 🚨 nul \u{0}"
            var sent = alert("odd")
            sent.labels["model"] = odd
            sent.annotations = ["description": odd, "json": #"{"a": [1, "b"]}"#]
            sent.values = ["B": 1e-7, "C": 12_345_678.5]
            _ = try await deliver(IngestStore(pool: pool), am, [sent], runbooks: [])
            let detail = try #require(try await IncidentStore(pool: pool).list(IncidentFilter()).first)
            let stored = try #require(try await IncidentStore(pool: pool).detail(number: detail.number)?.alerts.first)
            let expected = odd.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}")
            #expect(stored.labels["model"] == expected)
            #expect(stored.annotations["description"] == expected)
            #expect(stored.annotations["json"] == #"{"a": [1, "b"]}"#)
            #expect(stored.values == ["B": 1e-7, "C": 12_345_678.5])
        }
    }

    @Test func theTimelineRefusesUpdateAndDelete() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let am = try await makeIntegration(pool)
            _ = try await deliver(IngestStore(pool: pool), am, [alert("f1")], runbooks: [])
            await #expect(throws: PostgresError.self) { try await pool.execute("UPDATE incident_events SET type = 'x'") }
            await #expect(throws: PostgresError.self) { try await pool.execute("DELETE FROM incident_events") }
            let reason: String = try await scalar(pool, "SELECT runbook_reason FROM incidents")
            #expect(reason == "no runbook matches these labels")
        }
    }
}
