import Foundation
import HandrailCore
import HandrailStore
import Postgres
import TestSupport
import Testing

func runbookFile(_ id: String, alert: String, step: String = "Look at the dashboard.") -> String {
    "---\nid: \(id)\ntitle: \(id.capitalized)\nmatch: { alertname: \(alert) }\nowners: ml-platform\n---\n# \(id)\n\n## Steps\n1. \(step)\n2. Decide.\n"
}

/// A runbooks folder of the test's own.
func withRunbooks<T>(_ files: [String: String], _ body: (URL) async throws -> T) async throws -> T {
    let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("runbooks-" + UUID().uuidString.prefix(8))
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    for (name, text) in files { try text.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8) }
    return try await body(dir)
}

@Suite struct RunbookSyncTests {
    @Test func changingOneOfThreeFilesCreatesExactlyOneVersion() async throws {
        let files = ["a.md": runbookFile("alpha", alert: "A"), "b.md": runbookFile("beta", alert: "B"), "c.md": runbookFile("gamma", alert: "C")]
        try await withRunbooks(files) { dir in
            try await TestDatabase.withMigrated { pool, _ in
                let store = RunbookStore(pool: pool)
                guard case .synced(let first) = try await RunbookDirectory.sync(dir, store: store, by: "test") else {
                    Issue.record("refused")
                    return
                }
                #expect(first.created == ["alpha": 1, "beta": 1, "gamma": 1])
                // Nothing changed: nothing created.
                guard case .synced(let again) = try await RunbookDirectory.sync(dir, store: store, by: "test") else {
                    Issue.record("refused")
                    return
                }
                #expect(again.created.isEmpty)
                #expect(again.unchanged == ["alpha", "beta", "gamma"])
                try runbookFile("beta", alert: "B", step: "Look at the NEW dashboard.").write(
                    to: dir.appendingPathComponent("b.md"),
                    atomically: true,
                    encoding: .utf8
                )
                guard case .synced(let changed) = try await RunbookDirectory.sync(dir, store: store, by: "ada") else {
                    Issue.record("refused")
                    return
                }
                #expect(changed.created == ["beta": 2])
                let count = try await pool.query("SELECT count(*) AS n FROM runbook_versions").first?.decode("n", as: Int.self)
                #expect(count == 4)
                let beta = try #require(try await store.current(id: "beta"))
                #expect(beta.version == 2)
                #expect(beta.syncedBy == "ada")
                #expect(beta.runbook.steps[0].markdown == "Look at the NEW dashboard.")
                #expect(beta.sourcePath == "\(dir.lastPathComponent)/b.md")
                #expect(try await store.versions(id: "beta").map(\.version) == [2, 1])
            }
        }
    }

    @Test func pinnedVersionKeepsItsOldTextAfterTheFileChanged() async throws {
        try await withRunbooks(["a.md": runbookFile("alpha", alert: "A", step: "Old advice.")]) { dir in
            try await TestDatabase.withMigrated { pool, _ in
                let store = RunbookStore(pool: pool)
                _ = try await RunbookDirectory.sync(dir, store: store, by: "test")
                try runbookFile("alpha", alert: "A", step: "New advice.").write(
                    to: dir.appendingPathComponent("a.md"),
                    atomically: true,
                    encoding: .utf8
                )
                _ = try await RunbookDirectory.sync(dir, store: store, by: "test")
                let pinned = try #require(try await store.version(id: "alpha", 1))
                #expect(pinned.source.contains("Old advice."))
                #expect(pinned.runbook.steps[0].markdown == "Old advice.")
                #expect(pinned.currentVersion == 2)
                #expect(try await store.current(id: "alpha")?.source.contains("New advice.") == true)
                #expect(try await store.version(id: "alpha", 3) == nil)
                // The database refuses to rewrite a version, whoever asks.
                await #expect(throws: PostgresError.self) {
                    try await pool.execute("UPDATE runbook_versions SET source = 'rewritten' WHERE runbook_id = 'alpha'")
                }
            }
        }
    }

    @Test func aFileRemovedFromTheDirectoryRetiresItsRunbookWhichStaysReadable() async throws {
        try await withRunbooks(["a.md": runbookFile("alpha", alert: "A"), "b.md": runbookFile("beta", alert: "B")]) { dir in
            try await TestDatabase.withMigrated { pool, _ in
                let store = RunbookStore(pool: pool)
                _ = try await RunbookDirectory.sync(dir, store: store, by: "test")
                let original = try String(contentsOf: dir.appendingPathComponent("b.md"), encoding: .utf8)
                try FileManager.default.removeItem(at: dir.appendingPathComponent("b.md"))
                guard case .synced(let report) = try await RunbookDirectory.sync(dir, store: store, by: "test") else {
                    Issue.record("refused")
                    return
                }
                #expect(report.retired == ["beta"])
                let retired = try #require(try await store.current(id: "beta"))
                #expect(retired.retiredAt != nil)
                #expect(retired.source == original)
                #expect(try await store.list().map(\.id) == ["alpha"])
                #expect(try await store.list(includeRetired: true).map(\.id) == ["alpha", "beta"])
                // The file comes back unchanged: restored, no new version.
                try original.write(to: dir.appendingPathComponent("b.md"), atomically: true, encoding: .utf8)
                guard case .synced(let back) = try await RunbookDirectory.sync(dir, store: store, by: "test") else {
                    Issue.record("refused")
                    return
                }
                #expect(back.restored == ["beta"])
                #expect(back.created.isEmpty)
                #expect(try await store.current(id: "beta")?.retiredAt == nil)
            }
        }
    }

    @Test func aDirectoryWithLintErrorsSyncsNothingAndSaysWhy() async throws {
        try await withRunbooks(["a.md": runbookFile("alpha", alert: "A")]) { dir in
            try await TestDatabase.withMigrated { pool, _ in
                let store = RunbookStore(pool: pool)
                _ = try await RunbookDirectory.sync(dir, store: store, by: "test")
                // One good change and one broken file: neither lands.
                try runbookFile("alpha", alert: "A", step: "Changed.").write(
                    to: dir.appendingPathComponent("a.md"),
                    atomically: true,
                    encoding: .utf8
                )
                try "---\nid: broken\n---\n".write(to: dir.appendingPathComponent("broken.md"), atomically: true, encoding: .utf8)
                guard case .refused(let problems) = try await RunbookDirectory.sync(dir, store: store, by: "test") else {
                    Issue.record("a directory with lint errors was synced")
                    return
                }
                #expect(problems.contains { $0.path.hasSuffix("broken.md") && $0.message.contains("missing title") })
                #expect(try await store.current(id: "alpha")?.version == 1)
                #expect(try await store.current(id: "broken") == nil)
            }
        }
    }

    @Test func serversSyncingTogetherCreateEachVersionOnce() async throws {
        try await withRunbooks(["a.md": runbookFile("alpha", alert: "A"), "b.md": runbookFile("beta", alert: "B")]) { dir in
            try await TestDatabase.withMigrated { _, conninfo in
                let pools = (0..<4).map { _ in PostgresPool(conninfo: conninfo, maxConnections: 1) }
                defer { for item in pools { item.close() } }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for p in pools { group.addTask { _ = try await RunbookDirectory.sync(dir, store: RunbookStore(pool: p), by: "test") } }
                    try await group.waitForAll()
                }
                let count = try await pools[0].query("SELECT count(*) AS n FROM runbook_versions").first?.decode("n", as: Int.self)
                #expect(count == 2)
            }
        }
    }

    @Test func shippedRunbooksSyncAndMatchFromTheDatabase() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let store = RunbookStore(pool: pool)
            guard
                case .synced(let report) = try await RunbookDirectory.sync(
                    TestDatabase.checkoutRoot.appendingPathComponent("runbooks"),
                    store: store,
                    by: "test"
                )
            else {
                Issue.record("the shipped runbooks were refused")
                return
            }
            #expect(report.created.count >= 8)
            let runbooks = try await store.list().map(\.runbook)
            #expect(runbooks.bestMatch(for: ["alertname": "FeaturesStale", "feature_view": "user_profile"])?.runbook.id == "stale-features")
        }
    }
}
