import Foundation
import HandrailCore
import HandrailStore
import Postgres
import TestSupport
import Testing

/// A person to decide as.
private func person(_ pool: PostgresPool, _ username: String, _ role: Role) async throws -> DecisionStore.Person {
    let user = try await UserStore(pool: pool).create(
        username: username,
        displayName: username,
        email: nil,
        role: role,
        passwordHash: nil,
        mustChangePassword: false,
        by: .system
    )
    return (user.id, user.username, role)
}

@Suite struct DecisionStoreTests {
    /// An incident opened an hour ago with one alert, and a lead's rollback decided 50
    /// minutes ago: written straight into the tables, so the clock can be in the past.
    func pastDecision(_ pool: PostgresPool) async throws -> (number: Int64, decision: Int64, lead: DecisionStore.Person) {
        let runbooks = try await syncedDrift(pool)
        let am = try await makeIntegration(pool)
        let report = try await deliver(IngestStore(pool: pool), am, [alert("f1")], runbooks: runbooks)
        let number = try #require(report.alerts.first?.incidentNumber)
        let lead = try await person(pool, "lena", .lead)
        try await pool.execute("UPDATE alerts SET first_seen_at = now() - interval '1 hour'")
        let id: Int64 = try await scalar(
            pool,
            """
            INSERT INTO decisions (incident_id, kind, target_model, rationale, decided_by, decided_by_role, decided_at, verification_window)
            SELECT id, 'rollback', 'ranker', 'drift since v42', \(lead.id), 'lead', now() - interval '50 minutes', 1800 FROM incidents
            RETURNING id
            """
        )
        return (number, id, lead)
    }

    @Test func alertsStillFiringWhenTheWindowClosesMakeTheProposalNotEffective() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let (number, id, lead) = try await pastDecision(pool)
            let store = DecisionStore(pool: pool)
            let executedAt = Date().addingTimeInterval(-45 * 60)
            guard case .executed(let d) = try await store.execute(number: number, id: id, at: executedAt, note: nil, by: lead) else {
                Issue.record("not executed")
                return
            }
            #expect(d.proposal?.outcome == .notEffective)
            #expect(d.proposal?.check == "1 of 1 alert still firing 30 min after execution")
            #expect(d.status == "awaiting_outcome")
            // Agreeing needs no note; the check is stored with the outcome.
            guard case .recorded(let done) = try await store.recordOutcome(number: number, id: id, outcome: .notEffective, note: nil, by: lead) else {
                Issue.record("not recorded")
                return
            }
            #expect(done.outcome?.check == "1 of 1 alert still firing 30 min after execution")
            #expect(done.outcome?.overridden == false)
        }
    }

    @Test func anAlertClearedByItsMonitorInsideTheWindowMakesItEffective() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let (number, id, lead) = try await pastDecision(pool)
            try await pool.execute("UPDATE alerts SET status = 'resolved', cleared_at = now() - interval '30 minutes', cleared_by = 'source'")
            let store = DecisionStore(pool: pool)
            let result = try await store.execute(number: number, id: id, at: Date().addingTimeInterval(-40 * 60), note: nil, by: lead)
            guard case .executed(let d) = result else {
                Issue.record("\(result)")
                return
            }
            #expect(d.proposal?.outcome == .effective)
            #expect(d.proposal?.check == "all 1 alert cleared within 30 min of execution (the last 10 min after execution)")
        }
    }

    @Test func executionTimesOutsideDecisionAndNowAreRefused() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let (number, id, lead) = try await pastDecision(pool)
            let store = DecisionStore(pool: pool)
            let early = try await store.execute(number: number, id: id, at: Date().addingTimeInterval(-2 * 3600), note: nil, by: lead)
            guard case .badTime = early else {
                Issue.record("\(early)")
                return
            }
            let future = try await store.execute(number: number, id: id, at: Date().addingTimeInterval(3600), note: nil, by: lead)
            guard case .badTime = future else {
                Issue.record("\(future)")
                return
            }
            _ = try await store.execute(number: number, id: id, at: nil, note: nil, by: lead)
            let twice = try await store.execute(number: number, id: id, at: nil, note: nil, by: lead)
            guard case .alreadyExecuted(let by, _) = twice else {
                Issue.record("\(twice)")
                return
            }
            #expect(by == "lena")
        }
    }

    @Test func decisionsExecutionsAndOutcomesCannotBeChangedOrDeleted() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let (number, id, lead) = try await pastDecision(pool)
            let store = DecisionStore(pool: pool)
            _ = try await store.execute(number: number, id: id, at: nil, note: nil, by: lead)
            _ = try await store.recordOutcome(number: number, id: id, outcome: .reverted, note: "rolled back again by hand", by: lead)
            for statement: PostgresQuery in [
                "UPDATE decisions SET rationale = 'nothing happened'", "DELETE FROM decisions",
                "UPDATE decision_executions SET executed_at = now()", "DELETE FROM decision_executions",
                "UPDATE decision_outcomes SET outcome = 'effective'", "DELETE FROM decision_outcomes", "TRUNCATE decisions CASCADE",
            ] {
                await #expect(throws: PostgresError.self, "\(statement.sql)") { try await pool.execute(statement) }
            }
            let rationale: String = try await scalar(pool, "SELECT rationale FROM decisions")
            #expect(rationale == "drift since v42")
            // Overriding the proposal without a note is refused by the database too.
            await #expect(throws: PostgresError.self) {
                try await pool.execute(
                    "INSERT INTO decision_outcomes (decision_id, outcome, proposed, check_text, confirmed_by) VALUES (\(id), 'effective', 'not_effective', 'x', \(lead.id))"
                )
            }
        }
    }

    @Test func aDecisionSupersedesOnlyOneOfItsOwnIncident() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let (number, id, lead) = try await pastDecision(pool)
            let store = DecisionStore(pool: pool)
            let am = try await makeIntegration(pool, name: "am2")
            let other = try await deliver(IngestStore(pool: pool), am, [alert("g1", model: "fraud")], runbooks: try await syncedDrift(pool))
            let otherNumber = try #require(other.alerts.first?.incidentNumber)
            let foreign = try await store.record(
                number: otherNumber,
                NewDecision(kind: .hold, target: DecisionTarget(model: "fraud"), rationale: "x", supersedes: id),
                by: lead
            )
            #expect(foreign == .unknownSuperseded)
            let change = try await store.record(
                number: number,
                NewDecision(kind: .rollForward, target: DecisionTarget(model: "ranker", toVersion: "v43"), rationale: "v43 fixes it", supersedes: id),
                by: lead
            )
            guard case .recorded(let newer) = change else {
                Issue.record("\(change)")
                return
            }
            let listed = try #require(try await store.list(number: number))
            #expect(listed.map(\.status) == ["superseded", "awaiting_execution"])
            #expect(listed[0].supersededBy == newer.id)
            let third = try await store.record(
                number: number,
                NewDecision(kind: .hold, target: DecisionTarget(model: "ranker"), rationale: "y", supersedes: id),
                by: lead
            )
            #expect(third == .alreadySuperseded(by: newer.id))
        }
    }
}
