import Foundation
import HandrailCore
import Postgres
import TestSupport
import Testing

@testable import HandrailServer
@testable import HandrailStore

/// Documents over `handrail demo`'s history: rows Handrail wrote itself never make a
/// document fail, and its timelines read as the live ones do.
@Suite struct DemoDocumentsTests {
    @Test func everyDemoPostmortemOpensAndItsTimelineSaysWhichStep() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let dir = TestDatabase.checkoutRoot.appendingPathComponent("runbooks")
            guard case .synced = try await RunbookDirectory.sync(dir, store: RunbookStore(pool: pool), by: "test") else {
                Issue.record("runbooks")
                return
            }
            let versions = try await RunbookStore(pool: pool).list().map { (id: $0.id, version: $0.version, runbook: $0.runbook) }
            let rotation = Rotation(
                name: "ml-platform",
                members: ["ana", "ben"],
                timeZone: "Europe/Berlin",
                shiftLength: ShiftLength(days: 7)!,
                handoff: HandoffTime(weekday: 1, hour: 9, minute: 0)!,
                startDate: LocalDate("2025-01-06")!
            )
            let history = DemoHistory.incidents(
                count: 400,
                seed: 11,
                now: Date(),
                runbooks: versions,
                rotations: ["ml-platform": rotation],
                responders: ["ana", "ben"]
            )
            let demo = DemoStore(pool: pool)
            let (users, key) = try await demo.prepare(rotations: [rotation])
            try await demo.write(history, users: users, integration: key)

            // Every stored postmortem opens (the demo stores no facts of its own) and renders.
            let numbers: [Int64] = try await pool.query(
                "SELECT i.number FROM postmortems p JOIN incidents i ON i.id = p.incident_id ORDER BY i.number"
            ).map { try $0.decode("number") }
            #expect(!numbers.isEmpty)
            let generator = PostmortemGenerator(pool: pool)
            let renderer = DocumentRenderer(directory: TestDatabase.checkoutRoot.appendingPathComponent("templates"))
            for number in numbers {
                let stored = try #require(try await PostmortemStore(pool: pool).find(number: number))
                let document = try await generator.view(stored, number: number)
                #expect(document.ref == IncidentRef.display(number))
                #expect(try renderer.postmortem(document).contains("A feature pipeline change shipped without a schema check."))
            }

            // A marked step reads as "step 2 (its title) done by …" on the incident page.
            let marked: Int64 = try #require(
                try await pool.query(
                    "SELECT i.number FROM incidents i JOIN incident_events e ON e.incident_id = i.id WHERE e.type = 'step_marked' ORDER BY i.id LIMIT 1"
                ).first?.decode("number")
            )
            let detail = try #require(try await IncidentStore(pool: pool).detail(number: marked))
            let lines = detail.timeline.filter { $0.type == .stepMarked }.map(PostmortemDocument.describe)
            #expect(!lines.isEmpty)
            for line in lines {
                #expect(line.range(of: #"^step \d+ \(.+\) (done|skipped|failed|undone) by "#, options: .regularExpression) != nil, "\(line)")
            }
        }
    }

    @Test func olderTimelineRowsReadWithoutQuestionMarks() {
        // As the demo wrote them before: the step as text, no title, decisions without their id.
        let step = IncidentEvent(
            id: 1,
            at: Date(),
            type: .stepMarked,
            actor: "rita",
            actorKind: .user,
            data: .object(["step": .string("1"), "outcome": .string("done")])
        )
        #expect(PostmortemDocument.describe(step) == "step 1 done by rita")
        let decision = IncidentEvent(
            id: 2,
            at: Date(),
            type: .decisionRecorded,
            actor: "lena",
            actorKind: .user,
            data: .object(["kind": .string("rollback")])
        )
        #expect(PostmortemDocument.describe(decision) == "decision: rollback recorded by lena")
    }
}
