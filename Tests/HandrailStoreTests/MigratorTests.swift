import Foundation
import HandrailCore
import HandrailStore
import Postgres
import TestSupport
import Testing

@Suite struct MigratorTests {
    /// A migrations folder of the test's own, removed afterwards.
    @discardableResult
    func withMigrationFiles<T>(_ files: [String: String], _ body: (URL) async throws -> T) async throws -> T {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("migrations-" + UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for (name, sql) in files {
            try sql.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        return try await body(dir)
    }

    @Test func shippedMigrationsApplyToAnEmptyDatabaseAndRecordChecksums() async throws {
        try await TestDatabase.withEmpty { pool, _ in
            let migrator = try Migrator(directory: TestDatabase.migrationsDirectory)
            #expect(!migrator.migrations.isEmpty)
            let applied = try await migrator.migrate(pool)
            #expect(applied.map(\.name) == migrator.migrations.map(\.name))
            let rows = try await pool.query("SELECT name, checksum FROM schema_migrations ORDER BY version")
            #expect(try rows.map { try $0.decode("name", as: String.self) } == migrator.migrations.map(\.name))
            #expect(try rows.map { try $0.decode("checksum", as: String.self) } == migrator.migrations.map(\.checksum))
            #expect(try await migrator.status(pool).isCurrent)
            // Running again applies nothing.
            #expect(try await migrator.migrate(pool).isEmpty)
        }
    }

    @Test func twoServersMigratingAtOnceApplyEachFileOnce() async throws {
        try await TestDatabase.withEmpty { _, conninfo in
            let migrator = try Migrator(directory: TestDatabase.migrationsDirectory)
            // Separate pools stand for separate processes: separate sessions contend for the lock.
            let pools = (0..<4).map { _ in PostgresPool(conninfo: conninfo, maxConnections: 1) }
            defer { for item in pools { item.close() } }
            let appliedCounts = try await withThrowingTaskGroup(of: Int.self) { group in
                for pool in pools { group.addTask { try await migrator.migrate(pool).count } }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(appliedCounts.reduce(0, +) == migrator.migrations.count)
            #expect(appliedCounts.filter { $0 > 0 }.count == 1)
            let counts = try await pools[0].query("SELECT version, count(*) AS n FROM schema_migrations GROUP BY version")
            #expect(counts.count == migrator.migrations.count)
            #expect(try counts.allSatisfy { try $0.decode("n", as: Int.self) == 1 })
        }
    }

    @Test func editedAppliedMigrationStopsWithTheFileNamed() async throws {
        try await withMigrationFiles(["0001-create-things.sql": "CREATE TABLE things (id int);"]) { dir in
            try await TestDatabase.withEmpty { pool, _ in
                try await Migrator(directory: dir).migrate(pool)
                try "CREATE TABLE things (id bigint);".write(
                    to: dir.appendingPathComponent("0001-create-things.sql"),
                    atomically: true,
                    encoding: .utf8
                )
                let edited = try Migrator(directory: dir)
                do {
                    try await edited.migrate(pool)
                    Issue.record("an edited migration was accepted")
                } catch let error as MigrationError {
                    #expect(error.description.contains("0001-create-things.sql"))
                    #expect(error.description.contains("changed"))
                }
                await #expect(throws: MigrationError.self) { try await edited.check(pool) }
                #expect(try await edited.status(pool).modified.map(\.name) == ["0001-create-things.sql"])
            }
        }
    }

    @Test func failingMigrationRollsBackAndKeepsEarlierOnes() async throws {
        let files = [
            "0001-create-a.sql": "CREATE TABLE a (id int);",
            "0002-broken.sql": "CREATE TABLE b (id int); INSERT INTO nowhere VALUES (1);",
            "0003-create-c.sql": "CREATE TABLE c (id int);",
        ]
        try await withMigrationFiles(files) { dir in
            try await TestDatabase.withEmpty { pool, _ in
                do {
                    try await Migrator(directory: dir).migrate(pool)
                    Issue.record("a broken migration was applied")
                } catch let error as MigrationError {
                    #expect(error.description.contains("0002-broken.sql"))
                    #expect(error.description.contains("nowhere"))
                }
                let tables = try await pool.query(
                    "SELECT to_regclass('a') IS NOT NULL AS a, to_regclass('b') IS NOT NULL AS b, to_regclass('c') IS NOT NULL AS c"
                ).first
                #expect(try tables?.decode("a", as: Bool.self) == true)
                #expect(try tables?.decode("b", as: Bool.self) == false)
                #expect(try tables?.decode("c", as: Bool.self) == false)
                #expect(try await Migrator(directory: dir).status(pool).pending.map(\.name) == ["0002-broken.sql", "0003-create-c.sql"])
            }
        }
    }

    @Test func badlyNamedAndDuplicateFilesAreRejected() async throws {
        try await withMigrationFiles(["1-short.sql": "SELECT 1;"]) { dir in
            #expect(throws: MigrationError.self) { try Migrator(directory: dir) }
        }
        try await withMigrationFiles(["0001-Upper Case.sql": "SELECT 1;"]) { dir in
            #expect(throws: MigrationError.self) { try Migrator(directory: dir) }
        }
        try await withMigrationFiles(["0001-one.sql": "SELECT 1;", "0001-other.sql": "SELECT 1;"]) { dir in
            do {
                _ = try Migrator(directory: dir)
                Issue.record("duplicate numbers accepted")
            } catch let error as MigrationError {
                #expect(error.description.contains("0001-one.sql") && error.description.contains("0001-other.sql"))
            }
        }
        // Files that are not .sql are ignored (a README beside the migrations).
        try await withMigrationFiles(["0001-one.sql": "SELECT 1;", "README.md": "notes"]) { dir in
            let names = try Migrator(directory: dir).migrations.map(\.name)
            #expect(names == ["0001-one.sql"])
        }
    }

    @Test func databaseNewerThanTheFilesIsRefused() async throws {
        try await withMigrationFiles(["0001-a.sql": "CREATE TABLE a (id int);", "0002-b.sql": "CREATE TABLE b (id int);"]) { dir in
            try await TestDatabase.withEmpty { pool, _ in
                try await Migrator(directory: dir).migrate(pool)
                try FileManager.default.removeItem(at: dir.appendingPathComponent("0002-b.sql"))
                let older = try Migrator(directory: dir)
                #expect(try await older.status(pool).unknownVersions == [2])
                await #expect(throws: MigrationError.self) { try await older.migrate(pool) }
            }
        }
    }

    @Test func appendOnlyGuardRefusesUpdateAndDelete() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            try await pool.execute("CREATE TABLE log (id serial, what text)")
            try await pool.execute(
                "CREATE TRIGGER log_append_only BEFORE UPDATE OR DELETE ON log FOR EACH ROW EXECUTE FUNCTION handrail_refuse_change()"
            )
            try await pool.execute("INSERT INTO log (what) VALUES (\("first"))")
            for statement: PostgresQuery in ["UPDATE log SET what = 'rewritten'", "DELETE FROM log"] {
                do {
                    try await pool.execute(statement)
                    Issue.record("\(statement) succeeded")
                } catch let error as PostgresError {
                    #expect(error.sqlState == "42501")
                    #expect(error.message.contains("append-only"))
                }
            }
            #expect(try await pool.query("SELECT what FROM log").map { try $0.decode("what", as: String.self) } == ["first"])
        }
    }

    /// Migration 0008 on a database that already holds handoffs and decisions: stored
    /// documents get the API's key names and stay readable, the guard still allows the one
    /// acknowledgement, and decisions already awaiting an outcome are found.
    @Test func handoffReadsMigrationKeepsWhatWasStored() async throws {
        try await TestDatabase.withEmpty { pool, _ in
            let all = try Migrator(directory: TestDatabase.migrationsDirectory).migrations
            try await Migrator(migrations: all.filter { $0.version < 8 }).migrate(pool)
            try await pool.execute(
                """
                INSERT INTO users (username, display_name, role) VALUES ('lena', 'Lena', 'lead')
                """
            )
            try await pool.execute(
                """
                INSERT INTO rotations (name, time_zone, shift_days, handoff_weekday, handoff_minute, start_date)
                VALUES ('ml-platform', 'UTC', 7, 1, 540, '2026-01-05')
                """
            )
            try await pool.execute(
                """
                INSERT INTO handoffs (rotation_id, window_from, window_to, generated_by, content_hash, markdown, document)
                SELECT r.id, '2026-11-09', '2026-11-16', u.id, 'hash', '# Handoff',
                       '{"rotation": "ml-platform", "stillOpen": [{"ref": "INC-1", "nextStep": "Look"}], "gapFree": true, "timeZone": "UTC"}'
                FROM rotations r, users u
                """
            )
            try await pool.execute(
                """
                INSERT INTO incidents (number, title, severity, grouping_key, group_rule, labels, runbook_reason, auto_resolve, reopen_window)
                VALUES (1, 'drift', 'warning', 'k', 'alertname', '{}', 'none matched', false, 0)
                """
            )
            for rationale in ["open", "settled"] {
                try await pool.execute(
                    """
                    INSERT INTO decisions (incident_id, kind, target_model, rationale, decided_by, decided_by_role, verification_window)
                    SELECT i.id, 'rollback', 'ranker', \(rationale), u.id, 'lead', 1800 FROM incidents i, users u
                    """
                )
            }
            try await pool.execute(
                """
                INSERT INTO decision_executions (decision_id, executed_by, executed_at)
                SELECT d.id, d.decided_by, now() FROM decisions d WHERE rationale = 'settled'
                """
            )
            try await pool.execute(
                """
                INSERT INTO decision_outcomes (decision_id, outcome, proposed, check_text, confirmed_by)
                SELECT d.id, 'effective', 'effective', 'cleared', d.decided_by FROM decisions d WHERE rationale = 'settled'
                """
            )

            try await Migrator(migrations: all).migrate(pool)
            let stored = try #require(try await HandoffStore(pool: pool).find(rotation: "ml-platform", id: 1, content: .document))
            guard case .object(let object) = try #require(stored.document) else {
                Issue.record("the document is not an object")
                return
            }
            #expect(Set(object.keys) == ["rotation", "still_open", "gap_free", "time_zone"])
            guard case .array(let open) = try #require(object["still_open"]) else {
                Issue.record("still_open is not a list")
                return
            }
            #expect(open.first?["next_step"] == .string("Look"))
            let lena: Int = try await scalar(pool, "SELECT id FROM users WHERE username = 'lena'")
            #expect(try await HandoffStore(pool: pool).acknowledge(rotation: "ml-platform", id: 1, by: lena) != .notFound)
            await #expect(throws: PostgresError.self) { try await pool.execute("UPDATE handoffs SET markdown = 'changed'") }
            let unsettled: [String] = try await pool.query(
                """
                SELECT d.rationale FROM decisions_unsettled u JOIN decisions d ON d.id = u.decision_id
                """
            ).map { try $0.decode("rationale") }
            #expect(unsettled == ["open"])
        }
    }
}
