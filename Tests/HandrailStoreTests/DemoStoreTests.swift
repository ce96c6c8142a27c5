import Foundation
import HandrailCore
import HandrailStore
import Postgres
import TestSupport
import Testing

@Suite struct DemoHistoryTests {
    @Test func aYearOfDemoHistoryIsReproducibleAndLoads() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let dir = TestDatabase.checkoutRoot.appendingPathComponent("runbooks")
            guard case .synced = try await RunbookDirectory.sync(dir, store: RunbookStore(pool: pool), by: "test") else {
                Issue.record("runbooks")
                return
            }
            let versions = try await RunbookStore(pool: pool).list().map { (id: $0.id, version: $0.version, runbook: $0.runbook) }.sorted {
                $0.id < $1.id
            }
            let rotation = Rotation(
                name: "ml-platform",
                members: ["ana", "ben"],
                timeZone: "Europe/Berlin",
                shiftLength: ShiftLength(days: 7)!,
                handoff: HandoffTime(weekday: 1, hour: 9, minute: 0)!,
                startDate: LocalDate("2025-01-06")!
            )
            let now = RFC3339.parse("2026-11-22T12:00:00Z")!
            let a = DemoHistory.incidents(
                count: 300,
                seed: 7,
                now: now,
                runbooks: versions,
                rotations: ["ml-platform": rotation],
                responders: ["ana", "ben"]
            )
            let b = DemoHistory.incidents(
                count: 300,
                seed: 7,
                now: now,
                runbooks: versions,
                rotations: ["ml-platform": rotation],
                responders: ["ana", "ben"]
            )
            #expect(a == b, "the same seed gives the same history")
            #expect(
                a
                    != DemoHistory.incidents(
                        count: 300,
                        seed: 8,
                        now: now,
                        runbooks: versions,
                        rotations: ["ml-platform": rotation],
                        responders: ["ana", "ben"]
                    )
            )
            #expect(a.allSatisfy { $0.openedAt <= now && $0.openedAt > now.addingTimeInterval(-366 * 86400) })
            // Owned by whoever was on call in the runbook's rotation when it opened.
            for i in a where i.rotation == "ml-platform" { #expect(i.owner == rotation.onCall(at: i.openedAt).user) }
            #expect(a.contains { $0.marks.contains { $0.outcome == "skipped" } })
            #expect(a.contains { $0.decision != nil })

            let store = DemoStore(pool: pool)
            let (users, key) = try await store.prepare(rotations: [rotation])
            try await store.write(Array(a.prefix(150)), users: users, integration: key)
            try await store.write(Array(a.dropFirst(150)), users: users, integration: key)
            let demoCount = try await store.demoIncidents()
            let foreignCount = try await store.foreignIncidents()
            #expect(demoCount == 300)
            #expect(foreignCount == 0)
            let events: Int = try await scalar(pool, "SELECT count(*) FROM incident_events")
            var expectedEvents = 0
            for i in a {
                var n = 1 + i.alerts.count + i.marks.count
                if i.owner != nil && i.rotation != nil { n += 1 }
                n += i.alerts.filter { $0.cleared != nil }.count
                if i.acknowledgedAt != nil { n += 1 }
                if let d = i.decision { n += d.executedAt == nil ? 1 : 2 }
                if i.resolvedAt != nil { n += 1 }
                expectedEvents += n
            }
            #expect(events == expectedEvents)
            // Step marks say their step as a number, with its title, as marking one does.
            let oddMarks: Int = try await scalar(
                pool,
                "SELECT count(*) FROM incident_events WHERE type = 'step_marked' AND (jsonb_typeof(data->'step') <> 'number' OR NOT data ? 'title')"
            )
            #expect(oddMarks == 0)
            let decisions: Int = try await scalar(pool, "SELECT count(*) FROM decisions")
            #expect(decisions == a.filter { $0.decision != nil }.count)

            // The history reads as handoffs.
            let window = try HandoffWindow.isoWeek("2026-W46", timeZone: "Europe/Berlin")
            let collected = try await HandoffStore(pool: pool).collect(rotation: "ml-platform", window: window)
            let log = try #require(collected)
            func touches(_ i: DemoIncident) -> Bool {
                guard i.rotation == "ml-platform" else { return false }
                if i.openedAt >= window.previous.from && i.openedAt < window.to { return true }
                if let r = i.resolvedAt, r >= window.previous.from && r < window.to { return true }
                guard i.openedAt < window.to else { return false }
                guard let r = i.resolvedAt else { return true }
                return r >= window.to
            }
            let expected = a.filter(touches)
            #expect(log.incidents.count == expected.count)
        }
    }
}
