public import Foundation
import HandrailCore
public import HandrailStore
public import Postgres

/// Fresh databases for tests, cloned from a migrated template.
///
/// `script/test` starts a throwaway PostgreSQL and exports `HANDRAIL_TEST_DATABASE_URL`
/// (a libpq connection string with rights to create databases). Without it every database
/// test fails with a message saying so — database tests are never skipped silently.
public enum TestDatabase {
    /// The checkout's root, found from this file's path.
    public static let checkoutRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    public static let migrationsDirectory = checkoutRoot.appendingPathComponent("migrations")

    public struct NotConfigured: Error, CustomStringConvertible {
        public let description =
            "HANDRAIL_TEST_DATABASE_URL is not set: database tests need a PostgreSQL; run them with script/test, which starts one"
    }

    /// The administrative connection string (to the `postgres` database).
    public static func adminConninfo() throws -> String {
        guard let value = ProcessInfo.processInfo.environment["HANDRAIL_TEST_DATABASE_URL"], !value.isEmpty else {
            throw NotConfigured()
        }
        return value
    }

    /// `base` pointed at another database; works for URIs and for key=value strings.
    public static func conninfo(_ base: String, database: String) -> String {
        if base.hasPrefix("postgres://") || base.hasPrefix("postgresql://"), var components = URLComponents(string: base) {
            components.path = "/" + database
            return components.string ?? base
        }
        return base + " dbname='\(database)'"
    }

    /// Runs `body` with a pool on a new database that has every migration applied, and
    /// drops the database afterwards.
    public static func withMigrated<T>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresPool, String) async throws -> T
    ) async throws -> T {
        let template = try await Template.shared.name()
        return try await withDatabase(template: template, body)
    }

    /// Runs `body` with a pool on a new, empty database (no migrations), and drops it after.
    public static func withEmpty<T>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresPool, String) async throws -> T
    ) async throws -> T {
        try await withDatabase(template: "template0", body)
    }

    private static func withDatabase<T>(
        isolation: isolated (any Actor)? = #isolation,
        template: String,
        _ body: (PostgresPool, String) async throws -> T
    ) async throws -> T {
        let admin = try adminConninfo()
        let name = "handrail_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        try await withAdmin(admin) { try await $0.executeScript("CREATE DATABASE \(name) TEMPLATE \(template)") }
        let conninfo = conninfo(admin, database: name)
        let pool = PostgresPool(conninfo: conninfo, maxConnections: 4)
        do {
            let result = try await body(pool, conninfo)
            pool.close()
            try await drop(name, admin: admin)
            return result
        } catch {
            pool.close()
            try? await drop(name, admin: admin)
            throw error
        }
    }

    private static func drop(_ name: String, admin: String) async throws {
        try await withAdmin(admin) { try await $0.executeScript("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
    }

    static func withAdmin<T: Sendable>(_ admin: String, _ body: @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await PostgresConnection.connect(admin)
        defer { connection.close() }
        return try await body(connection)
    }

    /// The migrated template, built once per migration set (its name carries a hash of the
    /// migrations, so editing or adding one builds a new template) under an advisory lock,
    /// so parallel test processes build it once.
    actor Template {
        static let shared = Template()
        private var built: String?

        func name() async throws -> String {
            if let built { return built }
            let migrator = try Migrator(directory: TestDatabase.migrationsDirectory)
            let digest = Digest.sha256Hex(migrator.migrations.map { "\($0.name):\($0.checksum)" }.joined(separator: "\n"))
            let name = "handrail_template_" + digest.prefix(12)
            let admin = try TestDatabase.adminConninfo()
            let connection = try await PostgresConnection.connect(admin)
            defer { connection.close() }
            try await connection.execute("SELECT pg_advisory_lock(727272)")
            do {
                if try await connection.query("SELECT 1 FROM pg_database WHERE datname = \(name)").isEmpty {
                    let building = name + "_building"
                    try await connection.executeScript("DROP DATABASE IF EXISTS \(building) WITH (FORCE)")
                    try await connection.executeScript("CREATE DATABASE \(building) TEMPLATE template0")
                    let pool = PostgresPool(conninfo: TestDatabase.conninfo(admin, database: building), maxConnections: 1)
                    do {
                        try await migrator.migrate(pool)
                        pool.close()
                    } catch {
                        pool.close()
                        throw error
                    }
                    try await connection.executeScript("ALTER DATABASE \(building) RENAME TO \(name)")
                }
                try await connection.execute("SELECT pg_advisory_unlock(727272)")
            } catch {
                _ = try? await connection.execute("SELECT pg_advisory_unlock(727272)")
                throw error
            }
            built = name
            return name
        }
    }
}

/// A PostgreSQL cluster of a test's own, for tests that stop or restart the server —
/// which they must never do to the shared one. Uses the same launcher as `handrail serve`.
public struct PrivateCluster: Sendable {
    public let cluster: EmbeddedPostgres
    public let directory: URL
    /// Held for the test's life, as `handrail` holds one (the watchdog stops a cluster nobody holds).
    let lease: EmbeddedPostgres.Lease

    /// Creates and starts a cluster in a new temporary directory.
    public static func start() async throws -> (PrivateCluster, conninfo: String) {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("hr-" + UUID().uuidString.prefix(8))
        let cluster = try EmbeddedPostgres(dataDirectory: directory)
        let lease = try cluster.lease()
        let conninfo = try await cluster.start()
        return (PrivateCluster(cluster: cluster, directory: directory, lease: lease), conninfo)
    }

    /// Stops the cluster and removes its files.
    public func destroy() async {
        lease.release()
        try? await cluster.stop()
        try? FileManager.default.removeItem(at: directory)
    }
}
