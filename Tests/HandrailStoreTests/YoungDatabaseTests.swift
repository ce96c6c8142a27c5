import Foundation
import HandrailCore
import HandrailStore
import Postgres
import TestSupport
import Testing

/// A fresh database grows fast when its first deliveries are a storm: the plans its
/// connections made over empty tables must not turn into scans of every open row.
@Suite struct YoungDatabaseTests {
    /// Every scan of `incidents` or `alerts` in `plan` is an index probe: an index condition,
    /// and no list of values left to a filter (a scan of all of a partial index's rows).
    static func expectProbesOnly(_ plan: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let lines = plan.split(separator: "\n").map(String.init)
        for (n, line) in lines.enumerated() {
            guard line.contains(" on incidents") || line.contains(" on alerts") else { continue }
            #expect(!line.contains("Seq Scan"), "a sequential scan:\n\(plan)", sourceLocation: sourceLocation)
            guard line.contains("Index Scan") || line.contains("Index Only Scan") else { continue }
            let depth = line.prefix { $0 == " " }.count
            let details = lines[(n + 1)...].prefix { $0.prefix { $0 == " " }.count > depth && !$0.contains("->") }
            #expect(details.contains { $0.contains("Index Cond:") }, "an index scan with no condition:\n\(plan)", sourceLocation: sourceLocation)
            #expect(
                !details.contains { $0.contains("Filter:") && $0.contains("ANY") },
                "an index scan filtering a list:\n\(plan)",
                sourceLocation: sourceLocation
            )
        }
    }

    @Test func theLockingStatementProbesByIndexEvenWhenPlannedOverEmptyTables() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let plan = try await IncidentPlanTests.plan(
                pool,
                IngestStore.lockStatement(keys: ["k1", "k2"], integration: 1, fingerprints: ["f1", "f2"])
            )
            Self.expectProbesOnly(plan)
            #expect(plan.contains("LockRows"))
        }
    }

    @Test func aTableThatDoubledSinceItsLastAnalysisIsAnalyzedAndThenLeftAlone() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let statistics = TableStatistics(pool: pool)
            let integration = try await makeIntegration(pool)
            let rows = TableStatistics.minimumChanges * 2
            try await pool.execute(
                """
                INSERT INTO deliveries (integration_id, source, outcome, alert_count, truncated_alerts)
                SELECT \(integration.id), 'alertmanager', 'stored', 1, 0 FROM generate_series(1, \(rows))
                """
            )
            // The statistics of a write reach pg_stat_user_tables within a second or so.
            var counted = 0
            for _ in 0..<100 where counted < rows {
                try await Task.sleep(for: .milliseconds(100))
                counted =
                    try await pool.query("SELECT n_live_tup::int AS n FROM pg_stat_user_tables WHERE relname = 'deliveries'").first?.decode("n")
                    ?? 0
            }
            #expect(counted == rows)
            #expect(try await statistics.analyzeGrownTables().contains("deliveries"))
            let reltuples = try await pool.query("SELECT reltuples::int AS n FROM pg_class WHERE relname = 'deliveries'").first?.decode(
                "n",
                as: Int.self
            )
            #expect(reltuples == rows)
            // Analyzed at its size: nothing to do until it doubles again.
            #expect(try await !statistics.analyzeGrownTables().contains("deliveries"))
        }
    }
}
