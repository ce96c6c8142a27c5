import Foundation
import HandrailCore
import HandrailStore
import Postgres
import TestSupport
import Testing

/// The plans of the pages' main reads on a database with a history: they read what the page
/// shows, never the whole of `incidents`, `alerts` or the timeline.
@Suite struct IncidentPlanTests {
    /// 30,000 resolved incidents with an alert and a timeline entry each, and 3 open ones,
    /// written by SQL (the demo would take minutes), then the statistics autovacuum gathers.
    static func history(_ pool: PostgresPool) async throws {
        let integration = try await makeIntegration(pool, kind: .generic)
        try await pool.execute(
            """
            WITH opened AS (
                INSERT INTO incidents (grouping_key, group_rule, title, state, severity, labels, runbook_reason, auto_resolve,
                                       reopen_window, opened_at, resolved_at)
                SELECT 'k' || g, 'alertname', 'drift ' || g, CASE WHEN g > 30000 THEN 'triggered' ELSE 'resolved' END::incident_state,
                       'warning', jsonb_build_object('alertname', 'Drift', 'model', 'm' || (g % 50)), 'no runbook', false, 3600,
                       now() - make_interval(mins => 30003 - g), CASE WHEN g > 30000 THEN NULL ELSE now() - make_interval(mins => 30002 - g) END
                FROM generate_series(1, 30003) g
                RETURNING id, grouping_key, resolved_at
            ), alerted AS (
                INSERT INTO alerts (incident_id, integration_id, source, fingerprint, status, alertname, labels, annotations, severity,
                                    grouping_key, group_rule, cleared_at, cleared_by)
                SELECT id, \(integration.id), 'generic', 'f' || id, CASE WHEN resolved_at IS NULL THEN 'firing' ELSE 'resolved' END,
                       'Drift', '{}', '{}', 'warning', grouping_key, 'alertname', resolved_at,
                       CASE WHEN resolved_at IS NOT NULL THEN 'source' END FROM opened
            )
            INSERT INTO incident_events (incident_id, type, actor, data) SELECT id, 'opened', 'test', '{}' FROM opened
            """
        )
        try await pool.execute("ANALYZE")
    }

    /// The statement's generic plan (the one a prepared statement settles on), as text.
    static func plan(_ pool: PostgresPool, _ query: PostgresQuery) async throws -> String {
        try await pool.withTransaction { tx in
            try await tx.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            let rows = try await tx.query(PostgresQuery(sql: "EXPLAIN " + query.sql, binds: query.binds))
            return try rows.map { try $0.decode("QUERY PLAN", as: String.self) }.joined(separator: "\n")
        }
    }

    static func expectNoFullScan(_ plan: String, sourceLocation: SourceLocation = #_sourceLocation) {
        for table in ["incidents", "alerts", "incident_events"] {
            #expect(!plan.contains("Seq Scan on \(table) "), "a sequential scan of \(table):\n\(plan)", sourceLocation: sourceLocation)
        }
    }

    @Test func theNowPagesOpenIncidentsAreReadWithoutTheResolvedHistory() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            try await Self.history(pool)
            var open = IncidentFilter()
            open.states = [.triggered, .acknowledged, .mitigated, .reopened]
            open.limit = 200
            let plan = try await Self.plan(pool, IncidentStore.listQuery(open))
            Self.expectNoFullScan(plan)
            #expect(plan.contains("incidents_open_newest"), "\(plan)")
            #expect(try await IncidentStore(pool: pool).list(open).map(\.number) == [30003, 30002, 30001])
            var triggered = IncidentFilter()
            triggered.states = [.triggered]
            Self.expectNoFullScan(try await Self.plan(pool, IncidentStore.listQuery(triggered)))
            // The first page of everything, and of the resolved, reads from the newest down.
            Self.expectNoFullScan(try await Self.plan(pool, IncidentStore.listQuery(IncidentFilter())))
            var resolved = IncidentFilter()
            resolved.states = [.resolved]
            resolved.limit = 10
            Self.expectNoFullScan(try await Self.plan(pool, IncidentStore.listQuery(resolved)))
        }
    }
}
