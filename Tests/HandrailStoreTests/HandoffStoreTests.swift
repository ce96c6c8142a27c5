import Foundation
import HandrailCore
import Postgres
import TestSupport
import Testing

@testable import HandrailStore

/// A runbook owned by `owners`, matching `alertname`.
private func ownedRunbook(_ pool: PostgresPool, id: String, alertname: String, owners: String) async throws -> RunbookCandidate {
    let text = """
        ---
        id: \(id)
        title: \(id)
        match: { alertname: \(alertname) }
        group_by: [alertname, model]
        owners: \(owners)
        ---
        # \(id)

        ## Steps
        1. Look at the dashboard.
        2. Compare with last week.
        3. Decide.
        """
    let runbook = try #require(RunbookParser.parse(text, path: "runbooks/\(id).md").runbook)
    _ = try await RunbookStore(pool: pool).sync([("runbooks/\(id).md", text, runbook)], by: "test")
    return RunbookCandidate(runbook: runbook, version: 1)
}

/// A lead, and the weekly ml-platform rotation with that lead as its only member.
private func leadOnTheRotation(_ pool: PostgresPool, _ username: String) async throws -> User {
    let lead = try await UserStore(pool: pool).create(
        username: username,
        displayName: username,
        email: nil,
        role: .lead,
        passwordHash: nil,
        mustChangePassword: false,
        by: .system
    )
    let rotation = Rotation(
        name: "ml-platform",
        members: [username],
        timeZone: "UTC",
        shiftLength: ShiftLength(days: 7)!,
        handoff: HandoffTime(weekday: 1, hour: 9, minute: 0)!,
        startDate: LocalDate("2025-01-06")!
    )
    _ = try await RotationStore(pool: pool).save(rotation, create: true, by: .system)
    return lead
}

@Suite struct HandoffStoreTests {
    @Test func aRotationsWindowHoldsItsIncidentsGapsDecisionsAndNoise() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let ana = try await leadOnTheRotation(pool, "ana")
            let mine = try await ownedRunbook(pool, id: "drift", alertname: "FeatureDriftHigh", owners: "ml-platform")
            let theirs = try await ownedRunbook(pool, id: "gpu", alertname: "GPUMemoryHigh", owners: "infra")
            let am = try await makeIntegration(pool)
            let store = IngestStore(pool: pool)
            let runbooks = [mine, theirs]
            let a = try #require(try await deliver(store, am, [alert("a1", model: "ranker")], runbooks: runbooks).alerts.first?.incidentNumber)
            let b = try #require(
                try await deliver(store, am, [alert("b1", model: "fraud"), alert("b2", model: "fraud")], runbooks: runbooks).alerts.first?
                    .incidentNumber
            )
            _ = try await deliver(store, am, [alert("c1", name: "GPUMemoryHigh")], runbooks: runbooks)
            _ = try await deliver(store, am, [alert("d1", name: "DiskFull")], runbooks: runbooks)
            _ = try await deliver(store, am, [alert("b1", model: "fraud")], runbooks: runbooks)  // a resend: noise
            let incidents = IncidentStore(pool: pool)
            let person = IncidentActor.user(id: ana.id, username: "ana")
            _ = try await incidents.transition(number: a, .acknowledge, note: nil, by: person)
            _ = try await incidents.markStep(number: a, step: 1, outcome: .done, note: nil, userID: ana.id, username: "ana")
            _ = try await incidents.markStep(number: a, step: 2, outcome: .skipped, note: "no data for last week", userID: ana.id, username: "ana")
            _ = try await incidents.transition(number: b, .resolve, note: nil, by: person)
            let decided = try await DecisionStore(pool: pool).record(
                number: a,
                NewDecision(kind: .hold, target: DecisionTarget(model: "ranker"), rationale: "wait for the retrain"),
                by: (ana.id, "ana", .lead)
            )
            guard case .recorded = decided else {
                Issue.record("\(decided)")
                return
            }

            // ana's two webhooks each get the opening of incident a (one page) and, later, its
            // escalation (another page): two pages, however many messages.
            try await pool.execute(
                """
                INSERT INTO contact_methods (user_id, kind, label, address, secret, hint, verified_at)
                SELECT \(ana.id), 'webhook', l, 'https://example.invalid/' || l, 'whsec_x', l, now() FROM unnest(ARRAY['one', 'two']) l
                """
            )
            try await pool.execute(
                """
                INSERT INTO notifications (event, incident_id, incident_event_id, contact_method_id, recipient, kind, hint, detail)
                SELECT e.event, i.id, e.event_id, c.id, 'ana', 'webhook', c.hint, e.detail
                FROM incidents i, contact_methods c,
                     (VALUES ('opened', 1::bigint, '{}'::jsonb), ('escalation', NULL, '{"step": 1}'::jsonb)) e(event, event_id, detail)
                WHERE i.number = \(a) AND c.user_id = \(ana.id)
                """
            )
            try await pool.execute("UPDATE rotations SET night_page_limit = 0, page_limit = 1")

            let now = Date()
            let window = HandoffWindow(from: now.addingTimeInterval(-3600), to: now.addingTimeInterval(3600))
            let collected = try await HandoffStore(pool: pool).collect(rotation: "ml-platform", window: window)
            let log = try #require(collected)
            #expect(log.load.pages.map(\.user) == ["ana", "ana"] && log.load.pages.allSatisfy { $0.incident == a })
            #expect(log.load.nightPageLimit == 0 && log.load.pageLimit == 1)
            let ana2 = try #require(HandoffDocument.build(log).load.first { $0.user == "ana" })
            #expect(ana2.text.hasPrefix("2 pages") && ana2.crossed?.contains("2 pages (limit 1)") == true)
            #expect(log.incidents.map(\.number) == [a, b], "the infra rotation's incident and the unrouted one are not ml-platform's")
            let first = try #require(log.incidents.first)
            #expect(first.owner == "ana" && first.state == .acknowledged)
            #expect(
                first.gaps == [
                    HandoffIncident.Gap(step: 2, title: "Compare with last week", outcome: .skipped, note: "no data for last week", by: "ana")
                ]
            )
            #expect(first.nextStep == "Decide")
            #expect(log.incidents[1].resolvedAt != nil && log.incidents[1].nextStep == nil)
            #expect(log.decisions.map(\.status) == ["awaiting_execution"])
            #expect(log.decisions.first?.target == "ranker")
            #expect(log.noise.first { $0.alertname == "FeatureDriftHigh" }?.deliveries == 4)
            #expect(log.withoutRunbook == ["DiskFull": 1])
            let doc = HandoffDocument.build(log)
            #expect(doc.stillOpen.map(\.ref) == [IncidentRef.display(a)])
            #expect(doc.resolved.map(\.ref) == [IncidentRef.display(b)])
            #expect(doc.measures[1].current != "n/a")

            // A window before any of it is quiet: the open decision was made after it ended.
            let before = HandoffWindow(from: now.addingTimeInterval(-7 * 86400), to: now.addingTimeInterval(-6 * 86400))
            let quiet = try await HandoffStore(pool: pool).collect(rotation: "ml-platform", window: before)
            let empty = try #require(quiet)
            #expect(empty.incidents.isEmpty && empty.decisions.isEmpty)
            #expect(HandoffDocument.build(empty).quiet)
            let none = try await HandoffStore(pool: pool).collect(rotation: "nope", window: before)
            #expect(none == nil)

            // With no second connection free, the reads beside the incidents run on the one
            // connection, with the same result.
            let single = PostgresPool(conninfo: pool.conninfo, maxConnections: 1)
            defer { single.close() }
            let alone = try #require(try await HandoffStore(pool: single).collect(rotation: "ml-platform", window: window))
            #expect(alone.incidents == log.incidents)
            #expect(alone.decisions == log.decisions)
            #expect(alone.noise.sorted { $0.alertname < $1.alertname } == log.noise.sorted { $0.alertname < $1.alertname })
            #expect(alone.withoutRunbook == log.withoutRunbook && alone.actionItems == log.actionItems)
        }
    }

    /// Handoffs list every decision still awaiting execution or an outcome, however old it
    /// is, and no settled or superseded one outside its window. The database keeps the set
    /// of unsettled decisions itself (migration 0008), so this is checked with decisions
    /// written straight into the tables, as a year-old history would hold them.
    @Test func decisionsStillAwaitingAnOutcomeAreListedHoweverOld() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let lena = try await leadOnTheRotation(pool, "lena")
            let runbook = try await ownedRunbook(pool, id: "drift", alertname: "FeatureDriftHigh", owners: "ml-platform")
            let am = try await makeIntegration(pool)
            let report = try await deliver(IngestStore(pool: pool), am, [alert("a1", model: "ranker")], runbooks: [runbook])
            let number = try #require(report.alerts.first?.incidentNumber)
            func decide(_ rationale: String, daysAgo: Int, supersedes: Int64? = nil) async throws -> Int64 {
                try await scalar(
                    pool,
                    """
                    INSERT INTO decisions (incident_id, kind, target_model, rationale, decided_by, decided_by_role, decided_at, verification_window, supersedes)
                    SELECT id, 'rollback', 'ranker', \(rationale), \(lena.id), 'lead', now() - make_interval(days => \(daysAgo)), 1800, \(supersedes)
                    FROM incidents WHERE number = \(number) RETURNING id
                    """
                )
            }
            let forgotten = try await decide("never executed", daysAgo: 400)
            let settled = try await decide("worked", daysAgo: 390)
            try await pool.execute(
                """
                INSERT INTO decision_executions (decision_id, executed_by, executed_at) VALUES (\(settled), \(lena.id), now() - interval '389 days')
                """
            )
            try await pool.execute(
                """
                INSERT INTO decision_outcomes (decision_id, outcome, proposed, check_text, confirmed_by)
                VALUES (\(settled), 'effective', 'effective', 'all alerts cleared', \(lena.id))
                """
            )
            let replaced = try await decide("first thought", daysAgo: 380)
            let replacement = try await decide("second thought", daysAgo: 379, supersedes: replaced)

            let now = Date()
            let week = HandoffWindow(from: now.addingTimeInterval(-7 * 86400), to: now)
            let log = try #require(try await HandoffStore(pool: pool).collect(rotation: "ml-platform", window: week))
            #expect(log.decisions.map(\.id) == [forgotten, replacement])
            #expect(log.decisions.map(\.status) == ["awaiting_execution", "awaiting_execution"])
            #expect(HandoffDocument.build(log).awaitingOutcome.map(\.id) == [forgotten, replacement])

            // Settling the rest (an outcome for one, a newer decision for the other) takes
            // them off the next handoff.
            try await pool.execute(
                """
                INSERT INTO decision_executions (decision_id, executed_by, executed_at) VALUES (\(forgotten), \(lena.id), now() - interval '1 day')
                """
            )
            try await pool.execute(
                """
                INSERT INTO decision_outcomes (decision_id, outcome, proposed, check_text, confirmed_by, note)
                VALUES (\(forgotten), 'reverted', 'effective', 'checked late', \(lena.id), 'rolled back again')
                """
            )
            let latest = try await decide("third thought", daysAgo: 3, supersedes: replacement)
            let after = try #require(try await HandoffStore(pool: pool).collect(rotation: "ml-platform", window: week))
            #expect(after.decisions.map(\.id) == [latest])
            // A window holding the old decisions still shows each as it ended.
            let then = HandoffWindow(from: now.addingTimeInterval(-401 * 86400), to: now.addingTimeInterval(-370 * 86400))
            let old = try #require(try await HandoffStore(pool: pool).collect(rotation: "ml-platform", window: then))
            #expect(old.decisions.map(\.status) == ["reverted", "effective", "superseded", "superseded"])
        }
    }
}
