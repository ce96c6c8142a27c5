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
            // A runbook's list reads that runbook's incidents from the newest down.
            var runbook = resolved
            runbook.runbook = "feature-drift"
            let runbookPlan = try await Self.plan(pool, IncidentStore.listQuery(runbook))
            Self.expectNoFullScan(runbookPlan)
            #expect(runbookPlan.contains("incidents_by_runbook"), "\(runbookPlan)")
            // Every other filter reads from the newest down until the page is full.
            var others = IncidentFilter()
            others.severity = .critical
            others.model = "m7"
            others.text = "drift 1%"
            others.openedSince = Date().addingTimeInterval(-86_400)
            others.before = 20_000
            Self.expectNoFullScan(try await Self.plan(pool, IncidentStore.listQuery(others)))
            var model = IncidentFilter()
            model.model = "m7"
            model.limit = 3
            #expect(try await IncidentStore(pool: pool).list(model).map(\.number) == [29957, 29907, 29857])
        }
    }

    @Test func theNowPageShowsTheMostUrgentOpenIncidentsFirstAndCountsTheRest() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            try await Self.history(pool)
            // 30001-30003 are triggered warnings opened a minute apart; add a mix.
            try await pool.execute(
                """
                INSERT INTO incidents (number, grouping_key, group_rule, title, state, severity, labels, runbook_reason, auto_resolve,
                                       reopen_window, opened_at, acknowledged_at)
                VALUES (40001, 'a', 'alertname', 'acknowledged critical', 'acknowledged', 'critical', '{}', 'no runbook', false, 0,
                        now() - interval '3 days', now()),
                       (40002, 'b', 'alertname', 'triggered critical', 'triggered', 'critical', '{}', 'no runbook', false, 0,
                        now() - interval '1 minute', NULL),
                       (40003, 'c', 'alertname', 'reopened info', 'reopened', 'info', '{}', 'no runbook', false, 0,
                        now() - interval '2 days', NULL),
                       (40004, 'd', 'alertname', 'acknowledged info', 'acknowledged', 'info', '{}', 'no runbook', false, 0,
                        now() - interval '9 days', now())
                """
            )
            try await pool.execute("ANALYZE incidents")
            let plan = try await Self.plan(pool, IncidentStore.nowQuery(limit: 50, resolved: 10))
            Self.expectNoFullScan(plan)
            #expect(plan.contains("incidents_open_newest"), "\(plan)")
            let store = IncidentStore(pool: pool)
            // Unacknowledged first (the critical before the warnings, the info last), then
            // the acknowledged by severity; the oldest first within a severity.
            let all = try await store.now(limit: 50, resolved: 10)
            #expect(all.open.map(\.number) == [40002, 30001, 30002, 30003, 40003, 40001, 40004] && all.openCount == 7)
            let first = try await store.now(limit: 2, resolved: 3)
            #expect(first.open.map(\.number) == [40002, 30001] && first.openCount == 7)
            let resolved = try await pool.query("SELECT number FROM incidents WHERE state = 'resolved' ORDER BY number DESC LIMIT 3")
            #expect(try first.resolved.map(\.number) == resolved.map { try $0.decode("number", as: Int64.self) } && first.resolved.count == 3)
            let newest = try await pool.query("SELECT max(id) AS id FROM incident_events")[0].decode("id", as: Int64?.self)
            #expect(first.watermark == newest ?? 0)
            // A live page's refresh: the same order, summaries only for what changed or is
            // missing, read without the history either.
            let ids = try await pool.query("SELECT id, number FROM incidents WHERE number IN (30002, 40003)")
            let changed = try ids.filter { try $0.decode("number", as: Int64.self) == 40003 }.map { try $0.decode("id", as: Int64.self) }
            let refresh = IncidentStore.nowOrderQuery(limit: 50, resolved: 10)
            let refreshPlan = try await Self.plan(pool, refresh)
            Self.expectNoFullScan(refreshPlan)
            #expect(refreshPlan.contains("incidents_open_newest"), "\(refreshPlan)")
            let update = try await store.nowUpdate(limit: 50, resolved: 10, changed: changed, shown: [40002, 30001, 30003, 40003, 40001, 40004])
            #expect(update.open.map(\.number) == all.open.map(\.number) && update.openCount == 7)
            #expect(update.open.filter { $0.summary != nil }.map(\.number) == [30002, 40003], "the missing one and the changed one")
            #expect(update.resolved.count == 10 && update.resolved.allSatisfy { $0.summary != nil }, "the page showed none of them")
        }
    }

    @Test func postmortemReadsLookAtTheirWindowNotTheHistory() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            try await Self.history(pool)
            // The queue of postmortems to write: the newest resolved first.
            let queue = try await Self.plan(pool, PostmortemStore.neededQuery(days: 90, limit: 50))
            Self.expectNoFullScan(queue)
            #expect(queue.contains("incidents_resolved_newest"), "\(queue)")
            // Earlier incidents like this one: that runbook's (or alert name's) 30 days only.
            let related = try await Self.plan(pool, IncidentStore.relatedQuery(number: 20_000, days: 30, limit: 5))
            Self.expectNoFullScan(related)
            #expect(related.contains("incidents_without_runbook"), "\(related)")
            let found = try #require(try await IncidentStore(pool: pool).related(number: 20_000, days: 30, limit: 2))
            // One incident a minute before it: 30 days hold 43,200 minutes, the history 19,999.
            #expect(found.key == "Drift" && found.count == 19_999 && found.newest.map(\.number) == [19_999, 19_998])
            // A runbook's incidents: every third one follows model-drift; the count reads its
            // index alone, and the newest are that runbook's, not the incident itself.
            _ = try await syncedDrift(pool)
            try await pool.execute("UPDATE incidents SET runbook_id = 'model-drift', runbook_version = 1 WHERE number % 3 = 0")
            try await pool.execute("VACUUM ANALYZE incidents")
            let byRunbook = try await Self.plan(pool, IncidentStore.relatedQuery(number: 30_000, days: 30, limit: 5))
            Self.expectNoFullScan(byRunbook)
            #expect(byRunbook.contains("Index Only Scan using incidents_by_runbook_opened"), "\(byRunbook)")
            let same = try #require(try await IncidentStore(pool: pool).related(number: 30_000, days: 30, limit: 2))
            #expect(same.key == "model-drift" && same.count == 9_999 && same.newest.map(\.number) == [29_997, 29_994])
            let drift = try #require(try await IncidentStore(pool: pool).related(number: 20_000, days: 30, limit: 2))
            #expect(drift.key == "Drift" && drift.count == 13_333 && drift.newest.map(\.number) == [19_999, 19_997])
        }
    }

    /// The escalation worker settles a storm's first steps in batches: each batch finds its
    /// rows by primary key, whatever number of finished escalations the history holds (at
    /// 15,000, a scan of them all is what the planner estimates cheaper than 100 probes).
    @Test func settlingEscalationsReadsTheBatchNotEveryEscalationEverWritten() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            try await Self.history(pool)
            // Analyzed between storms, when every escalation had finished; then a storm begins.
            try await pool.execute(
                """
                INSERT INTO escalations (incident_id, kind, position, chain_started_at, due_at)
                SELECT id, 'step', 0, opened_at, opened_at FROM incidents WHERE state = 'resolved' AND number <= 15000
                """
            )
            try await pool.execute("UPDATE escalations SET state = 'done', finished_at = due_at, notified = '{ana}'")
            try await pool.execute("ANALYZE escalations")
            try await pool.execute(
                """
                INSERT INTO escalations (incident_id, kind, position, chain_started_at, due_at)
                SELECT id, 'step', 0, opened_at, opened_at FROM incidents WHERE state <> 'resolved'
                """
            )
            let due = try await NotificationStore(pool: pool).claimEscalations(limit: 10, lease: 60)
            #expect(due.count == 3)
            let plan = try await Self.plan(pool, NotificationStore.settleStatement(due.map { .fire($0, usernames: [], next: nil) }))
            #expect(!plan.contains("Seq Scan on escalations "), "a sequential scan of escalations:\n\(plan)")
            #expect(plan.contains("Index Scan using escalations_pkey"), "\(plan)")
        }
    }
}
