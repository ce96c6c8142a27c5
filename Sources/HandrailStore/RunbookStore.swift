public import Foundation
public import HandrailCore
public import Postgres
import Synchronization

/// One synced version of a runbook, as stored.
public struct RunbookVersion: Sendable, Equatable {
    public let id: String
    public let version: Int
    public let contentHash: String
    public let sourcePath: String
    /// The whole file as it was synced.
    public let source: String
    public let runbook: Runbook
    public let syncedAt: Date
    public let syncedBy: String
    /// The runbook's current version number (this one, or a later one).
    public let currentVersion: Int
    /// Set when the file has left the directory; the runbook stays readable.
    public let retiredAt: Date?
}

/// What a sync did.
public struct RunbookSyncReport: Sendable, Equatable {
    /// New versions: (runbook id, version number).
    public var created: [String: Int]
    public var unchanged: [String]
    public var retired: [String]
    /// Runbooks whose file came back after being retired.
    public var restored: [String]
}

/// All SQL about runbooks and their versions.
public struct RunbookStore: Sendable {
    let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    /// runbook.sync — makes the stored runbooks what the directory holds, in one transaction:
    /// a changed file becomes a new version, an unchanged one creates nothing, a file gone
    /// from the directory marks its runbook retired (never deleted). Serialised by an
    /// advisory lock, so servers starting together sync once.
    /// - Parameter files: every runbook of the directory, already linted clean.
    public func sync(_ files: [(path: String, source: String, runbook: Runbook)], by actor: String) async throws -> RunbookSyncReport {
        let ids = files.map(\.runbook.id)
        let paths = files.map(\.path)
        let hashes = files.map { Digest.sha256Hex($0.source) }
        let sources = files.map(\.source)
        var definitions: [String] = []
        for file in files { definitions.append(try PostgresJSON(encoding: file.runbook).text) }
        return try await pool.withTransaction { tx in
            try await tx.execute("SELECT pg_advisory_xact_lock(\(Int64(0x4841_4E44_0002)))")
            let rows = try await tx.query(
                """
                WITH input AS (
                    SELECT * FROM unnest(\(ids)::text[], \(paths)::text[], \(hashes)::text[], \(sources)::text[], \(definitions)::text[])
                        AS i(id, path, hash, source, definition)
                ), current AS (
                    SELECT r.id, v.content_hash FROM runbooks r
                    JOIN runbook_versions v ON v.runbook_id = r.id AND v.version = r.current_version
                ), changed AS (
                    SELECT i.* FROM input i LEFT JOIN current c ON c.id = i.id
                    WHERE c.content_hash IS DISTINCT FROM i.hash
                ), upserted AS (
                    INSERT INTO runbooks AS r (id, current_version, source_path)
                    SELECT id, 1, path FROM changed
                    ON CONFLICT (id) DO UPDATE
                        SET current_version = r.current_version + 1, source_path = excluded.source_path, retired_at = NULL, updated_at = now()
                    RETURNING id, current_version
                ), versions AS (
                    INSERT INTO runbook_versions (runbook_id, version, content_hash, source_path, source, definition, synced_by)
                    SELECT c.id, u.current_version, c.hash, c.path, c.source, c.definition::jsonb, \(actor)
                    FROM changed c JOIN upserted u USING (id)
                    RETURNING runbook_id, version
                ), retired AS (
                    UPDATE runbooks SET retired_at = now(), updated_at = now()
                    WHERE retired_at IS NULL AND id NOT IN (SELECT id FROM input)
                    RETURNING id
                ), restored AS (
                    UPDATE runbooks SET retired_at = NULL, source_path = i.path, updated_at = now()
                    FROM input i
                    WHERE runbooks.id = i.id AND runbooks.retired_at IS NOT NULL AND i.id NOT IN (SELECT id FROM changed)
                    RETURNING runbooks.id
                )
                SELECT 'created' AS what, runbook_id AS id, version FROM versions
                UNION ALL SELECT 'retired', id, NULL FROM retired
                UNION ALL SELECT 'restored', id, NULL FROM restored
                """
            )
            var report = RunbookSyncReport(created: [:], unchanged: [], retired: [], restored: [])
            for row in rows {
                let id: String = try row.decode("id")
                switch try row.decode("what", as: String.self) {
                case "created": report.created[id] = try row.decode("version", as: Int.self)
                case "retired": report.retired.append(id)
                default: report.restored.append(id)
                }
            }
            report.unchanged = ids.filter { report.created[$0] == nil }.sorted()
            report.retired.sort()
            report.restored.sort()
            return report
        }
    }

    static let columns: StaticString = """
        v.runbook_id, v.version, v.content_hash, v.source_path, v.source, v.definition, v.synced_at, v.synced_by,
        r.current_version, r.retired_at
        """

    /// runbook.current — the current version of a runbook, retired or not.
    public func current(id: String) async throws -> RunbookVersion? {
        try await pool.query(
            """
            SELECT \(sql: Self.columns) FROM runbooks r JOIN runbook_versions v ON v.runbook_id = r.id AND v.version = r.current_version
            WHERE r.id = \(id)
            """
        ).first.map(RunbookVersion.init(row:))
    }

    /// runbook.version — one version exactly as it was synced (what an incident pinned).
    public func version(id: String, _ number: Int) async throws -> RunbookVersion? {
        // Versions are PostgreSQL integers: a number past them names no version.
        guard (1...Int(Int32.max)).contains(number) else { return nil }
        return try await pool.query(
            """
            SELECT \(sql: Self.columns) FROM runbooks r JOIN runbook_versions v ON v.runbook_id = r.id
            WHERE r.id = \(id) AND v.version = \(number)
            """
        ).first.map(RunbookVersion.init(row:))
    }

    /// runbook.versions — every version of a runbook, newest first.
    public func versions(id: String) async throws -> [RunbookVersion] {
        try await pool.query(
            """
            SELECT \(sql: Self.columns) FROM runbooks r JOIN runbook_versions v ON v.runbook_id = r.id
            WHERE r.id = \(id) ORDER BY v.version DESC
            """
        ).map(RunbookVersion.init(row:))
    }

    /// runbook.list — the current version of every runbook, by id (retired ones on request).
    public func list(includeRetired: Bool = false) async throws -> [RunbookVersion] {
        try await pool.query(
            """
            SELECT \(sql: Self.columns) FROM runbooks r JOIN runbook_versions v ON v.runbook_id = r.id AND v.version = r.current_version
            WHERE \(includeRetired) OR r.retired_at IS NULL
            ORDER BY r.id
            """
        ).map(RunbookVersion.init(row:))
    }
}

extension RunbookVersion {
    init(row: PostgresRow) throws {
        self.init(
            id: try row.decode("runbook_id"),
            version: try row.decode("version"),
            contentHash: try row.decode("content_hash"),
            sourcePath: try row.decode("source_path"),
            source: try row.decode("source"),
            runbook: try row.decode("definition", as: PostgresJSON.self).runbook(),
            syncedAt: try row.decode("synced_at"),
            syncedBy: try row.decode("synced_by"),
            currentVersion: try row.decode("current_version"),
            retiredAt: try row.decode("retired_at")
        )
    }
}

extension PostgresJSON {
    /// Decoded runbook definitions by their stored text: a synced version never changes, and
    /// decoding one with JSONDecoder was 14 % of a postmortem page's server CPU (every incident
    /// page reads one too). As many entries as distinct runbook versions read.
    private static let runbooks = Mutex<[String: Runbook]>([:])

    /// This stored definition as a `Runbook`, decoded once per process.
    func runbook() throws -> Runbook {
        if let known = Self.runbooks.withLock({ $0[text] }) { return known }
        let decoded = try decode(as: Runbook.self)
        Self.runbooks.withLock { $0[text] = decoded }
        return decoded
    }
}

/// Reading a runbooks directory and syncing it: all or nothing.
public enum RunbookDirectory {
    /// The `.md` files of a runbooks folder (a README.md beside them is not a runbook).
    /// - Parameter displayPrefix: how paths are shown in problems (default: the folder's path).
    public static func read(_ directory: URL, displayPrefix: String? = nil) throws -> [(path: String, text: String)] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".md") && $0.lowercased() != "readme.md" }.sorted()
        var prefix = displayPrefix ?? directory.path
        if prefix.hasSuffix("/") { prefix.removeLast() }
        return try names.map { name in
            (prefix + "/" + name, try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8))
        }
    }

    public enum Outcome: Sendable, Equatable {
        case synced(RunbookSyncReport)
        /// Lint problems: nothing was synced (a half-applied sync is worse than none).
        case refused([LintProblem])
    }

    /// Lints the whole directory and syncs it only when it is clean.
    public static func sync(_ directory: URL, store: RunbookStore, by actor: String) async throws -> Outcome {
        let files = try read(directory, displayPrefix: directory.lastPathComponent)
        let (runbooks, problems) = RunbookParser.lint(files)
        guard problems.isEmpty else { return .refused(problems) }
        let sources = Dictionary(uniqueKeysWithValues: files.map { ($0.path, $0.text) })
        return .synced(try await store.sync(runbooks.map { ($0.path, sources[$0.path] ?? "", $0.runbook) }, by: actor))
    }
}
