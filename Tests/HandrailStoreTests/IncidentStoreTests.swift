import Foundation
import HandrailCore
import HandrailStore
import Postgres
import TestSupport
import Testing

@Suite struct IncidentStoreTests {
    func responder(_ pool: PostgresPool) async throws -> User {
        try await UserStore(pool: pool).create(
            username: "ada",
            displayName: "Ada",
            email: nil,
            role: .responder,
            passwordHash: nil,
            mustChangePassword: false,
            by: .system
        )
    }

    @Test func peopleMoveAnIncidentThroughItsLifeAndEveryStepIsLogged() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let runbooks = try await syncedDrift(pool)
            let am = try await makeIntegration(pool)
            let opened = try await deliver(IngestStore(pool: pool), am, [alert("f1", value: 0.15)], runbooks: runbooks)
            let number = try #require(opened.alerts.first?.incidentNumber)
            let ada = try await responder(pool)
            let store = IncidentStore(pool: pool)
            let actor = IncidentActor.user(id: ada.id, username: ada.username)
            #expect(try await store.transition(number: number, .acknowledge, note: nil, by: actor) == .changed)
            #expect(try await store.transition(number: number, .acknowledge, note: nil, by: actor) == .refused(current: .acknowledged))
            #expect(try await store.markStep(number: number, step: 1, outcome: .done, note: nil, userID: ada.id, username: "ada") == .marked)
            #expect(
                try await store.markStep(number: number, step: 2, outcome: .skipped, note: "no baseline", userID: ada.id, username: "ada") == .marked
            )
            #expect(
                try await store.markStep(number: number, step: 3, outcome: .done, note: nil, userID: ada.id, username: "ada") == .noSuchStep(count: 2)
            )
            #expect(try await store.markStep(number: number, step: 1, outcome: .undone, note: nil, userID: ada.id, username: "ada") == .marked)
            #expect(try await store.markStep(number: number, step: 1, outcome: .undone, note: nil, userID: ada.id, username: "ada") == .nothingToUndo)
            #expect(try await store.addNote(number: number, text: "looking at the pipeline", by: actor))
            #expect(try await store.transition(number: number, .resolve, note: "fixed upstream", by: actor) == .changed)
            #expect(try await store.transition(number: 999, .resolve, note: nil, by: actor) == .notFound)

            let detail = try #require(try await store.detail(number: number))
            #expect(detail.incident.state == .resolved)
            #expect(detail.incident.severity == .warning)
            #expect(detail.runbook?.id == "model-drift")
            #expect(detail.steps.map(\.outcome) == [nil, .skipped])
            #expect(detail.steps[1].note == "no baseline")
            #expect(detail.steps[1].by == "ada")
            #expect(detail.alerts.first?.clearedBy == "incident")
            #expect(detail.incident.openAlerts == 0)
            #expect(
                detail.timeline.map(\.type.rawValue) == [
                    "opened", "alert_added", "acknowledged", "step_marked", "step_marked", "step_marked", "note", "resolved",
                ]
            )
            #expect(detail.timeline.last?.actor == "ada")
            #expect(detail.timeline.last?.data["note"] == .string("fixed upstream"))
            #expect(detail.timeline.first?.actorKind == .integration)
        }
    }

    @Test func listsFilterAndPageNewestFirst() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let runbooks = try await syncedDrift(pool)
            let am = try await makeIntegration(pool)
            let ingest = IngestStore(pool: pool)
            for model in ["a", "b", "c"] { _ = try await deliver(ingest, am, [alert("f-\(model)", model: model)], runbooks: runbooks) }
            _ = try await deliver(ingest, am, [alert("other", name: "DiskFull", model: "a")], runbooks: runbooks)
            let store = IncidentStore(pool: pool)
            var all = IncidentFilter()
            all.limit = 2
            let first = try await store.list(all)
            #expect(first.map(\.title) == ["drift", "drift"])
            #expect(first.map(\.number) == first.map(\.number).sorted(by: >))
            all.before = first.last?.number
            let second = try await store.list(all)
            #expect(second.count == 2)
            #expect(Set(first.map(\.number)).isDisjoint(with: second.map(\.number)))
            var byModel = IncidentFilter()
            byModel.model = "a"
            #expect(try await store.list(byModel).count == 2)
            byModel.runbook = "model-drift"
            let drift = try await store.list(byModel)
            #expect(drift.count == 1)
            #expect(drift.first?.labels["model"] == "a")
            var resolved = IncidentFilter()
            resolved.states = [.resolved]
            #expect(try await store.list(resolved).isEmpty)
        }
    }

    @Test func pagerDutyAcknowledgeAndChangeEventsTouchOnlyOpenIncidents() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let pd = try await makeIntegration(pool, name: "pd", kind: .pagerduty)
            let ingest = IngestStore(pool: pool)
            let opened = try await deliver(ingest, pd, [alert("dk-1")], runbooks: [])
            let store = IncidentStore(pool: pool)
            let number = try await store.acknowledgeAlert(integration: pd, dedupKey: "dk-1", requestID: nil)
            #expect(number == opened.alerts.first?.incidentNumber)
            #expect(try await store.acknowledgeAlert(integration: pd, dedupKey: "dk-1", requestID: nil) == nil)
            #expect(try await store.acknowledgeAlert(integration: pd, dedupKey: "nope", requestID: nil) == nil)
            let touched = try await store.recordChange(
                integration: pd,
                summary: "deploy v2",
                data: .object(["summary": .string("deploy v2")]),
                requestID: nil
            )
            #expect(touched == [number!])
            _ = try await deliver(ingest, pd, [alert("dk-1", .resolved)], runbooks: [])
            let none = try await store.recordChange(integration: pd, summary: "deploy v3", data: .object([:]), requestID: nil)
            #expect(none.isEmpty)
            let detail = try #require(try await store.detail(number: number!))
            #expect(detail.timeline.map(\.type.rawValue) == ["opened", "alert_added", "acknowledged", "change", "alert_cleared", "resolved"])
        }
    }
}
