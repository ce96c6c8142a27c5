public import Foundation
import HandrailCore
public import Logging
public import Postgres

/// One SQL file in `migrations/`, named `NNNN-what-it-does.sql`.
public struct Migration: Sendable, Equatable {
    /// The number at the start of the file name; migrations apply in this order.
    public let version: Int
    /// The file name, e.g. `0001-append-only-guard.sql`.
    public let name: String
    public let sql: String
    /// SHA-256 of the file's bytes, hex. An applied migration whose file changes is refused.
    public let checksum: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
        self.checksum = Digest.sha256Hex(sql)
    }
}

/// What went wrong with the migrations; every message names the file and says what to do.
public struct MigrationError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// Where the database stands relative to the migration files.
public struct MigrationStatus: Sendable {
    public struct Entry: Sendable {
        public let migration: Migration
        /// When it was applied, `nil` when pending.
        public let appliedAt: Date?
        /// The file changed after it was applied.
        public let modified: Bool
    }
    public let entries: [Entry]
    /// Applied versions that no file matches (the database is newer than this Handrail).
    public let unknownVersions: [Int]

    public var pending: [Migration] { entries.filter { $0.appliedAt == nil }.map(\.migration) }
    public var modified: [Migration] { entries.filter(\.modified).map(\.migration) }
    /// Every file applied, unchanged, and nothing unknown.
    public var isCurrent: Bool { pending.isEmpty && modified.isEmpty && unknownVersions.isEmpty }
}

/// Applies `migrations/*.sql` in order, each in its own transaction, under a PostgreSQL
/// advisory lock so any number of servers starting together apply each file exactly once.
/// Applied files are recorded in `schema_migrations` with their checksum.
public struct Migrator: Sendable {
    /// The advisory-lock key all Handrail processes agree on ("HANDRAIL" in ASCII).
    static let lockKey: Int64 = 0x48_41_4E_44_52_41_49_4C

    public let migrations: [Migration]
    let logger: Logger

    /// Reads the migration files of a directory.
    /// - Throws: `MigrationError` for an unreadable directory, a badly named `.sql` file or
    ///   two files with the same number.
    public init(directory: URL, logger: Logger = Logger(label: "handrail.migrate")) throws {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw MigrationError(description: "cannot read the migrations directory \(directory.path): \(error.localizedDescription)")
        }
        var migrations: [Migration] = []
        var seen: [Int: String] = [:]
        for name in names.sorted() where name.hasSuffix(".sql") {
            guard let version = Self.version(of: name) else {
                throw MigrationError(
                    description:
                        "\(directory.path)/\(name): a migration file must be named NNNN-what-it-does.sql (four digits, lower-case words joined by dashes)"
                )
            }
            if let other = seen[version] {
                throw MigrationError(description: "\(directory.path)/\(name): migration number \(version) is also used by \(other)")
            }
            seen[version] = name
            let sql: String
            do {
                sql = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
            } catch {
                throw MigrationError(description: "\(directory.path)/\(name): cannot read it as UTF-8 text")
            }
            migrations.append(Migration(version: version, name: name, sql: sql))
        }
        self.init(migrations: migrations, logger: logger)
    }

    public init(migrations: [Migration], logger: Logger = Logger(label: "handrail.migrate")) {
        self.migrations = migrations.sorted { $0.version < $1.version }
        self.logger = logger
    }

    static func version(of name: String) -> Int? {
        let parts = name.dropLast(4).split(separator: "-", maxSplits: 1)
        guard parts.count == 2, parts[0].count == 4, parts[0].allSatisfy(\.isASCII), let v = Int(parts[0]),
            !parts[1].isEmpty,
            parts[1].allSatisfy({ ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" })
        else { return nil }
        return v
    }

    /// Applies every pending migration and returns the ones it applied (empty when another
    /// process applied them first).
    /// - Throws: `MigrationError` when an applied file was edited afterwards, when the
    ///   database holds migrations this Handrail does not have, or when a file fails
    ///   (that file is rolled back; the ones before it stay applied).
    @discardableResult
    public func migrate(_ pool: PostgresPool) async throws -> [Migration] {
        // A connection of its own, without the pool's statement timeout: a migration may
        // take long, and so may waiting for another replica's.
        let connection = try await PostgresConnection.connect(pool.conninfo)
        defer { connection.close() }
        return try await withAdvisoryLock(connection) {
            let status = try await self.status(on: connection)
            try Self.refuseDrift(status)
            var applied: [Migration] = []
            for migration in status.pending {
                do {
                    try await connection.withTransaction { tx in
                        try await tx.executeScript(migration.sql)
                        try await tx.execute(
                            "INSERT INTO schema_migrations (version, name, checksum) VALUES (\(migration.version), \(migration.name), \(migration.checksum))"
                        )
                    }
                } catch let error as PostgresError where error.kind == .server {
                    throw MigrationError(
                        description:
                            "migration \(migration.name) failed and was rolled back: \(error.message)\(error.detail.map { " (\($0))" } ?? "")"
                    )
                }
                logger.info("applied migration", metadata: ["migration": "\(migration.name)"])
                applied.append(migration)
            }
            return applied
        }
    }

    /// Compares the files with `schema_migrations` without changing anything.
    public func status(_ pool: PostgresPool) async throws -> MigrationStatus {
        try await pool.withConnection { try await status(on: $0) }
    }

    /// Throws the first problem that must stop a server: edited or unknown migrations.
    public func check(_ pool: PostgresPool) async throws {
        try Self.refuseDrift(try await status(pool))
    }

    private static func refuseDrift(_ status: MigrationStatus) throws {
        if let edited = status.modified.first {
            throw MigrationError(
                description:
                    "migration \(edited.name) was applied and its file has changed since (checksum differs); restore the file and put the change in a new migration"
            )
        }
        if let unknown = status.unknownVersions.first {
            throw MigrationError(
                description:
                    "the database has migration \(unknown) applied, which this Handrail does not have; it is older than the database it points at"
            )
        }
    }

    private func status(on connection: PostgresConnection) async throws -> MigrationStatus {
        let exists = try await connection.query("SELECT to_regclass('schema_migrations') IS NOT NULL AS present")
        var applied: [Int: (checksum: String, at: Date)] = [:]
        if try exists.first?.decode("present", as: Bool.self) == true {
            for row in try await connection.query("SELECT version, checksum, applied_at FROM schema_migrations") {
                applied[try row.decode("version")] = (try row.decode("checksum"), try row.decode("applied_at"))
            }
        }
        let entries = migrations.map { m in
            let a = applied[m.version]
            return MigrationStatus.Entry(migration: m, appliedAt: a?.at, modified: a.map { $0.checksum != m.checksum } ?? false)
        }
        let known = Set(migrations.map(\.version))
        return MigrationStatus(entries: entries, unknownVersions: applied.keys.filter { !known.contains($0) }.sorted())
    }

    private func withAdvisoryLock<T>(
        _ connection: PostgresConnection,
        _ body: () async throws -> T
    ) async throws -> T {
        try await connection.execute("SELECT pg_advisory_lock(\(Self.lockKey))")
        do {
            try await connection.executeScript(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version    integer PRIMARY KEY,
                    name       text NOT NULL,
                    checksum   text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """
            )
            let result = try await body()
            try await connection.execute("SELECT pg_advisory_unlock(\(Self.lockKey))")
            return result
        } catch {
            _ = try? await connection.execute("SELECT pg_advisory_unlock(\(Self.lockKey))")
            throw error
        }
    }
}
