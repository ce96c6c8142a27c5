import Foundation
public import HandrailCore
public import Postgres

/// All SQL about alert sources' integration keys.
public struct IntegrationKeyStore: Sendable {
    let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    static let columns: StaticString = """
        id, name, kind::text AS kind, display_prefix, require_signature, require_timestamp, created_at, last_used_at, revoked_at
        """

    /// integration.create — a new key's hash, audited as `integration.created`.
    /// - Throws: `ConflictError` when a live key has that name.
    public func create(
        name: String,
        kind: IntegrationKind,
        keyHash: String,
        displayPrefix: String,
        requireSignature: Bool,
        requireTimestamp: Bool = false,
        by actor: AuditActor
    ) async throws -> IntegrationKeyRecord {
        do {
            let rows = try await pool.query(
                """
                WITH k AS (
                    INSERT INTO integration_keys (name, kind, key_hash, display_prefix, require_signature, require_timestamp, created_by)
                    VALUES (\(name), \(kind.rawValue)::integration_kind, \(keyHash), \(displayPrefix), \(requireSignature || requireTimestamp),
                            \(requireTimestamp), \(actor.userID))
                    RETURNING \(sql: Self.columns)
                ), audit AS (
                    INSERT INTO audit_log (actor_user_id, actor, action, target, detail, remote_addr)
                    SELECT \(actor.userID), \(actor.name), 'integration.created', name, jsonb_build_object('kind', kind), \(actor.remoteAddress) FROM k
                )
                SELECT * FROM k
                """
            )
            return try IntegrationKeyRecord(row: rows[0])
        } catch let error as PostgresError where error.isUniqueViolation {
            throw ConflictError(field: "name", message: "a live integration key is already named \(name.debugDescription)")
        }
    }

    /// integration.list — every key, live and revoked, newest first.
    public func list() async throws -> [IntegrationKeyRecord] {
        try await pool.query("SELECT \(sql: Self.columns) FROM integration_keys ORDER BY id DESC").map(IntegrationKeyRecord.init(row:))
    }

    /// integration.revoke — revokes the live key of that name.
    public func revoke(name: String, by actor: AuditActor) async throws -> IntegrationKeyRecord? {
        try await pool.query(
            """
            WITH k AS (
                UPDATE integration_keys SET revoked_at = now() WHERE name = \(name) AND revoked_at IS NULL
                RETURNING \(sql: Self.columns)
            ), audit AS (
                INSERT INTO audit_log (actor_user_id, actor, action, target, detail, remote_addr)
                SELECT \(actor.userID), \(actor.name), 'integration.revoked', name, jsonb_build_object('kind', kind), \(actor.remoteAddress) FROM k
            )
            SELECT * FROM k
            """
        ).first.map(IntegrationKeyRecord.init(row:))
    }

    /// integration.authenticate — the live integration behind a key, marking it used.
    public func authenticate(keyHash: String) async throws -> Integration? {
        try await pool.query(
            """
            WITH k AS (
                SELECT id, name, kind::text AS kind, require_signature, require_timestamp, last_used_at FROM integration_keys
                WHERE key_hash = \(keyHash) AND revoked_at IS NULL
            ), touched AS (
                -- At most once a minute: a write per delivery would make every delivery of a
                -- busy source wait for the one before it (the same row, a commit each).
                UPDATE integration_keys SET last_used_at = now()
                WHERE id IN (SELECT id FROM k WHERE last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
                  AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
                RETURNING id
            )
            SELECT k.id, k.name, k.kind, k.require_signature, k.require_timestamp, (SELECT count(*) FROM touched) AS touched FROM k
            """
        ).first.map { row in
            Integration(
                id: try row.decode("id"),
                name: try row.decode("name"),
                kind: try row.decode("kind"),
                requireSignature: try row.decode("require_signature"),
                requireTimestamp: try row.decode("require_timestamp")
            )
        }
    }
}

extension IntegrationKeyRecord {
    init(row: PostgresRow) throws {
        self.init(
            id: try row.decode("id"),
            name: try row.decode("name"),
            kind: try row.decode("kind"),
            displayPrefix: try row.decode("display_prefix"),
            requireSignature: try row.decode("require_signature"),
            requireTimestamp: try row.decode("require_timestamp"),
            createdAt: try row.decode("created_at"),
            lastUsedAt: try row.decode("last_used_at"),
            revokedAt: try row.decode("revoked_at")
        )
    }
}
